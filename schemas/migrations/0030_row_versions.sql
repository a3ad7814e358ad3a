-- Row versions kept out of the application's tables: a collection with
-- versions: table has no _cdc_* columns; the sink keeps each live root
-- row's version here (sink, versions.go), keyed like its tombstone, with
-- the row's tenant, so a delete under row-level security knows which
-- tenant to act as. When the root key cannot be read from a change
-- event's documentKey (a natural key), rows are keyed by the document's
-- _id key text and target_key holds the row's key in the table: the map a
-- delete follows. No two documents may hold one target key.
CREATE TABLE IF NOT EXISTS replicator.row_versions (
    table_name  text     NOT NULL,
    key         text[]   NOT NULL,
    target_key  text[],
    tenant      text,
    cluster_ts  bigint   NOT NULL,
    cluster_inc bigint   NOT NULL,
    seq         bigint   NOT NULL,
    PRIMARY KEY (table_name, key)
);
CREATE UNIQUE INDEX IF NOT EXISTS row_versions_target_key
    ON replicator.row_versions (table_name, target_key) WHERE target_key IS NOT NULL;
