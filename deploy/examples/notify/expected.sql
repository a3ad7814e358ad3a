-- The rows schema notify must hold once documents.json (snapshot, then
-- stream) has been replicated, written by hand from the documents, for the
-- columns replicator.yaml maps. Ids are computed with PostgreSQL's own
-- uuid_generate_v5. Apply as a superuser to a database that has schema.sql.
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
CREATE FUNCTION pg_temp.uid(scope text, VARIADIC parts text[]) RETURNS uuid LANGUAGE sql IMMUTABLE
    AS $$ SELECT uuid_generate_v5('7d599b84-16b9-4584-b957-d2d4f4274988', (jsonb_build_array(scope) || to_jsonb(parts))::text) $$;
CREATE FUNCTION pg_temp.channel(oid text) RETURNS uuid LANGUAGE sql IMMUTABLE AS $$ SELECT pg_temp.uid('notify.channels', oid) $$;
CREATE FUNCTION pg_temp.rule(oid text) RETURNS uuid LANGUAGE sql IMMUTABLE AS $$ SELECT pg_temp.uid('notify.rules', oid) $$;
CREATE FUNCTION pg_temp.delivery(oid text) RETURNS uuid LANGUAGE sql IMMUTABLE AS $$ SELECT pg_temp.uid('notify.deliveries', oid) $$;

INSERT INTO notify.channels (id, tenant_id, name, channel_type, enabled, config, labels, created_at, updated_at, deleted_at) VALUES
  -- stream: soft-deleted …
  (pg_temp.channel('6652e3c4b2d5f6071829a001'), 'default', 'sec-alerts-slack', 1, false,
   '{"target": "#sec-alerts", "secretRef": "vault:notify/slack-default"}', '{"team": "security"}',
   '2026-01-15 10:00:00Z', '2026-03-02 07:00:00Z', '2026-03-02 07:00:00Z'),
  -- … and its name taken by a new channel
  (pg_temp.channel('6652e3c4b2d5f6071829a004'), 'default', 'sec-alerts-slack', 1, true,
   '{"target": "#sec-alerts-v2", "secretRef": "vault:notify/slack-default-2026"}', '{"team": "security", "migrated": "2026-03"}',
   '2026-03-02 07:01:00Z', '2026-03-02 07:01:00Z', NULL),
  (pg_temp.channel('6652e3c4b2d5f6071829a002'), 'default', 'oncall-email', 3, true,
   '{"target": "oncall@example.com"}', '{}', '2026-01-15 10:05:00Z', '2026-01-15 10:05:00Z', NULL),
  (pg_temp.channel('6652e3c4b2d5f6071829a003'), 'acme', 'acme-webhook', 4, true,
   '{"endpoint": "https://hooks.acme.test/stellaops", "secretRef": "vault:notify/acme-hook"}', '{"env": "prod"}',
   '2026-01-22 14:00:00Z', '2026-01-22 14:00:00Z', NULL);

INSERT INTO notify.rules (id, tenant_id, name, description, enabled, event_kinds, min_severity, namespaces, created_at, updated_at) VALUES
  (pg_temp.rule('6652e3c4b2d5f6071829b001'), 'default', 'critical-findings', 'New critical findings in production', true,
   '{scanner.report.ready,scheduler.rescan.delta}', 4, '{prod}', '2026-01-15 10:10:00Z', '2026-03-02 07:02:00Z'),
  (pg_temp.rule('6652e3c4b2d5f6071829b002'), 'acme', 'gateway-kev', NULL, true,
   '{concelier.kev.added}', 3, '{}', '2026-01-22 14:05:00Z', '2026-01-22 14:05:00Z'),
  -- stream: inserted, no actions
  (pg_temp.rule('6652e3c4b2d5f6071829b003'), 'acme', 'weekly-digest', 'Scheduler runs, weekly', false,
   '{scheduler.run.completed}', NULL, '{}', '2026-03-02 08:00:00Z', '2026-03-02 08:00:00Z');

