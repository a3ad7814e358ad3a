-- StellaOps Notify: delivery channels, routing rules with their actions, and
-- the deliveries made, with each attempt. The conventions every module
-- follows are in ../README.md.
--
-- Apply once, to the database that holds every module's schema, as a
-- superuser (it creates the role notify_admin, then the objects as that
-- role):
--
--   psql -v ON_ERROR_STOP=1 -d stellaops -f deploy/examples/notify/schema.sql

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'notify_admin') THEN
        CREATE ROLE notify_admin LOGIN BYPASSRLS;
    END IF;
    EXECUTE format('GRANT CREATE ON DATABASE %I TO notify_admin', current_database());
END
$$;

CREATE SCHEMA notify AUTHORIZATION notify_admin;
SET ROLE notify_admin;

CREATE FUNCTION notify.touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TABLE notify.channels (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    text        NOT NULL,
    name         text        NOT NULL,
    -- 1 slack, 2 teams, 3 email, 4 webhook
    channel_type smallint    NOT NULL CHECK (channel_type BETWEEN 1 AND 4),
    enabled      boolean     NOT NULL DEFAULT true,
    config       jsonb       NOT NULL, -- target, endpoint, secret reference
    labels       jsonb       NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    deleted_at   timestamptz
);
-- Soft delete: a name is unique among the channels not deleted.
CREATE UNIQUE INDEX channels_tenant_name_active ON notify.channels (tenant_id, name) WHERE deleted_at IS NULL;

CREATE TABLE notify.rules (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    text        NOT NULL,
    name         text        NOT NULL,
    description  text,
    enabled      boolean     NOT NULL DEFAULT true,
    event_kinds  text[]      NOT NULL DEFAULT '{}',
    -- 1 low, 2 medium, 3 high, 4 critical
    min_severity smallint,
    namespaces   text[]      NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT rules_tenant_name_key UNIQUE (tenant_id, name)
);
CREATE INDEX rules_event_kinds ON notify.rules USING gin (event_kinds);

CREATE TABLE notify.rule_actions (
    id               uuid     PRIMARY KEY DEFAULT gen_random_uuid(),
    rule_id          uuid     NOT NULL REFERENCES notify.rules (id) ON DELETE CASCADE,
    tenant_id        text     NOT NULL,
    action_key       text     NOT NULL,
    channel_id       uuid     NOT NULL REFERENCES notify.channels (id) ON DELETE CASCADE,
    template         text,
    -- 1 instant, 2 hourly, 3 daily
    digest           smallint NOT NULL DEFAULT 1,
    throttle_seconds integer,
    enabled          boolean  NOT NULL DEFAULT true,
    CONSTRAINT rule_actions_rule_action_key UNIQUE (rule_id, action_key)
);

CREATE TABLE notify.deliveries (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     text        NOT NULL,
    rule_id       uuid        REFERENCES notify.rules (id) ON DELETE SET NULL,
    action_key    text        NOT NULL,
    channel_id    uuid        REFERENCES notify.channels (id) ON DELETE SET NULL,
    event_id      uuid        NOT NULL,
    event_kind    text        NOT NULL,
    -- 1 pending, 2 sent, 3 failed, 4 throttled, 5 digested
    status        smallint    NOT NULL,
    status_reason text,
    rendered      jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    sent_at       timestamptz,
    completed_at  timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT deliveries_event_action_key UNIQUE (tenant_id, event_id, rule_id, action_key)
);
CREATE INDEX deliveries_pending ON notify.deliveries (tenant_id, created_at) WHERE status = 1;

CREATE TABLE notify.delivery_attempts (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    delivery_id  uuid        NOT NULL REFERENCES notify.deliveries (id) ON DELETE CASCADE,
    tenant_id    text        NOT NULL,
    attempted_at timestamptz NOT NULL,
    -- 1 succeeded, 2 failed
    outcome      smallint    NOT NULL,
    status_code  integer,
    reason       text
);
CREATE INDEX delivery_attempts_delivery ON notify.delivery_attempts (delivery_id, attempted_at);

CREATE TRIGGER channels_touch BEFORE UPDATE ON notify.channels FOR EACH ROW EXECUTE FUNCTION notify.touch_updated_at();
CREATE TRIGGER rules_touch BEFORE UPDATE ON notify.rules FOR EACH ROW EXECUTE FUNCTION notify.touch_updated_at();
CREATE TRIGGER deliveries_touch BEFORE UPDATE ON notify.deliveries FOR EACH ROW EXECUTE FUNCTION notify.touch_updated_at();

ALTER TABLE notify.channels ENABLE ROW LEVEL SECURITY;
ALTER TABLE notify.channels FORCE ROW LEVEL SECURITY;
CREATE POLICY channels_tenant_isolation ON notify.channels USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE notify.rules ENABLE ROW LEVEL SECURITY;
ALTER TABLE notify.rules FORCE ROW LEVEL SECURITY;
CREATE POLICY rules_tenant_isolation ON notify.rules USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE notify.rule_actions ENABLE ROW LEVEL SECURITY;
ALTER TABLE notify.rule_actions FORCE ROW LEVEL SECURITY;
CREATE POLICY rule_actions_tenant_isolation ON notify.rule_actions USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE notify.deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE notify.deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY deliveries_tenant_isolation ON notify.deliveries USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE notify.delivery_attempts ENABLE ROW LEVEL SECURITY;
ALTER TABLE notify.delivery_attempts FORCE ROW LEVEL SECURITY;
CREATE POLICY delivery_attempts_tenant_isolation ON notify.delivery_attempts USING (tenant_id = current_setting('app.tenant_id'));

RESET ROLE;
