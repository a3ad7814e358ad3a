-- Row versions kept out of the application's tables: a collection with
-- versions: table has no _cdc_* columns; the sink keeps each live root
-- row's version here (sink, merge.go), keyed like its tombstones, with the
-- row's tenant, so a delete under row-level security knows which tenant
-- to act as.
CREATE TABLE IF NOT EXISTS replicator.row_versions (
    table_name  text     NOT NULL,
    key         text[]   NOT NULL,
    tenant      text,
    cluster_ts  bigint   NOT NULL,
    cluster_inc bigint   NOT NULL,
    seq         bigint   NOT NULL,
    PRIMARY KEY (table_name, key)
);
