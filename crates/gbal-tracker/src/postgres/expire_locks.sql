DELETE FROM request_locks WHERE key IN
    (SELECT key FROM request_locks WHERE expires_at <= COALESCE($1::timestamptz, now())
     ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)
