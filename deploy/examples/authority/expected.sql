-- The rows schema authority must hold once documents.json (snapshot, then
-- stream) has been replicated, written by hand from the documents, for the
-- columns replicator.yaml maps. Ids are computed here with PostgreSQL's own
-- uuid_generate_v5, independently of the replicator. Apply to a database
-- that has schema.sql, as a superuser; the examples test compares it with
-- the replicated database.
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
CREATE FUNCTION pg_temp.uid(scope text, VARIADIC parts text[]) RETURNS uuid LANGUAGE sql IMMUTABLE
    AS $$ SELECT uuid_generate_v5('7d599b84-16b9-4584-b957-d2d4f4274988', (jsonb_build_array(scope) || to_jsonb(parts))::text) $$;

INSERT INTO authority.roles (id, tenant_id, name, description, scopes, is_system, created_at, updated_at) VALUES
  (pg_temp.uid('authority.roles', '6650c1a2f1e4b23c9d0a1101'), 'default', 'admin', 'Full administrative access',
   '{authority:users.write,authority:clients.write,policy:write}', true, '2026-01-05 09:00:00Z', '2026-01-05 09:00:00Z'),
  -- stream: vex:read pushed
  (pg_temp.uid('authority.roles', '6650c1a2f1e4b23c9d0a1102'), 'default', 'scanner-operator', 'Runs scans and reads findings',
   '{scanner:scan,findings:read,vex:read}', false, '2026-01-05 09:00:00Z', '2026-03-02 08:30:00Z'),
  (pg_temp.uid('authority.roles', '6650c1a2f1e4b23c9d0a1103'), 'acme', 'admin', 'Full administrative access',
   '{authority:users.write}', true, '2026-01-20 15:00:00Z', '2026-01-20 15:00:00Z');

INSERT INTO authority.users (id, tenant_id, username, email, display_name, status, email_verified, mfa_enabled, mfa_methods,
                             failed_login_count, last_login_at, last_login_ip, attributes, created_at, updated_at) VALUES
  -- stream: locked after five failures
  (pg_temp.uid('authority.users', '6650c1a2f1e4b23c9d0a2001'), 'default', 'alice', 'alice@example.com', 'Alice Example', 3, true, true,
   '{totp,webauthn}', 5, '2026-03-01 08:15:30.25Z', '203.0.113.10', '{"department": "security", "costCenter": "CC-1042"}',
   '2026-01-05 09:05:00Z', '2026-03-02 07:00:00Z'),
  -- bob (…2002) was deleted; the new bob (…2005) took his username
  (pg_temp.uid('authority.users', '6650c1a2f1e4b23c9d0a2005'), 'default', 'bob', 'robert@example.com', 'Robert B.', 1, true, true,
   '{webauthn}', 0, NULL, '198.51.100.77', '{"rehired": true}', '2026-03-02 08:00:00Z', '2026-03-02 08:00:00Z'),
  (pg_temp.uid('authority.users', '6650c1a2f1e4b23c9d0a2003'), 'acme', 'dana', 'dana@acme.test', 'Dana Ops', 1, true, true,
   '{totp}', 0, '2026-02-28 17:45:00Z', '2001:db8::42', '{"department": "platform"}', '2026-01-20 15:10:00Z', '2026-02-28 17:45:00Z'),
  (pg_temp.uid('authority.users', '6650c1a2f1e4b23c9d0a2004'), 'acme', 'carol', 'carol@acme.test', 'Carol Analyst', 1, false, false,
   '{}', 0, NULL, NULL, '{"department": "appsec", "onCall": true}', '2026-03-02 06:00:00Z', '2026-03-02 06:00:00Z');

INSERT INTO authority.user_roles (id, user_id, role_id, tenant_id, granted_at, granted_by)
SELECT pg_temp.uid('authority.user_roles', pg_temp.uid('authority.users', u)::text, r), pg_temp.uid('authority.users', u),
       pg_temp.uid('authority.roles', r), t, g::timestamptz, b
