-- StellaOps VEX (Excititor): ingested VEX documents with their statements,
-- and the consensus computed per vulnerability and product with the
-- provider statements it weighed. The conventions every module follows are
-- in ../README.md.
--
-- Apply once, to the database that holds every module's schema, as a
-- superuser (it creates the role vex_admin, then the objects as that role):
--
--   psql -v ON_ERROR_STOP=1 -d stellaops -f deploy/examples/vex/schema.sql

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'vex_admin') THEN
        CREATE ROLE vex_admin LOGIN BYPASSRLS;
    END IF;
    EXECUTE format('GRANT CREATE ON DATABASE %I TO vex_admin', current_database());
END
$$;

CREATE SCHEMA vex AUTHORIZATION vex_admin;
SET ROLE vex_admin;

CREATE FUNCTION vex.touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

-- Status and justification codes, shared by statements and consensus:
--   status         1 not_affected, 2 affected, 3 fixed, 4 under_investigation
--   justification  1 component_not_present, 2 vulnerable_code_not_present,
--                  3 vulnerable_code_not_in_execute_path,
--                  4 vulnerable_code_cannot_be_controlled_by_adversary,
--                  5 inline_mitigations_already_exist

CREATE TABLE vex.documents (
    id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id          text        NOT NULL,
    digest             text        NOT NULL, -- sha256:… of the raw document
    -- 1 openvex, 2 csaf, 3 cyclonedx
    format             smallint    NOT NULL,
    document_uri       text,
    provider           text        NOT NULL,
    author             text,
    version            integer     NOT NULL DEFAULT 1,
    issued_at          timestamptz,
    ingested_at        timestamptz NOT NULL,
    source_uri         text,
    signature_verified boolean     NOT NULL DEFAULT false,
    signature          jsonb,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT documents_tenant_digest_key UNIQUE (tenant_id, digest)
);

CREATE TABLE vex.statements (
    id               uuid     PRIMARY KEY DEFAULT gen_random_uuid(),
    document_id      uuid     NOT NULL REFERENCES vex.documents (id) ON DELETE CASCADE,
    tenant_id        text     NOT NULL,
    vulnerability_id text     NOT NULL,
    status           smallint NOT NULL CHECK (status BETWEEN 1 AND 4),
    justification    smallint CHECK (justification BETWEEN 1 AND 5),
    impact_statement text,
    action_statement text,
    products         text[]   NOT NULL DEFAULT '{}', -- purls
    issued_at        timestamptz,
    search           tsvector GENERATED ALWAYS AS (
                         to_tsvector('simple', vulnerability_id || ' ' || coalesce(impact_statement, ''))) STORED
);
CREATE INDEX statements_document ON vex.statements (document_id);
CREATE INDEX statements_vulnerability ON vex.statements (tenant_id, vulnerability_id);
CREATE INDEX statements_products ON vex.statements USING gin (products);

CREATE TABLE vex.consensus (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        text        NOT NULL,
    vulnerability_id text        NOT NULL,
    product_key      text        NOT NULL,
    status           smallint    NOT NULL CHECK (status BETWEEN 1 AND 4),
    justification    smallint    CHECK (justification BETWEEN 1 AND 5),
    policy_revision  text,
    calculated_at    timestamptz NOT NULL,
    conflicts        jsonb       NOT NULL DEFAULT '[]',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT consensus_tenant_vulnerability_product_key UNIQUE (tenant_id, vulnerability_id, product_key)
);

CREATE TABLE vex.consensus_sources (
    id              uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
    consensus_id    uuid         NOT NULL REFERENCES vex.consensus (id) ON DELETE CASCADE,
    tenant_id       text         NOT NULL,
    provider_id     text         NOT NULL,
    status          smallint     NOT NULL CHECK (status BETWEEN 1 AND 4),
    weight          numeric(4,3) NOT NULL,
    document_digest text,
    CONSTRAINT consensus_sources_provider_key UNIQUE (consensus_id, provider_id)
);

CREATE TRIGGER documents_touch BEFORE UPDATE ON vex.documents FOR EACH ROW EXECUTE FUNCTION vex.touch_updated_at();
CREATE TRIGGER consensus_touch BEFORE UPDATE ON vex.consensus FOR EACH ROW EXECUTE FUNCTION vex.touch_updated_at();

ALTER TABLE vex.documents ENABLE ROW LEVEL SECURITY;
ALTER TABLE vex.documents FORCE ROW LEVEL SECURITY;
CREATE POLICY documents_tenant_isolation ON vex.documents USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE vex.statements ENABLE ROW LEVEL SECURITY;
ALTER TABLE vex.statements FORCE ROW LEVEL SECURITY;
CREATE POLICY statements_tenant_isolation ON vex.statements USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE vex.consensus ENABLE ROW LEVEL SECURITY;
ALTER TABLE vex.consensus FORCE ROW LEVEL SECURITY;
CREATE POLICY consensus_tenant_isolation ON vex.consensus USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE vex.consensus_sources ENABLE ROW LEVEL SECURITY;
ALTER TABLE vex.consensus_sources FORCE ROW LEVEL SECURITY;
CREATE POLICY consensus_sources_tenant_isolation ON vex.consensus_sources USING (tenant_id = current_setting('app.tenant_id'));

RESET ROLE;
