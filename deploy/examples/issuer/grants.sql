-- What the writer role stellaops_replicator needs in schema issuer (run as a
-- superuser after schema.sql; ../replicator-grants.sql covers the metadata
-- schema). issuers rows are upserted and deleted; endpoints and keys are
-- only deleted and inserted again.
GRANT USAGE ON SCHEMA issuer TO stellaops_replicator;
GRANT SELECT, INSERT, UPDATE, DELETE ON issuer.issuers TO stellaops_replicator;
GRANT SELECT, INSERT, DELETE ON issuer.issuer_endpoints, issuer.issuer_keys TO stellaops_replicator;
