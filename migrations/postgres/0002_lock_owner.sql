-- The request a lock was taken for, so that a check whose query never reached GMS can free
-- its own lock (and only its own) at once instead of leaving it to lapse. NULL for locks
-- taken on behalf of nobody in particular, which only lapse.

ALTER TABLE request_locks ADD COLUMN owner uuid;
