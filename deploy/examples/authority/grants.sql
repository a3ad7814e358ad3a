-- What the writer role stellaops_replicator needs in schema authority (run
-- as a superuser after schema.sql; ../replicator-grants.sql covers the
-- metadata schema). Root tables are upserted and deleted; child tables only
-- see their rows deleted and inserted again.
GRANT USAGE ON SCHEMA authority TO stellaops_replicator;
GRANT SELECT, INSERT, UPDATE, DELETE ON authority.roles, authority.users, authority.clients, authority.tokens TO stellaops_replicator;
GRANT SELECT, INSERT, DELETE ON authority.user_roles, authority.client_redirect_uris TO stellaops_replicator;
-- target.disable_triggers: true (replicator.yaml): the writer's sessions run
-- with session_replication_role = replica (PostgreSQL 15 or later).
GRANT SET ON PARAMETER session_replication_role TO stellaops_replicator;
