-- Balance requests, from the IE034 until an hour after they were made, and the
-- cluster-wide request locks. The access code is never stored.

CREATE TABLE balance_requests (
    id            uuid        PRIMARY KEY,
    -- The first 12 bytes of the id; names the request to GMS and in its replies.
    message_id    bytea       NOT NULL UNIQUE
                              CHECK (message_id = substring(uuid_send(id) FROM 1 FOR 12)),
    -- The IE034's MesIdeMES19, to cross-check replies.
    message_ref   text        NOT NULL,
    caller        text        NOT NULL,
    api_version   smallint    NOT NULL CHECK (api_version IN (1, 2)),
    grn           text        NOT NULL,
    tin           text,
    requested_at  timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    completed_at  timestamptz,
    -- The outcome: NULL while pending.
    status        text        CHECK (status IN ('SUCCESS', 'FUNCTIONAL_ERROR', 'XML_ERROR')),
    -- numeric keeps every digit; read back as text, never through a float.
    balance       numeric,
    currency      text,
    -- Vec<NctsError> as JSON.
    errors        jsonb,
    CHECK ((status IS NULL) = (completed_at IS NULL)),
    CHECK (status IS DISTINCT FROM 'SUCCESS' OR (balance IS NOT NULL AND currency IS NOT NULL)),
    CHECK (status NOT IN ('FUNCTIONAL_ERROR', 'XML_ERROR') OR errors IS NOT NULL)
);

-- Reads filter on expires_at; the expiry job scans it in order.
CREATE INDEX balance_requests_expires_at ON balance_requests (expires_at);

CREATE TABLE request_locks (
    key         text        PRIMARY KEY,
    -- The lock is free from this time on.
    expires_at  timestamptz NOT NULL
);

CREATE INDEX request_locks_expires_at ON request_locks (expires_at);
