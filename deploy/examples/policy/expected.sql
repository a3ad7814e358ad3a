-- The rows schema policy must hold once documents.json (snapshot, then
-- stream) has been replicated, written by hand from the documents, for the
-- columns replicator.yaml maps. Ids are computed with PostgreSQL's own
-- uuid_generate_v5. Apply as a superuser to a database that has schema.sql.
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
CREATE FUNCTION pg_temp.uid(scope text, VARIADIC parts text[]) RETURNS uuid LANGUAGE sql IMMUTABLE
    AS $$ SELECT uuid_generate_v5('7d599b84-16b9-4584-b957-d2d4f4274988', (jsonb_build_array(scope) || to_jsonb(parts))::text) $$;
CREATE FUNCTION pg_temp.pack(oid text) RETURNS uuid LANGUAGE sql IMMUTABLE AS $$ SELECT pg_temp.uid('policy.packs', oid) $$;
CREATE FUNCTION pg_temp.ver(oid text) RETURNS uuid LANGUAGE sql IMMUTABLE AS $$ SELECT pg_temp.uid('policy.pack_versions', oid) $$;

INSERT INTO policy.packs (id, tenant_id, name, display_name, description, active_version, tags, created_by, created_at, updated_at) VALUES
  -- stream: version 3 activated, tag added
  (pg_temp.pack('6653f4d5c3e6a7182930a001'), 'default', 'baseline', 'Baseline', 'Default gate for all images', 3,
   '{default,gate,epss}', 'alice', '2026-01-08 09:00:00Z', '2026-03-02 10:00:00Z'),
  (pg_temp.pack('6653f4d5c3e6a7182930a002'), 'acme', 'gateway-strict', 'Gateway (strict)', NULL, 1,
   '{gateway}', 'dana', '2026-01-25 11:00:00Z', '2026-01-25 11:00:00Z'),
  -- stream: inserted
  (pg_temp.pack('6653f4d5c3e6a7182930a003'), 'default', 'legacy-import', NULL, NULL, NULL,
   '{}', 'migration', '2026-03-02 11:00:00Z', '2026-03-02 11:00:00Z');

INSERT INTO policy.pack_versions (id, tenant_id, pack_id, version, status, digest, dsl_version, default_action, score_threshold,
                                  created_by, approved_by, approved_at, created_at, updated_at) VALUES
  -- version 1 (…b001) was deleted; stream: version 2 archived
  (pg_temp.ver('6653f4d5c3e6a7182930b002'), 'default', pg_temp.pack('6653f4d5c3e6a7182930a001'), 2, 5,
   'sha256:2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b', 'stella-dsl@1', 2, 7.0,
   'alice', 'bob', '2026-02-15 10:00:00Z', '2026-02-14 09:00:00Z', '2026-03-02 10:00:00Z'),
  (pg_temp.ver('6653f4d5c3e6a7182930b003'), 'acme', pg_temp.pack('6653f4d5c3e6a7182930a002'), 1, 4,
   'sha256:3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c', 'stella-dsl@1', 1, 4.0,
   'dana', 'dana', '2026-01-25 11:30:00Z', '2026-01-25 11:00:00Z', '2026-01-25 11:30:00Z'),
  -- stream: inserted as a draft, approved, activated
  (pg_temp.ver('6653f4d5c3e6a7182930b004'), 'default', pg_temp.pack('6653f4d5c3e6a7182930a001'), 3, 4,
   'sha256:4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d', 'stella-dsl@1', 2, 6.5,
   'bob', 'alice', '2026-03-02 09:30:00Z', '2026-03-02 09:00:00Z', '2026-03-02 10:00:00Z');

INSERT INTO policy.rules (id, pack_version_id, tenant_id, position, rule_key, name, severity, action, expression, tags)
SELECT pg_temp.uid('policy.rules', pg_temp.ver(v)::text, p::text), pg_temp.ver(v), t, p, k, n, s, a, e, g::text[]
FROM (VALUES
  ('6653f4d5c3e6a7182930b002', 'default', 0, 'block-critical', 'Block critical', 4, 1,
   'finding.severity == ''critical'' && finding.fixAvailable', '{severity}'),
  ('6653f4d5c3e6a7182930b002', 'default', 1, 'kev-escalate', 'Escalate KEV', 3, 4, 'finding.kev', '{kev}'),
  ('6653f4d5c3e6a7182930b002', 'default', 2, 'ignore-dev', 'Ignore dev namespaces', NULL, 3,
   'image.namespace in [''dev'', ''sandbox'']', '{}'),
  ('6653f4d5c3e6a7182930b003', 'acme', 0, 'block-high', 'Block high and above', 3, 1, 'finding.cvss >= 4.0', '{}'),
  ('6653f4d5c3e6a7182930b004', 'default', 0, 'block-critical', 'Block critical', 4, 1, 'finding.severity == ''critical''', '{severity}'),
  -- stream: warn → block
  ('6653f4d5c3e6a7182930b004', 'default', 1, 'epss-high', 'High EPSS', 3, 1, 'finding.epss >= 0.5', '{epss}')
) AS x (v, t, p, k, n, s, a, e, g);

INSERT INTO policy.rule_conditions (id, rule_id, pack_version_id, rule_position, tenant_id, field, operator, value)
SELECT pg_temp.uid('policy.rule_conditions', pg_temp.ver(v)::text, r::text, c::text),
       pg_temp.uid('policy.rules', pg_temp.ver(v)::text, r::text), pg_temp.ver(v), r, t, f, o, val::jsonb
FROM (VALUES
  ('6653f4d5c3e6a7182930b002', 0, 0, 'default', 'severity', 1, '"critical"'),
  ('6653f4d5c3e6a7182930b002', 0, 1, 'default', 'fixAvailable', 1, 'true'),
  ('6653f4d5c3e6a7182930b002', 1, 0, 'default', 'kev', 1, 'true'),
  ('6653f4d5c3e6a7182930b002', 2, 0, 'default', 'namespace', 3, '["dev", "sandbox"]'),
  -- a Decimal128 in jsonb keeps its type and digits (relaxed Extended JSON)
  ('6653f4d5c3e6a7182930b003', 0, 0, 'acme', 'cvss', 5, '{"$numberDecimal": "4.0"}'),
  ('6653f4d5c3e6a7182930b004', 0, 0, 'default', 'severity', 1, '"critical"'),
  ('6653f4d5c3e6a7182930b004', 1, 0, 'default', 'epss', 5, '{"$numberDecimal": "0.50"}')
) AS x (v, r, c, t, f, o, val);
