WITH done AS (
    UPDATE balance_requests
    SET status = $2, balance = $3::text::numeric, currency = $4, errors = $5::text::jsonb,
        completed_at = COALESCE($6::timestamptz, now())
    WHERE message_id = $1 AND expires_at + interval '0' > COALESCE($6::timestamptz, now())
        AND status IS NULL
        AND ($7::text IS NULL OR upper(grn COLLATE "C") = $7)
        AND ($8::text IS NULL OR message_ref = $8)
    RETURNING *)
SELECT id AS "id!", message_id AS "message_id!", message_ref AS "message_ref!",
    caller AS "caller!", api_version AS "api_version!", grn AS "grn!", tin,
    requested_at AS "requested_at!", expires_at AS "expires_at!", completed_at, status,
    balance::text AS balance, currency, errors::text AS errors
FROM done, LATERAL pg_notify('gbal_request_completed', done.id::text) AS notified
