-- The rows schema vuln must hold once documents.json (snapshot, then
-- stream) has been replicated, written by hand from the documents, for the
-- columns replicator.yaml maps (and the generated search column). Ids are
-- computed with PostgreSQL's own uuid_generate_v5. Apply as a superuser to a
-- database that has schema.sql.
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
CREATE FUNCTION pg_temp.uid(scope text, VARIADIC parts text[]) RETURNS uuid LANGUAGE sql IMMUTABLE
    AS $$ SELECT uuid_generate_v5('7d599b84-16b9-4584-b957-d2d4f4274988', (jsonb_build_array(scope) || to_jsonb(parts))::text) $$;
-- an advisory's id from its _id
CREATE FUNCTION pg_temp.adv(key text) RETURNS uuid LANGUAGE sql IMMUTABLE
    AS $$ SELECT pg_temp.uid('vuln.advisories', key) $$;

INSERT INTO vuln.sources (id, source_key, display_name, kind, base_url, enabled, priority, fetch_interval_seconds,
                          last_fetched_at, cursor, created_at) VALUES
  (pg_temp.uid('vuln.sources', 'nvd'), 'nvd', 'NIST NVD', 1, 'https://services.nvd.nist.gov/rest/json/cves/2.0', true, 10, 7200,
   '2026-03-01 00:00:00Z', '{"lastModStartDate": "2026-02-28T22:00:00Z"}', '2025-11-02 10:00:00Z'),
  -- stream: fetched again, cursor moved
  (pg_temp.uid('vuln.sources', 'ghsa'), 'ghsa', 'GitHub Security Advisories', 2, 'https://api.github.com/advisories', true, 20, 3600,
   '2026-03-02 14:00:00Z', '{"since": "2026-03-02T13:00:00Z", "page": 1}', '2025-11-02 10:00:00Z');
  -- osv was deleted

INSERT INTO vuln.advisories (id, advisory_key, source_key, title, summary, severity, cvss_version, cvss_vector, cvss_score,
                             epss_score, cwes, refs, provenance, published_at, modified_at, withdrawn_at) VALUES
  -- stream: re-scored, first range's fix moved, a second package
  (pg_temp.adv('GHSA-4xq2-8wvg-3v9c'), 'GHSA-4xq2-8wvg-3v9c', 'ghsa', 'Prototype pollution in left-pad',
   'Crafted keys passed to pad() can modify Object.prototype.', 3, '3.1', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:H/A:N', 7.1,
   0.00412, '{CWE-1321}', '[{"type": "ADVISORY", "url": "https://github.com/advisories/GHSA-4xq2-8wvg-3v9c"}]',
   '{"schemaVersion": "1.6.0", "databaseSpecific": {"githubReviewed": true, "severity": "MODERATE"}}',
   '2026-02-11 16:20:00Z', '2026-03-02 12:00:00Z', NULL),
  -- stream: replaced (withdrawn, one alias, no packages)
  (pg_temp.adv('GHSA-2c8v-qq7p-5m3r'), 'GHSA-2c8v-qq7p-5m3r', 'ghsa', 'Unbounded alias expansion in example/yaml',
   'Withdrawn: duplicate of GHSA-9v4w-8mrj-2g6x.', 3, '3.1', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H', 7.5,
   NULL, '{CWE-776}', '[]', '{"schemaVersion": "1.7.0"}',
   '2026-01-30 07:45:00Z', '2026-03-02 13:00:00Z', '2026-03-02 13:00:00Z'),
  -- stream: inserted
  (pg_temp.adv('CVE-2026-30001'), 'CVE-2026-30001', 'nvd', 'Information disclosure in acme-agent debug endpoint',
   'The debug endpoint lists environment variables.', 1, '4.0',
   'CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:N/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N', 2.1,
   0.00021, '{}', '[]', '{"schemaVersion": "1.6.0"}',
   '2026-03-02 11:00:00Z', '2026-03-02 11:00:00Z', NULL);
  -- CVE-2026-10234 was deleted

INSERT INTO vuln.advisory_aliases (id, advisory_id, alias)
SELECT pg_temp.uid('vuln.advisory_aliases', pg_temp.adv(a)::text, alias), pg_temp.adv(a), alias
FROM (VALUES
  ('GHSA-4xq2-8wvg-3v9c', 'CVE-2026-10001'),
  ('GHSA-2c8v-qq7p-5m3r', 'CVE-2026-20777')
) AS v (a, alias);

INSERT INTO vuln.affected_packages (id, advisory_id, position, ecosystem, package_name, purl, versions)
SELECT pg_temp.uid('vuln.affected_packages', pg_temp.adv(a)::text, p::text), pg_temp.adv(a), p, e, n, purl, vs::text[]
FROM (VALUES
  ('GHSA-4xq2-8wvg-3v9c', 0, 'npm', 'left-pad', 'pkg:npm/left-pad', '{}'),
  ('GHSA-4xq2-8wvg-3v9c', 1, 'npm', 'left-pad-es', 'pkg:npm/left-pad-es', '{1.0.0}')
) AS v (a, p, e, n, purl, vs);

INSERT INTO vuln.affected_ranges (id, affected_package_id, advisory_id, package_position, range_type, introduced, fixed, last_affected)
SELECT pg_temp.uid('vuln.affected_ranges', pg_temp.adv(a)::text, p::text, r::text),
       pg_temp.uid('vuln.affected_packages', pg_temp.adv(a)::text, p::text), pg_temp.adv(a), p, ty, i, f, l
FROM (VALUES
  ('GHSA-4xq2-8wvg-3v9c', 0, 0, 1, '0', '1.3.2', NULL),
  ('GHSA-4xq2-8wvg-3v9c', 1, 0, 1, '1.0.0', '1.0.4', NULL)
) AS v (a, p, r, ty, i, f, l);
