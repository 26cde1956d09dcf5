SELECT id, message_id, message_ref, caller, api_version, grn, tin, requested_at, expires_at,
    completed_at, status, balance::text AS balance, currency, errors::text AS errors
FROM balance_requests
WHERE id = $1 AND caller = $2 AND expires_at + interval '0' > COALESCE($3::timestamptz, now())
