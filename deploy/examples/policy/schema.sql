-- StellaOps Policy: policy packs, their versions, each version's ordered
-- rules and each rule's conditions. The conventions every module follows
-- are in ../README.md.
--
-- Apply once, to the database that holds every module's schema, as a
-- superuser (it creates the role policy_admin, then the objects as that
-- role):
--
--   psql -v ON_ERROR_STOP=1 -d stellaops -f deploy/examples/policy/schema.sql

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'policy_admin') THEN
        CREATE ROLE policy_admin LOGIN BYPASSRLS;
    END IF;
    EXECUTE format('GRANT CREATE ON DATABASE %I TO policy_admin', current_database());
END
$$;

CREATE SCHEMA policy AUTHORIZATION policy_admin;
SET ROLE policy_admin;

CREATE FUNCTION policy.touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

-- Codes:
--   status    1 draft, 2 submitted, 3 approved, 4 active, 5 archived
--   action    1 block, 2 warn, 3 ignore, 4 escalate
--   severity  1 low, 2 medium, 3 high, 4 critical
--   operator  1 eq, 2 neq, 3 in, 4 not_in, 5 gte, 6 lte, 7 matches

CREATE TABLE policy.packs (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      text        NOT NULL,
    name           text        NOT NULL,
    display_name   text,
    description    text,
    active_version integer,
    tags           text[]      NOT NULL DEFAULT '{}',
    created_by     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT packs_tenant_name_key UNIQUE (tenant_id, name)
);

CREATE TABLE policy.pack_versions (
    id              uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       text         NOT NULL,
    pack_id         uuid         NOT NULL REFERENCES policy.packs (id) ON DELETE CASCADE,
    version         integer      NOT NULL,
    status          smallint     NOT NULL CHECK (status BETWEEN 1 AND 5),
    digest          text         NOT NULL, -- sha256 of the compiled pack
    dsl_version     text,
    default_action  smallint     NOT NULL DEFAULT 2,
    score_threshold numeric(3,1),
    created_by      text,
    approved_by     text,
    approved_at     timestamptz,
    created_at      timestamptz  NOT NULL DEFAULT now(),
    updated_at      timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT pack_versions_pack_version_key UNIQUE (tenant_id, pack_id, version)
);

CREATE TABLE policy.rules (
    id              uuid     PRIMARY KEY DEFAULT gen_random_uuid(),
    pack_version_id uuid     NOT NULL REFERENCES policy.pack_versions (id) ON DELETE CASCADE,
    tenant_id       text     NOT NULL,
    position        integer  NOT NULL, -- evaluation order
    rule_key        text     NOT NULL,
    name            text,
    severity        smallint,
    action          smallint NOT NULL,
    expression      text     NOT NULL,
    tags            text[]   NOT NULL DEFAULT '{}',
    CONSTRAINT rules_version_rule_key UNIQUE (pack_version_id, rule_key),
    CONSTRAINT rules_version_position_key UNIQUE (pack_version_id, position)
);

-- A rule's conditions. pack_version_id and rule_position repeat what rule_id
-- points to: the replicator replaces a version's rows in every descendant
-- table by the version's id, and a grandchild row carries its parent's
-- position.
CREATE TABLE policy.rule_conditions (
    id              uuid     PRIMARY KEY DEFAULT gen_random_uuid(),
    rule_id         uuid     NOT NULL REFERENCES policy.rules (id) ON DELETE CASCADE,
    pack_version_id uuid     NOT NULL,
    rule_position   integer  NOT NULL,
    tenant_id       text     NOT NULL,
    field           text     NOT NULL,
    operator        smallint NOT NULL,
    value           jsonb    NOT NULL
);
CREATE INDEX rule_conditions_rule ON policy.rule_conditions (rule_id);
CREATE INDEX rule_conditions_version ON policy.rule_conditions (pack_version_id);

CREATE TRIGGER packs_touch BEFORE UPDATE ON policy.packs FOR EACH ROW EXECUTE FUNCTION policy.touch_updated_at();
CREATE TRIGGER pack_versions_touch BEFORE UPDATE ON policy.pack_versions FOR EACH ROW EXECUTE FUNCTION policy.touch_updated_at();

ALTER TABLE policy.packs ENABLE ROW LEVEL SECURITY;
ALTER TABLE policy.packs FORCE ROW LEVEL SECURITY;
CREATE POLICY packs_tenant_isolation ON policy.packs USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE policy.pack_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE policy.pack_versions FORCE ROW LEVEL SECURITY;
CREATE POLICY pack_versions_tenant_isolation ON policy.pack_versions USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE policy.rules ENABLE ROW LEVEL SECURITY;
ALTER TABLE policy.rules FORCE ROW LEVEL SECURITY;
CREATE POLICY rules_tenant_isolation ON policy.rules USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE policy.rule_conditions ENABLE ROW LEVEL SECURITY;
ALTER TABLE policy.rule_conditions FORCE ROW LEVEL SECURITY;
CREATE POLICY rule_conditions_tenant_isolation ON policy.rule_conditions USING (tenant_id = current_setting('app.tenant_id'));

RESET ROLE;
