-- What the writer role stellaops_replicator needs in schema vex (run as a
-- superuser after schema.sql; ../replicator-grants.sql covers the metadata
-- schema). Root tables are upserted and deleted; child tables only see their
-- rows deleted and inserted again.
GRANT USAGE ON SCHEMA vex TO stellaops_replicator;
GRANT SELECT, INSERT, UPDATE, DELETE ON vex.documents, vex.consensus TO stellaops_replicator;
GRANT SELECT, INSERT, DELETE ON vex.statements, vex.consensus_sources TO stellaops_replicator;
