-- The rows schema scheduler must hold once documents.json (snapshot, then
-- stream) has been replicated, written by hand from the documents, for the
-- columns replicator.yaml maps. Ids are computed with PostgreSQL's own
-- uuid_generate_v5 (runs keep their UUID _ids). Apply as a superuser to a
-- database that has schema.sql.
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
CREATE FUNCTION pg_temp.uid(scope text, VARIADIC parts text[]) RETURNS uuid LANGUAGE sql IMMUTABLE
    AS $$ SELECT uuid_generate_v5('7d599b84-16b9-4584-b957-d2d4f4274988', (jsonb_build_array(scope) || to_jsonb(parts))::text) $$;
CREATE FUNCTION pg_temp.sch(key text) RETURNS uuid LANGUAGE sql IMMUTABLE
    AS $$ SELECT pg_temp.uid('scheduler.schedules', key) $$;

INSERT INTO scheduler.schedules (id, tenant_id, schedule_key, name, description, cron_expression, timezone, enabled, mode,
                                 selection, max_jobs, rate_per_second, created_by, updated_by, created_at, updated_at, deleted_at) VALUES
  -- stream: maxJobs raised
  (pg_temp.sch('sch_01HQ7Z4K9V2M3N5P6Q7R8S9T0A'), 'default', 'sch_01HQ7Z4K9V2M3N5P6Q7R8S9T0A', 'nightly-rescan',
   'Rescan every image nightly', '0 2 * * *', 'UTC', true, 1, '{"scope": "all-images"}', 800, 12.50, 'alice', 'bob',
   '2026-01-10 08:00:00Z', '2026-03-02 12:00:00Z', NULL),
  -- stream: soft-deleted …
  (pg_temp.sch('sch_01HQ80A1B2C3D4E5F6G7H8J9K0'), 'default', 'sch_01HQ80A1B2C3D4E5F6G7H8J9K0', 'kev-refresh',
   NULL, '*/30 * * * *', 'Europe/Berlin', false, 2, '{"scope": "by-namespace", "namespaces": ["prod", "payments"]}', 50, NULL,
   'bob', 'alice', '2026-01-12 09:30:00Z', '2026-03-02 11:00:00Z', '2026-03-02 11:00:00Z'),
  -- … and its name taken by a new schedule
  (pg_temp.sch('sch_01HQ9B3C4D5E6F7G8H9J0K1M2N'), 'default', 'sch_01HQ9B3C4D5E6F7G8H9J0K1M2N', 'kev-refresh',
   'KEV refresh, every 15 minutes', '*/15 * * * *', 'UTC', true, 2, '{"scope": "all-images", "onlyIf": {"kev": true}}', 100, 5.00,
   'alice', 'alice', '2026-03-02 11:01:00Z', '2026-03-02 11:01:00Z', NULL),
  (pg_temp.sch('sch_01HQ81ZZ9Y8X7W6V5T4S3R2Q1P'), 'acme', 'sch_01HQ81ZZ9Y8X7W6V5T4S3R2Q1P', 'weekly-full',
   'Full rescan of the gateway images', '0 3 * * 0', 'America/New_York', false, 1,
   '{"scope": "by-repository", "repositories": ["registry.acme.test/gateway"]}', NULL, 2.00, 'dana', NULL,
   '2026-01-21 12:00:00Z', '2026-01-21 12:00:00Z', NULL);

INSERT INTO scheduler.runs (id, tenant_id, schedule_id, trigger, state, candidates, deduped, queued, completed, new_criticals,
                            new_high, duration_seconds, error, reason, created_at, started_at, finished_at, updated_at) VALUES
  ('0b6f1f0e-4c2a-4d7e-9b3a-6f2d8e1c5a47', 'default', pg_temp.sch('sch_01HQ7Z4K9V2M3N5P6Q7R8S9T0A'), 1, 4,
   120, 118, 118, 118, 2, 5, 842.125, NULL, '{"cronFire": "2026-03-01T02:00:00Z"}',
   '2026-03-01 02:00:00Z', '2026-03-01 02:00:05Z', '2026-03-01 02:14:07.125Z', '2026-03-01 02:14:07.125Z'),
  -- stream: completed
  ('6a0e2c4b-8d1f-4a3e-b5c7-9e2f4a6c8d10', 'default', pg_temp.sch('sch_01HQ80A1B2C3D4E5F6G7H8J9K0'), 3, 4,
   40, 40, 40, 40, 0, 1, 301.500, NULL, '{"advisoryIds": ["CVE-2026-10234"]}',
   '2026-03-02 05:00:00Z', '2026-03-02 05:00:02Z', '2026-03-02 05:05:01.5Z', '2026-03-02 05:05:01.5Z'),
  -- stream: inserted
  ('f47ac10b-58cc-4372-a567-0e02b2c3d479', 'acme', pg_temp.sch('sch_01HQ81ZZ9Y8X7W6V5T4S3R2Q1P'), 4, 2,
   5, 5, 5, 0, 0, 0, NULL, NULL, '{"vexDocuments": ["ACME-VEX-2026-007"]}',
   '2026-03-02 10:00:00Z', NULL, NULL, '2026-03-02 10:00:00Z');
  -- d3b07384-… was deleted

INSERT INTO scheduler.run_deltas (id, run_id, tenant_id, image_digest, new_findings, new_criticals, new_high, kev_hits)
SELECT pg_temp.uid('scheduler.run_deltas', r, d), r::uuid, 'default', d, f, c, h, k::text[]
FROM (VALUES
  ('0b6f1f0e-4c2a-4d7e-9b3a-6f2d8e1c5a47', 'sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 3, 1, 2, '{CVE-2026-10234}'),
  ('0b6f1f0e-4c2a-4d7e-9b3a-6f2d8e1c5a47', 'sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 1, 1, 0, '{}'),
  ('6a0e2c4b-8d1f-4a3e-b5c7-9e2f4a6c8d10', 'sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc', 1, 0, 1, '{}')
) AS v (r, d, f, c, h, k);
