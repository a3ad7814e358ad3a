-- What the writer role stellaops_replicator needs in schema notify (run as a
-- superuser after schema.sql; ../replicator-grants.sql covers the metadata
-- schema). Root tables are upserted and deleted; child tables only see their
-- rows deleted and inserted again.
GRANT USAGE ON SCHEMA notify TO stellaops_replicator;
GRANT SELECT, INSERT, UPDATE, DELETE ON notify.channels, notify.rules, notify.deliveries TO stellaops_replicator;
GRANT SELECT, INSERT, DELETE ON notify.rule_actions, notify.delivery_attempts TO stellaops_replicator;
-- target.disable_triggers: true (replicator.yaml), PostgreSQL 15 or later.
GRANT SET ON PARAMETER session_replication_role TO stellaops_replicator;