FROM (VALUES
  ('6650c1a2f1e4b23c9d0a2001', '6650c1a2f1e4b23c9d0a1101', 'default', '2026-01-05 09:05:00Z', 'bootstrap'),
  ('6650c1a2f1e4b23c9d0a2001', '6650c1a2f1e4b23c9d0a1102', 'default', '2026-03-02 07:00:00Z', 'bob'),
  ('6650c1a2f1e4b23c9d0a2003', '6650c1a2f1e4b23c9d0a1103', 'acme', '2026-01-20 15:10:00Z', 'bootstrap'),
  ('6650c1a2f1e4b23c9d0a2004', '6650c1a2f1e4b23c9d0a1103', 'acme', '2026-03-02 06:00:00Z', 'dana')
) AS v (u, r, t, g, b);

INSERT INTO authority.clients (id, tenant_id, client_key, display_name, client_type, secret_hash, enabled, require_pkce,
                               allowed_grant_types, allowed_scopes, access_token_lifetime, properties, created_at, updated_at) VALUES
  (pg_temp.uid('authority.clients', 'scanner-web'), 'default', 'scanner-web', 'Scanner Web', 1, NULL, true, true,
   '{authorization_code,refresh_token}', '{scanner:scan,findings:read}', 900, '{"tenantHint": "default", "ui": {"theme": "dark"}}',
   '2026-01-05 09:10:00Z', '2026-03-02 09:00:00Z'),
  (pg_temp.uid('authority.clients', 'concelier-worker'), 'default', 'concelier-worker', 'Concelier feed worker', 2,
   'pbkdf2-sha256$310000$c2FsdA$q0nHnB5c1bq2S5M0c3pQ', true, false,
   '{client_credentials}', '{vuln:write}', 3600, '{}', '2026-01-05 09:12:00Z', '2026-01-05 09:12:00Z'),
  (pg_temp.uid('authority.clients', 'acme-cli'), 'acme', 'acme-cli', 'Acme CLI', 1, NULL, true, true,
   '{urn:ietf:params:oauth:grant-type:device_code}', '{scanner:scan}', 600, '{"deviceFlow": {"interval": 5}}',
   '2026-03-02 09:30:00Z', '2026-03-02 09:30:00Z');

INSERT INTO authority.client_redirect_uris (id, client_id, tenant_id, uri)
SELECT pg_temp.uid('authority.client_redirect_uris', pg_temp.uid('authority.clients', c)::text, u), pg_temp.uid('authority.clients', c), t, u
FROM (VALUES
  ('scanner-web', 'default', 'https://scanner.example.com/callback'),
  ('scanner-web', 'default', 'https://scanner.example.net/callback')
) AS v (c, t, u);

INSERT INTO authority.tokens (id, tenant_id, token_type, token_hash, client_id, user_id, scopes, issued_at, expires_at,
                              revoked_at, revocation_reason, issued_from_ip, created_at, updated_at) VALUES
  -- stream: revoked
  ('3f2b9c1e-8d4a-4e7b-9a10-5c6d7e8f9012', 'default', 2, 'sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8',
   pg_temp.uid('authority.clients', 'scanner-web'), pg_temp.uid('authority.users', '6650c1a2f1e4b23c9d0a2001'),
   '{scanner:scan,findings:read,offline_access}', '2026-03-01 08:15:31Z', '2026-03-31 08:15:31Z',
   '2026-03-02 10:00:00Z', 'user_logout', '203.0.113.10', '2026-03-01 08:15:31Z', '2026-03-02 10:00:00Z'),
  -- 8c1d5e7a-… was deleted
  ('5b7e2d1c-9f48-4a36-b2e1-0d4c8a6f3e21', 'acme', 4, 'sha256:fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9',
   pg_temp.uid('authority.clients', 'acme-cli'), pg_temp.uid('authority.users', '6650c1a2f1e4b23c9d0a2004'),
   '{scanner:scan}', '2026-03-02 09:31:00Z', '2026-03-02 09:41:00Z',
   NULL, NULL, '192.0.2.15', '2026-03-02 09:31:00Z', '2026-03-02 09:31:00Z');
