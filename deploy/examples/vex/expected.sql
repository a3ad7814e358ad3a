-- The rows schema vex must hold once documents.json (snapshot, then stream)
-- has been replicated, written by hand from the documents, for the columns
-- replicator.yaml maps (and the generated search column). Ids are computed
-- with PostgreSQL's own uuid_generate_v5. Apply as a superuser to a database
-- that has schema.sql.
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
CREATE FUNCTION pg_temp.uid(scope text, VARIADIC parts text[]) RETURNS uuid LANGUAGE sql IMMUTABLE
    AS $$ SELECT uuid_generate_v5('7d599b84-16b9-4584-b957-d2d4f4274988', (jsonb_build_array(scope) || to_jsonb(parts))::text) $$;
CREATE FUNCTION pg_temp.doc(digest text) RETURNS uuid LANGUAGE sql IMMUTABLE
    AS $$ SELECT pg_temp.uid('vex.documents', digest) $$;
CREATE FUNCTION pg_temp.cons(oid text) RETURNS uuid LANGUAGE sql IMMUTABLE
    AS $$ SELECT pg_temp.uid('vex.consensus', oid) $$;

INSERT INTO vex.documents (id, tenant_id, digest, format, document_uri, provider, author, version, issued_at, ingested_at,
                           source_uri, signature_verified, signature) VALUES
  -- stream: version 2
  (pg_temp.doc('sha256:3b1f6e0a9c4d2e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f'), 'default',
   'sha256:3b1f6e0a9c4d2e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f', 1,
   'https://openvex.dev/docs/redhat/vex-2026-0142', 'redhat', 'Red Hat Product Security', 2,
   '2026-03-02 10:00:00Z', '2026-02-21 10:05:12.345Z',
   'https://security.access.redhat.com/data/openvex/2026/cve-2026-10234.json', true,
   '{"type": "dsse", "verified": true, "keyId": "rh-vex-2025"}'),
  -- stream: inserted
  (pg_temp.doc('sha256:c4ca4238a0b923820dcc509a6f75849bc81e728d9d4c2f636f067f89cc14862c'), 'default',
   'sha256:c4ca4238a0b923820dcc509a6f75849bc81e728d9d4c2f636f067f89cc14862c', 3,
   'urn:uuid:0f9b3c2a-6e1d-4b8a-9c7f-2d5e8a1b4c6f', 'stellaops-internal', 'StellaOps triage', 1,
   '2026-03-02 09:00:00Z', '2026-03-02 09:00:01Z', NULL, true,
   '{"type": "dsse", "verified": true, "keyId": "stella-triage-1"}');
  -- the acme document sha256:9e8d… was deleted

INSERT INTO vex.statements (id, document_id, tenant_id, vulnerability_id, status, justification, impact_statement,
                            action_statement, products, issued_at)
SELECT pg_temp.uid('vex.statements', pg_temp.doc(d)::text, p), pg_temp.doc(d), 'default', v, s, j, i, a, ps::text[], '2026-02-21 10:00:00Z'
FROM (VALUES
  ('sha256:3b1f6e0a9c4d2e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f', '0', 'CVE-2026-10234', 1, 3,
   'The TIFF decoder is not built in this product.', NULL, '{pkg:rpm/redhat/libfoo@2.3.0-4.el9?arch=x86_64}'),
  -- stream: under_investigation → affected
  ('sha256:3b1f6e0a9c4d2e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f', '1', 'CVE-2026-10001', 2, NULL,
   NULL, 'Upgrade left-pad to 1.3.2.', '{pkg:npm/left-pad@1.3.0}')
) AS v (d, p, v, s, j, i, a, ps);
INSERT INTO vex.statements (id, document_id, tenant_id, vulnerability_id, status, justification, impact_statement,
                            action_statement, products, issued_at)
SELECT pg_temp.uid('vex.statements', pg_temp.doc(d)::text, p), pg_temp.doc(d), 'default', v, s, j, i, a, ps::text[], '2026-03-02 09:00:00Z'
FROM (VALUES
  ('sha256:c4ca4238a0b923820dcc509a6f75849bc81e728d9d4c2f636f067f89cc14862c', '0', 'CVE-2026-10001', 3, NULL,
   NULL, 'No action: the fixed version is in use.', '{pkg:npm/left-pad@1.3.2}'),
  ('sha256:c4ca4238a0b923820dcc509a6f75849bc81e728d9d4c2f636f067f89cc14862c', '1', 'CVE-2026-30001', 1, 1,
   'acme-agent is not shipped in these images.', NULL,
   '{pkg:oci/stella-scanner@sha256:2222222222222222222222222222222222222222222222222222222222222222,pkg:oci/stella-web@sha256:3333333333333333333333333333333333333333333333333333333333333333}')
) AS v (d, p, v, s, j, i, a, ps);

INSERT INTO vex.consensus (id, tenant_id, vulnerability_id, product_key, status, justification, policy_revision, calculated_at, conflicts) VALUES
  -- …2901 was deleted; stream: …2902 recalculated
  (pg_temp.cons('6651d2b3a1c4e5f607182902'), 'default', 'CVE-2026-10001', 'pkg:npm/left-pad@1.3.0', 2, NULL, 'rev-13',
   '2026-03-02 10:01:00Z', '[{"providerId": "stellaops-internal", "status": "fixed", "reason": "newer statement"}]'),
  -- stream: its natural key changed (a new product image): the row moved to the new key, same id
  (pg_temp.cons('6651d2b3a1c4e5f607182903'), 'acme', 'CVE-2026-20777',
   'pkg:oci/acme-gateway@sha256:9c8b7a69584736251403f2e1d0c9b8a79c8b7a69584736251403f2e1d0c9b8a7?tag=4.2.1', 3, NULL, 'rev-3',
   '2026-03-02 10:10:00Z', '[]'),
  -- stream: inserted
  (pg_temp.cons('6651d2b3a1c4e5f607182904'), 'acme', 'CVE-2026-30001',
   'pkg:oci/acme-gateway@sha256:1f2e3d4c5b6a79881726354453627181f2e3d4c5b6a7988172635445362718?tag=4.2.0', 1, 1, 'rev-3',
   '2026-03-02 10:05:00Z', '[]');

INSERT INTO vex.consensus_sources (id, consensus_id, tenant_id, provider_id, status, weight, document_digest)
SELECT pg_temp.uid('vex.consensus_sources', pg_temp.cons(c)::text, p), pg_temp.cons(c), t, p, s, w, d
FROM (VALUES
  ('6651d2b3a1c4e5f607182902', 'default', 'redhat', 4, 0.900, 'sha256:3b1f6e0a9c4d2e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f'),
  ('6651d2b3a1c4e5f607182902', 'default', 'stellaops-internal', 3, 0.750, 'sha256:c4ca4238a0b923820dcc509a6f75849bc81e728d9d4c2f636f067f89cc14862c'),
  ('6651d2b3a1c4e5f607182903', 'acme', 'acme-psirt', 2, 1.000, 'sha256:9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d'),
  ('6651d2b3a1c4e5f607182903', 'acme', 'ghsa', 2, 0.500, NULL),
  ('6651d2b3a1c4e5f607182904', 'acme', 'acme-psirt', 1, 1.000, NULL)
) AS v (c, t, p, s, w, d);
