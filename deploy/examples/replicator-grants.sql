-- The replicator's own metadata schema ("replicator"), as the writer role
-- uses it. Run once per database as a superuser (or as the role that ran
-- `replicator migrate`, which owns these tables), after `replicator migrate`
-- and after creating the writer role:
--
--   CREATE ROLE stellaops_replicator LOGIN PASSWORD '...' NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
--
-- The list follows what the replicator's commands do on each table
-- (sink/catalog/privileges.go); `replicator check` reports any that is
-- missing, with the GRANT that fixes it. The sink also stages every batch
-- in temporary tables, so the role needs TEMP on the database, which
-- PostgreSQL grants to PUBLIC by default.
GRANT USAGE ON SCHEMA replicator TO stellaops_replicator;
GRANT SELECT ON replicator.schema_migrations TO stellaops_replicator;
GRANT SELECT, INSERT, UPDATE ON replicator.apply_checkpoints, replicator.dead_letters,
    replicator.snapshot_runs, replicator.snapshot_chunks TO stellaops_replicator;
GRANT SELECT, INSERT, UPDATE, DELETE ON replicator.tombstones, replicator.row_versions TO stellaops_replicator;
GRANT INSERT ON replicator.control_events TO stellaops_replicator;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA replicator TO stellaops_replicator;
