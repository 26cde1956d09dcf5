DELETE FROM balance_requests WHERE id IN
    (SELECT id FROM balance_requests WHERE expires_at <= COALESCE($1::timestamptz, now())
     ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)
