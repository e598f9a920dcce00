-- API keys, stored only as the SHA-256 of their secret part.
CREATE TABLE api_keys (
    tenant_id     text        NOT NULL,
    key_id        text        NOT NULL,
    name          text        NOT NULL,
    role          text        NOT NULL
        CHECK (role IN ('admin', 'treasury', 'crm', 'compliance', 'auditor')),
    secret_sha256 bytea       NOT NULL CHECK (length(secret_sha256) = 32),
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    PRIMARY KEY (key_id)
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, name);
