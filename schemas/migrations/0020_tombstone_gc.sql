-- Tombstone garbage collection (sink, tombstones.go) deletes one root
-- table's tombstones older than the buffer's retention, in batches: it
-- needs them by table and age. The deleted_at index alone would scan every
-- table's old tombstones for each collection.
CREATE INDEX IF NOT EXISTS tombstones_table_deleted_at
    ON replicator.tombstones (table_name, deleted_at);
DROP INDEX IF EXISTS replicator.tombstones_deleted_at;
