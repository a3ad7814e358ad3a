-- What the writer role stellaops_replicator needs in schema policy (run as a
-- superuser after schema.sql; ../replicator-grants.sql covers the metadata
-- schema). Root tables are upserted and deleted; rules and conditions are
-- only deleted and inserted again.
GRANT USAGE ON SCHEMA policy TO stellaops_replicator;
GRANT SELECT, INSERT, UPDATE, DELETE ON policy.packs, policy.pack_versions TO stellaops_replicator;
GRANT SELECT, INSERT, DELETE ON policy.rules, policy.rule_conditions TO stellaops_replicator;
-- target.disable_triggers: true (replicator.yaml), PostgreSQL 15 or later.
GRANT SET ON PARAMETER session_replication_role TO stellaops_replicator;
