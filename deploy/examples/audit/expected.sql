-- The rows audit.events must hold once documents.json (snapshot, then
-- stream) has been replicated, written by hand from the documents, for the
-- columns replicator.yaml maps. Ids are the events' own UUIDs. Apply as a
-- superuser to a database that has schema.sql.
INSERT INTO audit.events (id, occurred_at, tenant_id, category, action, outcome, actor_type, actor_id, actor_name, resource_type,
                          resource_id, client_ip, user_agent, correlation_id, tags, details) VALUES
  -- the default partition; stream: redacted
  ('4a1c7e9b-2d3f-4e5a-8b6c-7d8e9f0a1b2c', '2025-12-31 23:59:58.5Z', 'default', 'authority', 'user.login', 1,
   1, '6650c1a2f1e4b23c9d0a2001', '[redacted]', NULL, NULL, NULL, NULL, 'req-8f14e45f',
   '{interactive,redacted}', '{"method": "password+totp"}'),
  -- 5b2d8f0c-… (January) was deleted
  ('6c3e9a1d-4f5b-4a7c-8d8e-9f0a1b2c3d4e', '2026-02-15 10:00:00Z', 'default', 'policy', 'pack.version.activated', 1,
   1, '6650c1a2f1e4b23c9d0a2002', 'bob', 'pack_version', '6653f4d5c3e6a7182930b002', '2001:db8:1::7', NULL, 'req-c9f0f895',
   '{}', '{"pack": "baseline", "version": 2}'),
  ('7d4f0b2e-5a6c-4b8d-9e9f-0a1b2c3d4e5f', '2026-03-01 02:14:07.125Z', 'default', 'scheduler', 'run.completed', 1,
   3, 'scheduler-worker', NULL, 'run', '0b6f1f0e-4c2a-4d7e-9b3a-6f2d8e1c5a47', NULL, NULL, NULL,
   '{}', '{"durationSeconds": {"$numberDecimal": "842.125"}, "completed": 118}'),
  ('8e5a1c3f-6b7d-4c9e-8f0a-1b2c3d4e5f60', '2026-03-01 12:01:00Z', 'acme', 'notify', 'delivery.failed', 2,
   3, 'notify-worker', NULL, 'delivery', '6652e3c4b2d5f6071829c002', NULL, NULL, NULL,
   '{webhook}', '{"statusCode": 503, "attempt": 2}'),
  -- stream: inserted
  ('9f6b2d4a-7c8e-4d0f-9a1b-2c3d4e5f6071', '2026-03-02 07:00:00Z', 'default', 'authority', 'user.login', 3,
   1, '6650c1a2f1e4b23c9d0a2001', 'alice', NULL, NULL, '203.0.113.10', 'Mozilla/5.0 (X11; Linux x86_64)', 'req-45c48cce',
   '{interactive}', '{"reason": "account locked", "failedLoginCount": 5}'),
  ('a07c3e5b-8d9f-4e1a-8b2c-3d4e5f607182', '2026-03-02 09:31:00Z', 'acme', 'authority', 'token.issued', 1,
   2, 'acme-cli', NULL, 'token', '5b7e2d1c-9f48-4a36-b2e1-0d4c8a6f3e21', '192.0.2.15', NULL, NULL,
   '{device-flow}', '{"tokenType": "device_code"}');
