-- Snapshot and resync progress (replicator/snapshot). One run per
-- collection per initial snapshot or resync; one row per _id-range chunk of
-- that run. A chunk turns 'done' in the same transaction that commits the
-- chunk's rows, so a restarted run copies exactly the chunks not yet done
-- and never a finished chunk twice. Every statement is idempotent.

CREATE TABLE IF NOT EXISTS replicator.snapshot_runs (
    id          bigserial   PRIMARY KEY,
    collection  text        NOT NULL,                 -- source namespace, db.collection
    kind        text        NOT NULL CHECK (kind IN ('snapshot', 'resync')),
    t0_ts       bigint      NOT NULL,                 -- the run's rows carry version (t0, seq 0)
    t0_inc      bigint      NOT NULL,
    state       text        NOT NULL CHECK (state IN ('copying', 'sweeping', 'done', 'superseded')),
    estimated   bigint      NOT NULL DEFAULT 0,       -- documents planned
    swept       bigint,                               -- rows a resync removed
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);

-- At most one unfinished run per collection.
CREATE UNIQUE INDEX IF NOT EXISTS snapshot_runs_active
    ON replicator.snapshot_runs (collection) WHERE state IN ('copying', 'sweeping');

CREATE TABLE IF NOT EXISTS replicator.snapshot_chunks (
    run_id      bigint      NOT NULL REFERENCES replicator.snapshot_runs (id) ON DELETE CASCADE,
    chunk       integer     NOT NULL,
    bracket     text        NOT NULL,                 -- BSON type bracket of the range, or 'all'
    lower_bound bytea,                                -- BSON {v: bound}, inclusive; NULL = open
    upper_bound bytea,                                -- BSON {v: bound}, exclusive; NULL = open
    estimated   bigint      NOT NULL DEFAULT 0,
    state       text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done')),
    documents   bigint      NOT NULL DEFAULT 0,       -- documents read (done chunks)
    skipped     bigint      NOT NULL DEFAULT 0,       -- skipped by the filter or dead-lettered
    finished_at timestamptz,
    PRIMARY KEY (run_id, chunk)
);
