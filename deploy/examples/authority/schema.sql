-- StellaOps Authority: roles, users (with their role grants), OAuth clients
-- (with their redirect URIs) and issued tokens. The conventions every module
-- follows are in ../README.md.
--
-- Apply once, to the database that holds every module's schema, as a
-- superuser: it creates the role authority_admin (BYPASSRLS can only be
-- given by a superuser), then creates the schema's objects as that role.
--
--   psql -v ON_ERROR_STOP=1 -d stellaops -f deploy/examples/authority/schema.sql

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'authority_admin') THEN
        CREATE ROLE authority_admin LOGIN BYPASSRLS;
    END IF;
    -- The migration role may create schemas (replicator migrate creates "replicator").
    EXECUTE format('GRANT CREATE ON DATABASE %I TO authority_admin', current_database());
END
$$;

CREATE SCHEMA authority AUTHORIZATION authority_admin;
SET ROLE authority_admin;

CREATE FUNCTION authority.touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TABLE authority.roles (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   text        NOT NULL,
    name        text        NOT NULL,
    description text,
    scopes      text[]      NOT NULL DEFAULT '{}',
    is_system   boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT roles_tenant_name_key UNIQUE (tenant_id, name)
);

CREATE TABLE authority.users (
    id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id          text        NOT NULL,
    username           text        NOT NULL,
    email              text,
    display_name       text,
    -- 1 active, 2 disabled, 3 locked
    status             smallint    NOT NULL DEFAULT 1 CHECK (status BETWEEN 1 AND 3),
    email_verified     boolean     NOT NULL DEFAULT false,
    mfa_enabled        boolean     NOT NULL DEFAULT false,
    mfa_methods        text[]      NOT NULL DEFAULT '{}',
    failed_login_count integer     NOT NULL DEFAULT 0,
    last_login_at      timestamptz,
    last_login_ip      inet,
    attributes         jsonb       NOT NULL DEFAULT '{}',
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_tenant_username_key UNIQUE (tenant_id, username)
);
CREATE UNIQUE INDEX users_tenant_email_key ON authority.users (tenant_id, lower(email)) WHERE email IS NOT NULL;

CREATE TABLE authority.user_roles (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid        NOT NULL REFERENCES authority.users (id) ON DELETE CASCADE,
    role_id    uuid        NOT NULL REFERENCES authority.roles (id) ON DELETE CASCADE,
    tenant_id  text        NOT NULL,
    granted_at timestamptz NOT NULL DEFAULT now(),
    granted_by text,
    CONSTRAINT user_roles_user_role_key UNIQUE (user_id, role_id)
);
CREATE INDEX user_roles_role_id ON authority.user_roles (role_id);

CREATE TABLE authority.clients (
    id                    uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id             text        NOT NULL,
    client_key            text        NOT NULL, -- the OAuth client_id
    display_name          text,
    -- 1 public, 2 confidential
    client_type           smallint    NOT NULL CHECK (client_type IN (1, 2)),
    secret_hash           text,
    enabled               boolean     NOT NULL DEFAULT true,
    require_pkce          boolean     NOT NULL DEFAULT false,
    allowed_grant_types   text[]      NOT NULL DEFAULT '{}',
    allowed_scopes        text[]      NOT NULL DEFAULT '{}',
    access_token_lifetime integer, -- seconds
    properties            jsonb       NOT NULL DEFAULT '{}',
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT clients_tenant_client_key UNIQUE (tenant_id, client_key)
);

CREATE TABLE authority.client_redirect_uris (
    id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id uuid NOT NULL REFERENCES authority.clients (id) ON DELETE CASCADE,
    tenant_id text NOT NULL,
    uri       text NOT NULL,
    CONSTRAINT client_redirect_uris_client_uri_key UNIQUE (client_id, uri)
);

CREATE TABLE authority.tokens (
    id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id         text        NOT NULL,
    -- 1 access, 2 refresh, 3 authorization_code, 4 device_code
    token_type        smallint    NOT NULL CHECK (token_type BETWEEN 1 AND 4),
    token_hash        text        NOT NULL,
    client_id         uuid        NOT NULL REFERENCES authority.clients (id) ON DELETE CASCADE,
    user_id           uuid        REFERENCES authority.users (id) ON DELETE CASCADE,
    scopes            text[]      NOT NULL DEFAULT '{}',
    issued_at         timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL,
    revoked_at        timestamptz,
    revocation_reason text,
    issued_from_ip    inet,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tokens_tenant_hash_key UNIQUE (tenant_id, token_hash)
);
CREATE INDEX tokens_active_expiry ON authority.tokens (expires_at) WHERE revoked_at IS NULL;

CREATE TRIGGER roles_touch BEFORE UPDATE ON authority.roles FOR EACH ROW EXECUTE FUNCTION authority.touch_updated_at();
CREATE TRIGGER users_touch BEFORE UPDATE ON authority.users FOR EACH ROW EXECUTE FUNCTION authority.touch_updated_at();
CREATE TRIGGER clients_touch BEFORE UPDATE ON authority.clients FOR EACH ROW EXECUTE FUNCTION authority.touch_updated_at();
CREATE TRIGGER tokens_touch BEFORE UPDATE ON authority.tokens FOR EACH ROW EXECUTE FUNCTION authority.touch_updated_at();

-- Row-level security: every table is tenant-scoped. current_setting without
-- missing_ok raises when app.tenant_id is not set, so a session that forgot
-- it fails instead of seeing nothing.
ALTER TABLE authority.roles ENABLE ROW LEVEL SECURITY;
ALTER TABLE authority.roles FORCE ROW LEVEL SECURITY;
CREATE POLICY roles_tenant_isolation ON authority.roles USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE authority.users ENABLE ROW LEVEL SECURITY;
ALTER TABLE authority.users FORCE ROW LEVEL SECURITY;
CREATE POLICY users_tenant_isolation ON authority.users USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE authority.user_roles ENABLE ROW LEVEL SECURITY;
ALTER TABLE authority.user_roles FORCE ROW LEVEL SECURITY;
CREATE POLICY user_roles_tenant_isolation ON authority.user_roles USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE authority.clients ENABLE ROW LEVEL SECURITY;
ALTER TABLE authority.clients FORCE ROW LEVEL SECURITY;
CREATE POLICY clients_tenant_isolation ON authority.clients USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE authority.client_redirect_uris ENABLE ROW LEVEL SECURITY;
ALTER TABLE authority.client_redirect_uris FORCE ROW LEVEL SECURITY;
CREATE POLICY client_redirect_uris_tenant_isolation ON authority.client_redirect_uris USING (tenant_id = current_setting('app.tenant_id'));
ALTER TABLE authority.tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE authority.tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tokens_tenant_isolation ON authority.tokens USING (tenant_id = current_setting('app.tenant_id'));

RESET ROLE;
