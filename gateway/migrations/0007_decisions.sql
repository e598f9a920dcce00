-- Decisions that stick: what accepted matches taught, kept apart from CRM data; undo history;
-- payments whose reconciliation failed (docs/matching.md).

-- learned_payers: each payer IBAN or name a person's decision (an accepted proposal or a
-- manual allocation) taught the engine, with the allocation that taught it. The CRM owns
-- customers.ibans and customers.aliases and may replace them on every sync; what was learned
-- lives here, so a sync never erases it, and undo removes exactly what its allocation taught.
-- The engine sees a customer's CRM data plus every value a live (applied) allocation taught.
CREATE TABLE learned_payers (
    tenant_id      text        NOT NULL,
    allocation_id  bigint      NOT NULL,
    kind           text        NOT NULL CHECK (kind IN ('iban', 'name')),
    customer_id    text        NOT NULL,
    value          text        NOT NULL CHECK (value <> ''),
    learned_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, allocation_id, kind),
    FOREIGN KEY (tenant_id, allocation_id) REFERENCES allocations (tenant_id, allocation_id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, customer_id)
);
CREATE INDEX learned_payers_customer ON learned_payers (tenant_id, customer_id);

-- Until now learning appended to customers.ibans and .aliases (and a CRM sync erased it):
-- what the applied decisions of people taught is recovered from the decisions themselves.
INSERT INTO learned_payers (tenant_id, allocation_id, kind, customer_id, value)
SELECT a.tenant_id, a.allocation_id, 'iban', i.customer_id,
       upper(regexp_replace(t.counterparty_account, '\s', '', 'g'))
FROM allocations a
JOIN invoices i ON i.tenant_id = a.tenant_id AND i.invoice_id = a.invoice_id
JOIN transactions t ON t.tenant_id = a.tenant_id AND t.account_id = a.account_id
                   AND t.entry_id = a.entry_id
WHERE a.status = 'applied' AND a.decision IN ('review', 'manual')
  AND upper(regexp_replace(t.counterparty_account, '\s', '', 'g'))
      ~ '^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$';
INSERT INTO learned_payers (tenant_id, allocation_id, kind, customer_id, value)
SELECT a.tenant_id, a.allocation_id, 'name', i.customer_id, t.counterparty_name
FROM allocations a
JOIN invoices i ON i.tenant_id = a.tenant_id AND i.invoice_id = a.invoice_id
JOIN transactions t ON t.tenant_id = a.tenant_id AND t.account_id = a.account_id
                   AND t.entry_id = a.entry_id
WHERE a.status = 'applied' AND a.decision IN ('review', 'manual')
  AND coalesce(t.counterparty_name, '') <> '';

-- allocations: undo no longer overwrites the decision it takes back. decided_at/_by/note say
-- who applied (or rejected) it; undone_at/_by/undo_reason who took it back, when and why.
ALTER TABLE allocations
    ADD COLUMN undone_at    timestamptz,
    ADD COLUMN undone_by    text,
    ADD COLUMN undo_reason  text;
-- Undone before this migration: the undo had overwritten the decision. Automatic and manual
-- allocations were applied when made, by their maker; who accepted a proposal is lost.
UPDATE allocations SET
    undone_at = coalesce(decided_at, created_at), undone_by = coalesce(decided_by, 'unknown'),
    undo_reason = coalesce(note, 'not recorded'),
    decided_at = CASE WHEN decision IN ('auto', 'manual') THEN created_at END,
    decided_by = CASE WHEN decision IN ('auto', 'manual') THEN created_by END,
    note = NULL
WHERE status = 'undone';
ALTER TABLE allocations ADD CONSTRAINT allocations_undo_complete CHECK (
    (status = 'undone') = (undone_at IS NOT NULL AND undone_by IS NOT NULL
                           AND undo_reason IS NOT NULL));
CREATE INDEX allocations_undone ON allocations (tenant_id, account_id, entry_id)
    WHERE status = 'undone';

-- reconcile_failures: a payment whose reconciliation failed (the engine raised, or storing
-- its result did), isolated from the others of the pass and recorded here, one row per
-- payment. It is tried again when the payment or the tenant's invoices and customers change
-- (basis differs) or once retry_at has passed (backing off); resolved_at is set when a later
-- pass succeeds. error never holds names, IBANs or amounts: it is our own description.
CREATE TABLE reconcile_failures (
    tenant_id    text        NOT NULL,
    account_id   bigint      NOT NULL,
    entry_id     text        NOT NULL,
    stage        text        NOT NULL CHECK (stage IN ('engine', 'apply')),
    error        text        NOT NULL,
    basis        text        NOT NULL,
    attempts     integer     NOT NULL DEFAULT 1 CHECK (attempts > 0),
    first_seen   timestamptz NOT NULL DEFAULT now(),
    last_seen    timestamptz NOT NULL DEFAULT now(),
    retry_at     timestamptz NOT NULL,
    resolved_at  timestamptz,
    PRIMARY KEY (tenant_id, account_id, entry_id),
    FOREIGN KEY (tenant_id, account_id, entry_id)
        REFERENCES transactions (tenant_id, account_id, entry_id) ON DELETE CASCADE
);
CREATE INDEX reconcile_failures_open ON reconcile_failures (tenant_id, last_seen)
    WHERE resolved_at IS NULL;
