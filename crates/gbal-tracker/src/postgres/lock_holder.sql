SELECT expires_at, COALESCE($2::timestamptz, now()) AS "now!"
FROM request_locks WHERE key = $1
