-- StellaOps Scheduler: rescan schedules and the runs they (or a feed
-- update, or a person) started, with the per-image deltas a run found. The
-- conventions every module follows are in ../README.md.
--
-- Apply once, to the database that holds every module's schema, as a
-- superuser (it creates the role scheduler_admin, then the objects as that
-- role):
--
--   psql -v ON_ERROR_STOP=1 -d stellaops -f deploy/examples/scheduler/schema.sql

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'scheduler_admin') THEN
        CREATE ROLE scheduler_admin LOGIN BYPASSRLS;
    END IF;
    EXECUTE format('GRANT CREATE ON DATABASE %I TO scheduler_admin', current_database());
END
$$;

CREATE SCHEMA scheduler AUTHORIZATION scheduler_admin;
SET ROLE scheduler_admin;

CREATE FUNCTION scheduler.touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TABLE scheduler.schedules (
    id              uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       text         NOT NULL,
    schedule_key    text         NOT NULL, -- sch_<ULID>
    name            text         NOT NULL,
    description     text,
    cron_expression text         NOT NULL,
    timezone        text         NOT NULL DEFAULT 'UTC',
    enabled         boolean      NOT NULL DEFAULT true,
    -- 1 analysis-only, 2 content-refresh
    mode            smallint     NOT NULL,
    selection       jsonb        NOT NULL,
    max_jobs        integer,
    rate_per_second numeric(8,2),
    created_by      text,
    updated_by      text,
    created_at      timestamptz  NOT NULL DEFAULT now(),
    updated_at      timestamptz  NOT NULL DEFAULT now(),
    deleted_at      timestamptz,
    CONSTRAINT schedules_tenant_schedule_key UNIQUE (tenant_id, schedule_key)
);
-- A name is unique among the schedules not deleted: a deleted schedule's
-- name can be used again.
CREATE UNIQUE INDEX schedules_tenant_name_active ON scheduler.schedules (tenant_id, name) WHERE deleted_at IS NULL;

CREATE TABLE scheduler.runs (
    id               uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        text          NOT NULL,
    schedule_id      uuid          REFERENCES scheduler.schedules (id) ON DELETE SET NULL,
    -- 1 cron, 2 manual, 3 feedser (advisory update), 4 vexer (VEX update)
    trigger          smallint      NOT NULL,
    -- 1 planning, 2 queued, 3 running, 4 completed, 5 error, 6 cancelled
    state            smallint      NOT NULL,
    candidates       integer       NOT NULL DEFAULT 0,
    deduped          integer       NOT NULL DEFAULT 0,
    queued           integer       NOT NULL DEFAULT 0,
    completed        integer       NOT NULL DEFAULT 0,
    new_criticals    integer       NOT NULL DEFAULT 0,
    new_high         integer       NOT NULL DEFAULT 0,
    duration_seconds numeric(12,3),
    error            text,
    reason           jsonb         NOT NULL DEFAULT '{}',
    created_at       timestamptz   NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    updated_at       timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX runs_schedule ON scheduler.runs (schedule_id, created_at DESC);
CREATE INDEX runs_active ON scheduler.runs (tenant_id, state) WHERE state IN (1, 2, 3);

CREATE TABLE scheduler.run_deltas (
    id            uuid    PRIMARY KEY DEFAULT gen_random_uuid(),
    run_id        uuid    NOT NULL REFERENCES scheduler.runs (id) ON DELETE CASCADE,
    tenant_id     text    NOT NULL,
    image_digest  text    NOT NULL,
    new_findings  integer NOT NULL DEFAULT 0,
    new_criticals integer NOT NULL DEFAULT 0,
    new_high      integer NOT NULL DEFAULT 0,
    kev_hits      text[]  NOT NULL DEFAULT '{}',
    CONSTRAINT run_deltas_run_image_key UNIQUE (run_id, image_digest)
);

CREATE TRIGGER schedules_touch BEFORE UPDATE ON scheduler.schedules FOR EACH ROW EXECUTE FUNCTION scheduler.touch_updated_at();
CREATE TRIGGER runs_touch BEFORE UPDATE ON scheduler.runs FOR EACH ROW EXECUTE FUNCTION scheduler.touch_updated_at();

ALTER TABLE scheduler.schedules ENABLE ROW LEVEL SECURITY;
ALTER TABLE scheduler.schedules FORCE ROW LEVEL SECURITY;
CREATE POLICY schedules_tenant_isolation ON scheduler.schedules USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE scheduler.runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE scheduler.runs FORCE ROW LEVEL SECURITY;
CREATE POLICY runs_tenant_isolation ON scheduler.runs USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE scheduler.run_deltas ENABLE ROW LEVEL SECURITY;
ALTER TABLE scheduler.run_deltas FORCE ROW LEVEL SECURITY;
CREATE POLICY run_deltas_tenant_isolation ON scheduler.run_deltas USING (tenant_id = current_setting('app.tenant_id'));

RESET ROLE;
