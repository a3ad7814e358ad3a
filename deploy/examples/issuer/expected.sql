-- The rows schema issuer must hold once documents.json (snapshot, then
-- stream) has been replicated, written by hand from the documents, for the
-- columns replicator.yaml maps (and the generated search column). Ids are
-- computed with PostgreSQL's own uuid_generate_v5. Apply as a superuser to a
-- database that has schema.sql.
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
CREATE FUNCTION pg_temp.uid(scope text, VARIADIC parts text[]) RETURNS uuid LANGUAGE sql IMMUTABLE
    AS $$ SELECT uuid_generate_v5('7d599b84-16b9-4584-b957-d2d4f4274988', (jsonb_build_array(scope) || to_jsonb(parts))::text) $$;
CREATE FUNCTION pg_temp.iss(key text) RETURNS uuid LANGUAGE sql IMMUTABLE AS $$ SELECT pg_temp.uid('issuer.issuers', key) $$;

INSERT INTO issuer.issuers (id, tenant_id, slug, display_name, description, contact_email, website, tags, trust_level,
                            trust_weight, created_at) VALUES
  (pg_temp.iss('default:red-hat'), 'default', 'red-hat', 'Red Hat Product Security',
   'CSAF and OpenVEX advisories for Red Hat products', 'secalert@redhat.com', 'https://access.redhat.com/security',
   '{vendor,csaf}', 1, 0.90, '2025-12-01 08:00:00Z'),
  -- default:stellaops-internal was deleted; stream: acme-psirt's key revoked and its weight lowered
  (pg_temp.iss('acme:acme-psirt'), 'acme', 'acme-psirt', 'Acme PSIRT', NULL, 'psirt@acme.test', NULL,
   '{vendor}', 1, 0.50, '2026-01-20 15:30:00Z'),
  -- stream: inserted
  (pg_temp.iss('acme:ghsa'), 'acme', 'ghsa', 'GitHub Security Advisories', 'Community advisories mirrored by GitHub',
   NULL, 'https://github.com/advisories', '{}', 3, 0.50, '2026-03-02 10:00:00Z');

INSERT INTO issuer.issuer_endpoints (id, issuer_id, tenant_id, kind, url, format, requires_auth)
SELECT pg_temp.uid('issuer.issuer_endpoints', pg_temp.iss(i)::text, u), pg_temp.iss(i), t, k, u, f, a
FROM (VALUES
  ('default:red-hat', 'default', 1, 'https://security.access.redhat.com/data/csaf/v2/provider-metadata.json', 'csaf-2.0', false),
  ('default:red-hat', 'default', 2, 'https://security.access.redhat.com/data/openvex/', 'openvex-0.2', false),
  ('acme:acme-psirt', 'acme', 1, 'https://psirt.acme.test/csaf/', 'csaf-2.0', true),
  ('acme:ghsa', 'acme', 3, 'oci://ghcr.io/github/advisory-database', NULL, false)
) AS v (i, t, k, u, f, a);

INSERT INTO issuer.issuer_keys (id, issuer_id, tenant_id, key_id, key_type, fingerprint, material, status, valid_from, valid_to,
                                revoked_at, replaces_key_id)
SELECT pg_temp.uid('issuer.issuer_keys', pg_temp.iss(i)::text, k), pg_temp.iss(i), t, k, ty, fp, m::jsonb, s,
       vf::timestamptz, vt::timestamptz, rv::timestamptz, rp
FROM (VALUES
  -- stream: rotated: the 2025 key retired …
  ('default:red-hat', 'default', 'rh-vex-2025', 2, 'SHA256:9c1e4d7a2b6f8e0c3a5d7b9f1e3c5a7d9b1f3e5c7a9d1b3f5e7c9a1d3b5f7e9c',
   '{"format": "pem", "value": "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE2025rhvex\n-----END PUBLIC KEY-----\n"}',
   2, '2025-01-01 00:00:00Z', '2026-03-02 00:00:00Z', NULL, NULL),
  -- … and replaced
  ('default:red-hat', 'default', 'rh-vex-2026', 2, 'SHA256:4f2a6c8e0b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e7b9d1f3a',
   '{"format": "pem", "value": "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE2026rhvex\n-----END PUBLIC KEY-----\n"}',
   1, '2026-03-02 00:00:00Z', NULL, NULL, 'rh-vex-2025'),
  -- stream: revoked
  ('acme:acme-psirt', 'acme', 'acme-2025', 3, 'SHA256:77aa88bb99cc00dd11ee22ff33aa44bb55cc66dd77ee88ff99aa00bb11cc22dd',
   '{"format": "pem", "value": "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8Aacme2025\n-----END PUBLIC KEY-----\n"}',
   3, '2025-06-01 00:00:00Z', '2026-05-31 23:59:59Z', '2026-03-02 09:15:00Z', NULL)
) AS v (i, t, k, ty, fp, m, s, vf, vt, rv, rp);
