-- Encryption at rest (issue 12, docs/security.md): the data keys, and the first encrypted
-- columns, webhook signing secrets and our ed25519 signing keys.
--
-- A data key is 32 random bytes that encrypts fields (AES-256-GCM). It is stored only
-- wrapped by a master key of the keyring, a file kept outside the database: the wrapped
-- bytes (nonce 12, ciphertext 32, tag 16) and the id of the master key that wraps them.
-- Rotating a master key rewrites `wrapped` and `master_key_id` here, never a field.
--
-- `id` goes into every ciphertext (4 bytes), so it is unique across tenants and fits in
-- 32 bits. One data key per tenant and table takes the writes (`retired` false, one at most
-- per scope: the unique index makes get-or-create safe when several processes race); a
-- retired one still decrypts what it encrypted. `encryptions` counts what it encrypted,
-- for `envelope.due_for_replacement`.
CREATE SEQUENCE data_keys_id_seq AS bigint MINVALUE 1 MAXVALUE 4294967295;

CREATE TABLE data_keys (
    tenant_id      text        NOT NULL,
    id             bigint      NOT NULL CHECK (id BETWEEN 1 AND 4294967295),
    scope          text        NOT NULL CHECK (left(scope, length(tenant_id) + 1) = tenant_id || '/'),
    master_key_id  text        NOT NULL,
    wrapped        bytea       NOT NULL CHECK (length(wrapped) = 60),
    encryptions    bigint      NOT NULL DEFAULT 0,
    retired        boolean     NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    rewrapped_at   timestamptz,
    PRIMARY KEY (tenant_id, id)
);
ALTER SEQUENCE data_keys_id_seq OWNED BY data_keys.id;
CREATE UNIQUE INDEX data_keys_current ON data_keys (tenant_id, scope) WHERE NOT retired;
CREATE INDEX data_keys_master_key ON data_keys (master_key_id);

-- The sealed (encrypted) columns. The plain ones stay only until the first start with a
-- keyring after this migration: that start encrypts every plain secret and key into the
-- sealed column and empties the plain one (gateway/keyring_start.py), before the service
-- serves anything, since SQL alone has no keyring to encrypt with. A later migration drops
-- the plain columns.
ALTER TABLE subscriptions
    ALTER COLUMN secret DROP NOT NULL,
    ADD COLUMN secret_sealed bytea,
    ADD COLUMN previous_secret_sealed bytea;
ALTER TABLE signing_keys
    ALTER COLUMN private_key DROP NOT NULL,
    ADD COLUMN private_key_sealed bytea;
