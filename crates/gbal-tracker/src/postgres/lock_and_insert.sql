WITH locked AS (
    INSERT INTO request_locks (key, expires_at, owner)
    VALUES ($1, COALESCE($2::timestamptz, now()) + $3::bigint * interval '1 microsecond',
        $4::uuid)
    ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at, owner = EXCLUDED.owner
    WHERE request_locks.expires_at <= COALESCE($2::timestamptz, now())
    RETURNING expires_at),
recorded AS (
    INSERT INTO balance_requests
        (id, message_id, message_ref, caller, api_version, grn, tin, requested_at, expires_at)
    SELECT $4::uuid, $5::bytea, $6::text, $7::text, $8::smallint, $9::text, $10::text,
        COALESCE($11::timestamptz, now()),
        COALESCE($12::timestamptz, now() + $13::bigint * interval '1 microsecond')
    WHERE EXISTS (SELECT 1 FROM locked)
    ON CONFLICT DO NOTHING
    RETURNING id)
SELECT EXISTS (SELECT 1 FROM locked) AS "locked!", EXISTS (SELECT 1 FROM recorded) AS "recorded!"
