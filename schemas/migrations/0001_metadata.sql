-- Metadata the applier keeps beside the target tables. Every statement is
-- idempotent so a partially applied upgrade can run again.

-- One row per configured collection: the last buffer (JetStream stream)
-- sequence applied to PostgreSQL. It is written in the same transaction as
-- the rows it covers (ARCHITECTURE.md, guarantee 4). epoch changes whenever an
-- operator moves the checkpoint (replay), so an applier that was running
-- notices and restarts delivery from the new position.
CREATE TABLE IF NOT EXISTS replicator.apply_checkpoints (
    collection       text        PRIMARY KEY,
    stream_seq       bigint      NOT NULL DEFAULT 0 CHECK (stream_seq >= 0),
    cluster_ts       bigint,
    cluster_inc      bigint,
    source_wall_time timestamptz,
    epoch            bigint      NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- A deleted root row's version, so an older event cannot bring it back
-- (ARCHITECTURE.md, guarantee 2). key holds the key columns in PostgreSQL text
-- syntax, in key order. A tombstone older than the buffer's retention can no
-- longer be needed and may be removed (deleted_at index).
CREATE TABLE IF NOT EXISTS replicator.tombstones (
    table_name  text        NOT NULL,
    key         text[]      NOT NULL,
    cluster_ts  bigint      NOT NULL,
    cluster_inc bigint      NOT NULL,
    seq         bigint      NOT NULL,
    deleted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (table_name, key)
);
CREATE INDEX IF NOT EXISTS tombstones_deleted_at ON replicator.tombstones (deleted_at);

-- Events that could not be decoded, transformed or applied (ARCHITECTURE.md,
-- guarantee 6). raw_event holds the source event (transform stage) or the
-- buffer envelope (apply stage) when it is JSON, raw_bytes otherwise.
CREATE TABLE IF NOT EXISTS replicator.dead_letters (
    id            bigserial   PRIMARY KEY,
    collection    text        NOT NULL,
    stage         text        NOT NULL CHECK (stage IN ('decode', 'transform', 'apply')),
    reason        text        NOT NULL,
    error         text        NOT NULL,
    field_path    text,
    sqlstate      text,
    document_key  text,
    raw_event     jsonb,
    raw_bytes     bytea,
    stream_seq    bigint,
    cluster_ts    bigint,
    cluster_inc   bigint,
    created_at    timestamptz NOT NULL DEFAULT now(),
    resolved_at   timestamptz,
    resolved_note text
);
CREATE INDEX IF NOT EXISTS dead_letters_unresolved
    ON replicator.dead_letters (collection, id) WHERE resolved_at IS NULL;

-- Drop, rename, dropDatabase and invalidate events seen in the buffer. The
-- capture side stops the stream on them; the applier records them here.
CREATE TABLE IF NOT EXISTS replicator.control_events (
    id          bigserial   PRIMARY KEY,
    collection  text        NOT NULL,
    operation   text        NOT NULL,
    token       text,
    raw_event   jsonb,
    stream_seq  bigint,
    cluster_ts  bigint,
    cluster_inc bigint,
    created_at  timestamptz NOT NULL DEFAULT now()
);
