SELECT count(*) AS "count!", min(requested_at) AS oldest, COALESCE($1::timestamptz, now()) AS "now!"
FROM balance_requests
WHERE expires_at > COALESCE($1::timestamptz, now()) AND status IS NULL
