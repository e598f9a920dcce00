-- Ownership of what each CRM key pushed.
--
-- owner_key_id is the API key that first pushed the row (api_keys.key_id). A crm key sees
-- and changes only its own rows; admin, treasury and the reading roles see all. NULL: no
-- crm key owns the row (pushed by an admin key, imported from the command line without
-- --key, or stored before this migration); no crm key sees or changes it.
ALTER TABLE customers ADD COLUMN owner_key_id text;
ALTER TABLE invoices ADD COLUMN owner_key_id text;

-- A crm key's listings: its own rows in id order.
CREATE INDEX customers_owner ON customers (tenant_id, owner_key_id, customer_id);
CREATE INDEX invoices_owner ON invoices (tenant_id, owner_key_id, invoice_id);

-- Rows stored before ownership existed: where a tenant has exactly one active crm key,
-- that key could already read and change all of them, so they become its own and nothing
-- becomes visible to a key that could not see it before. Where there are several, no one
-- can tell which CRM pushed what: the rows stay unowned (admin and treasury see them) until
-- an operator hands them to a key (`recon-gateway invoices import --key`).
WITH sole AS (
    SELECT tenant_id, min(key_id) AS key_id FROM api_keys
    WHERE role = 'crm' AND revoked_at IS NULL
    GROUP BY tenant_id HAVING count(*) = 1
)
UPDATE customers c SET owner_key_id = sole.key_id FROM sole
WHERE c.tenant_id = sole.tenant_id;

WITH sole AS (
    SELECT tenant_id, min(key_id) AS key_id FROM api_keys
    WHERE role = 'crm' AND revoked_at IS NULL
    GROUP BY tenant_id HAVING count(*) = 1
)
UPDATE invoices i SET owner_key_id = sole.key_id FROM sole
WHERE i.tenant_id = sole.tenant_id;
