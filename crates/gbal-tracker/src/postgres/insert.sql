INSERT INTO balance_requests
    (id, message_id, message_ref, caller, api_version, grn, tin, requested_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, COALESCE($8::timestamptz, now()),
    COALESCE($9::timestamptz, now() + $10::bigint * interval '1 microsecond'))
