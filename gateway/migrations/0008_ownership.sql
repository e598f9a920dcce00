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
), owned_customers AS (
    UPDATE customers c SET owner_key_id = sole.key_id FROM sole
    WHERE c.tenant_id = sole.tenant_id
)
UPDATE invoices i SET owner_key_id = sole.key_id FROM sole
WHERE i.tenant_id = sole.tenant_id;

-- Events carry the owner of what they are about, so a crm key's subscriptions get only the
-- events of its own invoices (and of its own subscriptions), by webhook, feed and replay
-- alike (gateway/store/events.py, reaches). owned: the event's lane is an invoice's or a
-- subscription's, whose owning key (when it was written) is owner_key_id; NULL there: no
-- key owned it, and only subscriptions of keys that are not crm keys get it. Events of an
-- account's lane (payments, statements) are not owned: every subscription of their types
-- gets them.
ALTER TABLE events ADD COLUMN owned boolean NOT NULL DEFAULT false;
ALTER TABLE events ADD COLUMN owner_key_id text;

UPDATE events SET owned = true WHERE lane LIKE 'invoice:%' OR lane LIKE 'subscription:%';
UPDATE events e SET owner_key_id = i.owner_key_id FROM invoices i
WHERE e.owned AND i.tenant_id = e.tenant_id AND e.lane = 'invoice:' || i.invoice_id;
UPDATE events e SET owner_key_id = s.owner_key_id FROM subscriptions s
WHERE e.owned AND s.tenant_id = e.tenant_id AND e.lane = 'subscription:' || s.subscription_id;

-- Deliveries still waiting for a subscription that no longer gets their event are dropped:
-- a lane left with nothing pending is handed back idle by the dispatcher that next takes it.
DELETE FROM deliveries d USING events e, subscriptions s
WHERE d.status = 'pending' AND e.tenant_id = d.tenant_id AND e.event_id = d.event_id
  AND s.tenant_id = d.tenant_id AND s.subscription_id = d.subscription_id
  AND e.owned AND e.owner_key_id IS DISTINCT FROM s.owner_key_id
  AND NOT EXISTS (SELECT 1 FROM api_keys k WHERE k.key_id = s.owner_key_id
                  AND k.tenant_id = s.tenant_id AND k.role <> 'crm');