INSERT INTO notify.rule_actions (id, rule_id, tenant_id, action_key, channel_id, template, digest, throttle_seconds, enabled)
SELECT pg_temp.uid('notify.rule_actions', pg_temp.rule(r)::text, a), pg_temp.rule(r), t, a, pg_temp.channel(c), tpl, d, th, true
FROM (VALUES
  -- stream: moved to the new channel, throttled longer
  ('6652e3c4b2d5f6071829b001', 'default', 'slack', '6652e3c4b2d5f6071829a004', 'slack-finding', 1, 600),
  ('6652e3c4b2d5f6071829b001', 'default', 'email-digest', '6652e3c4b2d5f6071829a002', 'email-digest', 3, NULL),
  ('6652e3c4b2d5f6071829b002', 'acme', 'hook', '6652e3c4b2d5f6071829a003', 'webhook-json', 1, 0)
) AS v (r, t, a, c, tpl, d, th);

INSERT INTO notify.deliveries (id, tenant_id, rule_id, action_key, channel_id, event_id, event_kind, status, status_reason,
                               rendered, created_at, sent_at, completed_at, updated_at) VALUES
  (pg_temp.delivery('6652e3c4b2d5f6071829c001'), 'default', pg_temp.rule('6652e3c4b2d5f6071829b001'), 'slack',
   pg_temp.channel('6652e3c4b2d5f6071829a001'), '9a7b5c3d-1e2f-4a6b-8c0d-2e4f6a8b0c1d', 'scanner.report.ready', 2, NULL,
   '{"title": "2 new critical findings in payments-api", "target": "#sec-alerts"}',
   '2026-03-01 02:14:59Z', '2026-03-01 02:15:00Z', '2026-03-01 02:15:00Z', '2026-03-01 02:15:00Z'),
  -- stream: delivered on the third attempt
  (pg_temp.delivery('6652e3c4b2d5f6071829c002'), 'acme', pg_temp.rule('6652e3c4b2d5f6071829b002'), 'hook',
   pg_temp.channel('6652e3c4b2d5f6071829a003'), '2c4e6a8b-0d1f-4b3c-9e5a-7c9e1b3d5f70', 'concelier.kev.added', 2, 'delivered on retry',
   '{"title": "CVE-2026-10234 added to KEV", "target": "https://hooks.acme.test/stellaops"}',
   '2026-03-01 12:00:00Z', '2026-03-02 06:00:00Z', '2026-03-02 06:00:00Z', '2026-03-02 06:00:00Z'),
  -- stream: inserted pending, then sent
  (pg_temp.delivery('6652e3c4b2d5f6071829c004'), 'default', pg_temp.rule('6652e3c4b2d5f6071829b001'), 'slack',
   pg_temp.channel('6652e3c4b2d5f6071829a001'), 'e1d2c3b4-a596-4877-8695-a4b3c2d1e0f9', 'scheduler.rescan.delta', 2, NULL,
   '{"title": "1 new critical finding in gateway", "target": "#sec-alerts"}',
   '2026-03-02 05:05:02Z', '2026-03-02 05:05:03Z', '2026-03-02 05:05:03Z', '2026-03-02 05:05:03Z');
  -- …c003 was deleted

INSERT INTO notify.delivery_attempts (id, delivery_id, tenant_id, attempted_at, outcome, status_code, reason)
SELECT pg_temp.uid('notify.delivery_attempts', pg_temp.delivery(d)::text, n), pg_temp.delivery(d), t, a::timestamptz, o, c, r
FROM (VALUES
  ('6652e3c4b2d5f6071829c001', '0', 'default', '2026-03-01 02:15:00Z', 1, 200, NULL),
  ('6652e3c4b2d5f6071829c002', '0', 'acme', '2026-03-01 12:00:00Z', 2, 503, 'Service Unavailable'),
  ('6652e3c4b2d5f6071829c002', '1', 'acme', '2026-03-01 12:01:00Z', 2, 503, 'Service Unavailable'),
  ('6652e3c4b2d5f6071829c002', '2', 'acme', '2026-03-02 06:00:00Z', 1, 202, NULL),
  ('6652e3c4b2d5f6071829c004', '0', 'default', '2026-03-02 05:05:03Z', 1, 200, NULL)
) AS v (d, n, t, a, o, c, r);
