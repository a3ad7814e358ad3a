-- StellaOps vulnerability database (Concelier): the feed sources and the
-- advisories merged from them, with their aliases, affected packages and
-- the version ranges of each package. The conventions every module follows
-- are in ../README.md.
--
-- Advisories and sources are global: every tenant sees the same feeds, so
-- these tables have no tenant_id and no row-level security.
--
-- Apply once, to the database that holds every module's schema, as a
-- superuser (it creates the role vuln_admin, then the objects as that role):
--
--   psql -v ON_ERROR_STOP=1 -d stellaops -f deploy/examples/vuln/schema.sql

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'vuln_admin') THEN
        CREATE ROLE vuln_admin LOGIN BYPASSRLS;
    END IF;
    EXECUTE format('GRANT CREATE ON DATABASE %I TO vuln_admin', current_database());
END
$$;

CREATE SCHEMA vuln AUTHORIZATION vuln_admin;
SET ROLE vuln_admin;

CREATE FUNCTION vuln.touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TABLE vuln.sources (
    id                     uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    source_key             text        NOT NULL,
    display_name           text        NOT NULL,
    -- 1 nvd, 2 ghsa, 3 osv, 4 csaf, 5 kev
    kind                   smallint    NOT NULL,
    base_url               text,
    enabled                boolean     NOT NULL DEFAULT true,
    priority               integer     NOT NULL DEFAULT 100,
    fetch_interval_seconds integer,
    last_fetched_at        timestamptz,
    cursor                 jsonb       NOT NULL DEFAULT '{}',
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sources_source_key_key UNIQUE (source_key)
);

CREATE TABLE vuln.advisories (
    id           uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
    advisory_key text         NOT NULL, -- GHSA-…, CVE-…
    source_key   text         NOT NULL,
    title        text         NOT NULL,
    summary      text,
    -- 1 low, 2 medium, 3 high, 4 critical
    severity     smallint     CHECK (severity BETWEEN 1 AND 4),
    cvss_version text,
    cvss_vector  text,
    cvss_score   numeric(3,1) CHECK (cvss_score BETWEEN 0 AND 10),
    epss_score   numeric(6,5),
    cwes         text[]       NOT NULL DEFAULT '{}',
    refs         jsonb        NOT NULL DEFAULT '[]',
    provenance   jsonb        NOT NULL DEFAULT '{}', -- what the feed sent beyond the columns
    published_at timestamptz,
    modified_at  timestamptz,
    withdrawn_at timestamptz,
    search       tsvector     GENERATED ALWAYS AS (
                     to_tsvector('simple', advisory_key || ' ' || title || ' ' || coalesce(summary, ''))) STORED,
    created_at   timestamptz  NOT NULL DEFAULT now(),
    updated_at   timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT advisories_advisory_key_key UNIQUE (advisory_key)
);
CREATE INDEX advisories_search ON vuln.advisories USING gin (search);
CREATE INDEX advisories_modified_at ON vuln.advisories (modified_at);

CREATE TABLE vuln.advisory_aliases (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    advisory_id uuid NOT NULL REFERENCES vuln.advisories (id) ON DELETE CASCADE,
    alias       text NOT NULL,
    CONSTRAINT advisory_aliases_advisory_alias_key UNIQUE (advisory_id, alias)
);
CREATE INDEX advisory_aliases_alias ON vuln.advisory_aliases (alias);

CREATE TABLE vuln.affected_packages (
    id           uuid    PRIMARY KEY DEFAULT gen_random_uuid(),
    advisory_id  uuid    NOT NULL REFERENCES vuln.advisories (id) ON DELETE CASCADE,
    position     integer NOT NULL, -- the package's place in the advisory
    ecosystem    text    NOT NULL,
    package_name text    NOT NULL,
    purl         text,
    versions     text[]  NOT NULL DEFAULT '{}',
    CONSTRAINT affected_packages_advisory_position_key UNIQUE (advisory_id, position)
);
CREATE INDEX affected_packages_purl ON vuln.affected_packages (purl);

-- A package's version ranges. advisory_id and package_position repeat what
-- affected_package_id points to: the replicator replaces an advisory's
-- rows in every descendant table by the advisory's id, and a grandchild
-- row carries its parent's position.
CREATE TABLE vuln.affected_ranges (
    id                  uuid     PRIMARY KEY DEFAULT gen_random_uuid(),
    affected_package_id uuid     NOT NULL REFERENCES vuln.affected_packages (id) ON DELETE CASCADE,
    advisory_id         uuid     NOT NULL,
    package_position    integer  NOT NULL,
    -- 1 SEMVER, 2 ECOSYSTEM, 3 GIT
    range_type          smallint NOT NULL,
    introduced          text,
    fixed               text,
    last_affected       text
);
CREATE INDEX affected_ranges_package ON vuln.affected_ranges (affected_package_id);
CREATE INDEX affected_ranges_advisory ON vuln.affected_ranges (advisory_id);

CREATE TRIGGER sources_touch BEFORE UPDATE ON vuln.sources FOR EACH ROW EXECUTE FUNCTION vuln.touch_updated_at();
CREATE TRIGGER advisories_touch BEFORE UPDATE ON vuln.advisories FOR EACH ROW EXECUTE FUNCTION vuln.touch_updated_at();

RESET ROLE;
