-- The audit trail (docs/audit.md): one hash-chained log per tenant, appended to only by
-- gateway/store/audit.py, in the transaction of the change each entry records.
--
-- A row is an entry exactly as security.audit makes it (the entry's "v" is 1 for every
-- row), so an export is the stored rows in seq order: time is the entry's instant
-- (microseconds, written back as "...Z"), actor, object, before and after its JSON values
-- (JSON null, never SQL NULL), prev and hash its lower-case hex digests.
--
-- One chain per tenant, not one for the whole database: every table carries its tenant key
-- so the schema can be distributed by tenant, and a chain whose entries sat on several
-- nodes would need a global lock to append; tenants also do not wait for one another.
CREATE TABLE audit_log (
    tenant_id text        NOT NULL,
    seq       bigint      NOT NULL CHECK (seq >= 1),
    time      timestamptz NOT NULL,
    actor     jsonb       NOT NULL,
    action    text        NOT NULL,
    object    jsonb       NOT NULL,
    before    jsonb       NOT NULL,
    after     jsonb       NOT NULL,
    prev      text        NOT NULL,
    hash      text        NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);

-- GET /v1/audit's filters: by action, by object, by time.
CREATE INDEX audit_log_action ON audit_log (tenant_id, action, seq);
CREATE INDEX audit_log_object
    ON audit_log (tenant_id, (object ->> 'type'), (object ->> 'id'), seq);
CREATE INDEX audit_log_time ON audit_log (tenant_id, time);

-- The trail is never changed: every UPDATE, DELETE and TRUNCATE is refused, whoever asks.
-- Only the owner of the table (or a superuser) could disable these triggers, so the service
-- must not log in as the owner: docs/operations.md, "The audit trail's protection".
CREATE FUNCTION audit_log_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % on audit_log refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse();

-- Whatever privileges were granted on the new table by default (ALTER DEFAULT PRIVILEGES,
-- as docs/operations.md sets up for the service's role), only SELECT and INSERT stay.
DO $$
DECLARE
    grant_ record;
BEGIN
    FOR grant_ IN
        SELECT DISTINCT a.grantee FROM pg_class c, aclexplode(c.relacl) a
        WHERE c.oid = 'audit_log'::regclass AND a.grantee <> c.relowner
    LOOP
        IF grant_.grantee = 0 THEN
            REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON audit_log FROM PUBLIC;
        ELSE
            EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER'
                           ' ON audit_log FROM %s', grant_.grantee::regrole);
        END IF;
    END LOOP;
END
$$;

-- What each run of `recon-gateway audit verify` found, per tenant (GET /v1/audit reports
-- the last): written by the command, so an entry of its own would only lengthen the chain.
CREATE TABLE audit_verifications (
    tenant_id    text        NOT NULL,
    verified_at  timestamptz NOT NULL,
    entries      bigint      NOT NULL,
    head_seq     bigint      NOT NULL,
    problem_seq  bigint,
    problem_kind text,
    problem      text,
    PRIMARY KEY (tenant_id, verified_at)
);
