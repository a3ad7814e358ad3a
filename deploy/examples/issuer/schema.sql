-- StellaOps Issuer Directory: the issuers whose advisories and VEX
-- statements are trusted, their publication endpoints and their signing
-- keys. The conventions every module follows are in ../README.md.
--
-- Apply once, to the database that holds every module's schema, as a
-- superuser (it creates the role issuer_admin, then the objects as that
-- role):
--
--   psql -v ON_ERROR_STOP=1 -d stellaops -f deploy/examples/issuer/schema.sql

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'issuer_admin') THEN
        CREATE ROLE issuer_admin LOGIN BYPASSRLS;
    END IF;
    EXECUTE format('GRANT CREATE ON DATABASE %I TO issuer_admin', current_database());
END
$$;

CREATE SCHEMA issuer AUTHORIZATION issuer_admin;
SET ROLE issuer_admin;

CREATE FUNCTION issuer.touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TABLE issuer.issuers (
    id            uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     text         NOT NULL,
    slug          text         NOT NULL,
    display_name  text         NOT NULL,
    description   text,
    contact_email text,
    website       text,
    tags          text[]       NOT NULL DEFAULT '{}',
    -- 1 authoritative, 2 trusted, 3 community
    trust_level   smallint     NOT NULL,
    trust_weight  numeric(3,2) NOT NULL CHECK (trust_weight BETWEEN 0 AND 1),
    search        tsvector     GENERATED ALWAYS AS (
                      to_tsvector('simple', slug || ' ' || display_name || ' ' || coalesce(description, ''))) STORED,
    created_at    timestamptz  NOT NULL DEFAULT now(),
    updated_at    timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT issuers_tenant_slug_key UNIQUE (tenant_id, slug)
);
CREATE INDEX issuers_search ON issuer.issuers USING gin (search);

CREATE TABLE issuer.issuer_endpoints (
    id            uuid     PRIMARY KEY DEFAULT gen_random_uuid(),
    issuer_id     uuid     NOT NULL REFERENCES issuer.issuers (id) ON DELETE CASCADE,
    tenant_id     text     NOT NULL,
    -- 1 csaf, 2 openvex, 3 oci_referrer
    kind          smallint NOT NULL,
    url           text     NOT NULL,
    format        text,
    requires_auth boolean  NOT NULL DEFAULT false,
    CONSTRAINT issuer_endpoints_issuer_url_key UNIQUE (issuer_id, url)
);

CREATE TABLE issuer.issuer_keys (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    issuer_id       uuid        NOT NULL REFERENCES issuer.issuers (id) ON DELETE CASCADE,
    tenant_id       text        NOT NULL,
    key_id          text        NOT NULL,
    -- 1 ed25519, 2 ecdsa_p256, 3 rsa, 4 x509
    key_type        smallint    NOT NULL,
    fingerprint     text        NOT NULL,
    material        jsonb       NOT NULL,
    -- 1 active, 2 retired, 3 revoked
    status          smallint    NOT NULL,
    valid_from      timestamptz NOT NULL,
    valid_to        timestamptz,
    revoked_at      timestamptz,
    replaces_key_id text,
    CONSTRAINT issuer_keys_issuer_key_key UNIQUE (issuer_id, key_id)
);
-- A fingerprint belongs to one unrevoked key per tenant.
CREATE UNIQUE INDEX issuer_keys_unrevoked_fingerprint ON issuer.issuer_keys (tenant_id, fingerprint) WHERE revoked_at IS NULL;

CREATE TRIGGER issuers_touch BEFORE UPDATE ON issuer.issuers FOR EACH ROW EXECUTE FUNCTION issuer.touch_updated_at();

ALTER TABLE issuer.issuers ENABLE ROW LEVEL SECURITY;
ALTER TABLE issuer.issuers FORCE ROW LEVEL SECURITY;
CREATE POLICY issuers_tenant_isolation ON issuer.issuers USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE issuer.issuer_endpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE issuer.issuer_endpoints FORCE ROW LEVEL SECURITY;
CREATE POLICY issuer_endpoints_tenant_isolation ON issuer.issuer_endpoints USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE issuer.issuer_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE issuer.issuer_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY issuer_keys_tenant_isolation ON issuer.issuer_keys USING (tenant_id = current_setting('app.tenant_id'));

RESET ROLE;
