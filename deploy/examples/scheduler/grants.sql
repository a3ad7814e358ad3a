-- What the writer role stellaops_replicator needs in schema scheduler (run
-- as a superuser after schema.sql; ../replicator-grants.sql covers the
-- metadata schema). Root tables are upserted and deleted; run_deltas rows
-- are only deleted and inserted again.
GRANT USAGE ON SCHEMA scheduler TO stellaops_replicator;
GRANT SELECT, INSERT, UPDATE, DELETE ON scheduler.schedules, scheduler.runs TO stellaops_replicator;
GRANT SELECT, INSERT, DELETE ON scheduler.run_deltas TO stellaops_replicator;
-- target.disable_triggers: true (replicator.yaml), PostgreSQL 15 or later.
GRANT SET ON PARAMETER session_replication_role TO stellaops_replicator;
