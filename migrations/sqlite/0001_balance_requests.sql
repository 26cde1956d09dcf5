-- Balance requests, from the IE034 until an hour after they were made, and the request
-- locks. The access code is never stored. Times are microseconds since the Unix epoch (UTC),
-- so that they compare as numbers.

CREATE TABLE balance_requests (
    id            BLOB    PRIMARY KEY NOT NULL CHECK (length(id) = 16),
    -- The first 12 bytes of the id; names the request to GMS and in its replies.
    message_id    BLOB    NOT NULL UNIQUE CHECK (message_id = substr(id, 1, 12)),
    -- The IE034's MesIdeMES19, to cross-check replies.
    message_ref   TEXT    NOT NULL,
    caller        TEXT    NOT NULL,
    api_version   INTEGER NOT NULL CHECK (api_version IN (1, 2)),
    grn           TEXT    NOT NULL,
    tin           TEXT,
    requested_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    completed_at  INTEGER,
    -- The outcome: NULL while pending.
    status        TEXT    CHECK (status IN ('SUCCESS', 'FUNCTIONAL_ERROR', 'XML_ERROR')),
    -- Decimal text: every digit kept, never a float.
    balance       TEXT,
    currency      TEXT,
    -- Vec<NctsError> as JSON.
    errors        TEXT    CHECK (errors IS NULL OR json_valid(errors)),
    CHECK ((status IS NULL) = (completed_at IS NULL)),
    CHECK (status IS NOT 'SUCCESS' OR (balance IS NOT NULL AND currency IS NOT NULL)),
    CHECK (status NOT IN ('FUNCTIONAL_ERROR', 'XML_ERROR') OR errors IS NOT NULL)
) STRICT;

CREATE INDEX balance_requests_expires_at ON balance_requests (expires_at);

CREATE TABLE request_locks (
    key         TEXT    PRIMARY KEY NOT NULL,
    -- The lock is free from this time on.
    expires_at  INTEGER NOT NULL
) STRICT;

CREATE INDEX request_locks_expires_at ON request_locks (expires_at);
