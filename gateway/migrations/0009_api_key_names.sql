-- API key names unique per tenant among active keys, and when each key was last used.
--
-- A name says what a key is for ("billing-crm"), and `recon-gateway keys revoke NAME` must
-- revoke exactly the key meant, so two active keys of a tenant may not share a name (a
-- revoked key's name may be given again). Databases from before this migration may hold
-- active keys sharing a name: the one created first keeps it, each later one is renamed
-- "NAME (KEY_ID)" (its id makes the name unique; should even that name be taken, a number
-- is added). Rows refer to keys by id, never by name (decisions already taken keep the
-- name they were taken under, beside the key's id), so a rename changes only how a person
-- finds the key; `recon-gateway keys list` shows the names now in force.
DO $$
DECLARE
    twin record;
    renamed text;
    n integer;
BEGIN
    FOR twin IN
        SELECT key_id, tenant_id, name FROM (
            SELECT key_id, tenant_id, name,
                   row_number() OVER (PARTITION BY tenant_id, name
                                      ORDER BY created_at, key_id) AS place
            FROM api_keys WHERE revoked_at IS NULL) ranked
        WHERE place > 1
        ORDER BY tenant_id, name, place
    LOOP
        renamed := twin.name || ' (' || twin.key_id || ')';
        n := 1;
        WHILE EXISTS (SELECT 1 FROM api_keys WHERE tenant_id = twin.tenant_id
                      AND name = renamed AND revoked_at IS NULL) LOOP
            n := n + 1;
            renamed := twin.name || ' (' || twin.key_id || ', ' || n || ')';
        END LOOP;
        UPDATE api_keys SET name = renamed WHERE key_id = twin.key_id;
    END LOOP;
END
$$;

CREATE UNIQUE INDEX api_keys_active_name ON api_keys (tenant_id, name) WHERE revoked_at IS NULL;

-- When the key was last used, to the minute: written on a request only when the value
-- stored is more than a minute old (gateway/store/api_keys.py, record_use), so a busy key
-- costs one write a minute, not one a request. NULL: not used since this migration.
ALTER TABLE api_keys ADD COLUMN last_used_at timestamptz;
