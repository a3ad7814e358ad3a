-- StellaOps audit log: one row per audited action of every module,
-- partitioned by month of occurrence. The conventions every module follows
-- are in ../README.md.
--
-- Apply once, to the database that holds every module's schema, as a
-- superuser (it creates the role audit_admin, then the objects as that
-- role):
--
--   psql -v ON_ERROR_STOP=1 -d stellaops -f deploy/examples/audit/schema.sql

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'audit_admin') THEN
        CREATE ROLE audit_admin LOGIN BYPASSRLS;
    END IF;
    EXECUTE format('GRANT CREATE ON DATABASE %I TO audit_admin', current_database());
END
$$;

CREATE SCHEMA audit AUTHORIZATION audit_admin;
SET ROLE audit_admin;

-- Events are append-only (a redaction aside), so the table has created_at
-- and no updated_at.
--
-- The table is partitioned by occurred_at. PostgreSQL requires a
-- partitioned table's primary key, and every unique index, to include the
-- partition key; INSERT … ON CONFLICT, which the replicator's writes use,
-- then needs a conflict key that includes it too. So the key is
-- (id, occurred_at), not id alone, and both parts come from the MongoDB
-- _id, {occurredAt, eventId}: a delete event carries only the _id, and it
-- must name the row (and its partition).
CREATE TABLE audit.events (
    id             uuid        NOT NULL DEFAULT gen_random_uuid(),
    occurred_at    timestamptz NOT NULL,
    tenant_id      text        NOT NULL,
    category       text        NOT NULL, -- the module: authority, policy, scheduler, …
    action         text        NOT NULL,
    -- 1 success, 2 failure, 3 denied
    outcome        smallint    NOT NULL,
    -- 1 user, 2 client, 3 system
    actor_type     smallint    NOT NULL,
    actor_id       text,
    actor_name     text,
    resource_type  text,
    resource_id    text,
    client_ip      inet,
    user_agent     text,
    correlation_id text,
    tags           text[]      NOT NULL DEFAULT '{}',
    details        jsonb       NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, occurred_at)
) PARTITION BY RANGE (occurred_at);

CREATE TABLE audit.events_2026_01 PARTITION OF audit.events FOR VALUES FROM ('2026-01-01 00:00:00+00') TO ('2026-02-01 00:00:00+00');
CREATE TABLE audit.events_2026_02 PARTITION OF audit.events FOR VALUES FROM ('2026-02-01 00:00:00+00') TO ('2026-03-01 00:00:00+00');
CREATE TABLE audit.events_2026_03 PARTITION OF audit.events FOR VALUES FROM ('2026-03-01 00:00:00+00') TO ('2026-04-01 00:00:00+00');
-- Events outside the prepared months (late or very old ones) land here.
CREATE TABLE audit.events_default PARTITION OF audit.events DEFAULT;

CREATE INDEX events_tenant_time ON audit.events (tenant_id, occurred_at DESC);
CREATE INDEX events_resource ON audit.events (resource_type, resource_id);

-- The policy on the partitioned table applies to every access through it;
-- the partitions themselves are not granted to anyone but the owner.
ALTER TABLE audit.events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit.events FORCE ROW LEVEL SECURITY;
CREATE POLICY events_tenant_isolation ON audit.events USING (tenant_id = current_setting('app.tenant_id'));

RESET ROLE;
