WITH freed AS (
    DELETE FROM request_locks WHERE key = $1 AND owner = $2 RETURNING key),
removed AS (
    DELETE FROM balance_requests WHERE id = $3 AND status IS NULL RETURNING id)
SELECT (SELECT count(*) FROM freed) AS "freed!", (SELECT count(*) FROM removed) AS "removed!"
