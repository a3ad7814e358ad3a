-- What the writer role stellaops_replicator needs in schema audit (run as a
-- superuser after schema.sql; ../replicator-grants.sql covers the metadata
-- schema). Privileges on the partitioned table cover the rows of every
-- partition reached through it.
GRANT USAGE ON SCHEMA audit TO stellaops_replicator;
GRANT SELECT, INSERT, UPDATE, DELETE ON audit.events TO stellaops_replicator;
