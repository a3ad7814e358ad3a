-- What the writer role stellaops_replicator needs in schema vuln (run as a
-- superuser after schema.sql; ../replicator-grants.sql covers the metadata
-- schema). Root tables are upserted and deleted; descendant tables only see
-- their rows deleted and inserted again.
GRANT USAGE ON SCHEMA vuln TO stellaops_replicator;
GRANT SELECT, INSERT, UPDATE, DELETE ON vuln.sources, vuln.advisories TO stellaops_replicator;
GRANT SELECT, INSERT, DELETE ON vuln.advisory_aliases, vuln.affected_packages, vuln.affected_ranges TO stellaops_replicator;
