-- Tenants, users and API tokens: who may talk to casefile, and for which tenant.

CREATE TABLE tenants (
    id          uuid        NOT NULL DEFAULT gen_random_uuid(),
    name        text        NOT NULL,
    licenses    text[]      NOT NULL DEFAULT ARRAY['XDR']::text[],
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenants_pkey PRIMARY KEY (id),
    CONSTRAINT tenants_name_check CHECK (length(btrim(name)) BETWEEN 1 AND 100),
    CONSTRAINT tenants_licenses_check
        CHECK (licenses <@ ARRAY['XDR', 'MDR', 'MANAGED_RISK']::text[])
);
CREATE UNIQUE INDEX tenants_name_key ON tenants (lower(name));

CREATE TABLE users (
    id            uuid        NOT NULL DEFAULT gen_random_uuid(),
    tenant_id     uuid        NOT NULL,
    email         text        NOT NULL,
    display_name  text        NOT NULL,
    role          text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT users_role_check CHECK (role IN
        ('ADMIN', 'ANALYST', 'SUPER_ADMIN', 'READ_ONLY', 'PROVIDER_ANALYST', 'INGEST')),
    CONSTRAINT users_email_check CHECK (length(email) BETWEEN 3 AND 254),
    CONSTRAINT users_display_name_check CHECK (length(btrim(display_name)) BETWEEN 1 AND 200)
);
-- Also serves every lookup of a tenant's users (tenant_id leads).
CREATE UNIQUE INDEX users_tenant_email_key ON users (tenant_id, lower(email));
CREATE INDEX users_tenant_created_idx ON users (tenant_id, created_at, id);

CREATE TABLE api_tokens (
    id            uuid        NOT NULL DEFAULT gen_random_uuid(),
    tenant_id     uuid        NOT NULL,
    user_id       uuid        NOT NULL,
    name          text        NOT NULL,
    -- SHA-256 of the token: the token itself is shown once and never stored.
    token_hash    bytea       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    revoked_at    timestamptz,
    last_used_at  timestamptz,
    CONSTRAINT api_tokens_pkey PRIMARY KEY (id),
    CONSTRAINT api_tokens_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT api_tokens_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id),
    CONSTRAINT api_tokens_token_hash_key UNIQUE (token_hash),
    CONSTRAINT api_tokens_token_hash_check CHECK (length(token_hash) = 32),
    CONSTRAINT api_tokens_name_check CHECK (length(btrim(name)) BETWEEN 1 AND 100)
);
CREATE INDEX api_tokens_user_id_idx ON api_tokens (user_id);
CREATE INDEX api_tokens_tenant_id_idx ON api_tokens (tenant_id);
