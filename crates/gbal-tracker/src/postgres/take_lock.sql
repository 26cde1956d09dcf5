WITH taken AS (
    INSERT INTO request_locks (key, expires_at, owner)
    VALUES ($1, COALESCE($2::timestamptz, now()) + $3::bigint * interval '1 microsecond', $4)
    ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at, owner = EXCLUDED.owner
    WHERE request_locks.expires_at <= COALESCE($2::timestamptz, now())
    RETURNING expires_at)
SELECT (SELECT expires_at FROM taken) AS taken_until,
    set_config('synchronous_commit', 'off', true) AS synchronous_commit
