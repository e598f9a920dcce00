-- Allocations: which payment settles which invoice, decided by the engine or a person.
-- status: proposed (in the review queue), applied (counts against the invoice), rejected
-- (a person said no; never proposed again), undone (was applied, taken back with a reason).
CREATE TABLE allocations (
    tenant_id       text             NOT NULL,
    allocation_id   bigint           GENERATED ALWAYS AS IDENTITY,
    account_id      bigint           NOT NULL,
    entry_id        text             NOT NULL,
    payment_key     text             NOT NULL,
    invoice_id      text             NOT NULL,
    amount          numeric          NOT NULL CHECK (amount > 0),   -- invoice currency
    currency        char(3)          NOT NULL,
    payment_amount  numeric          NOT NULL CHECK (payment_amount > 0),  -- payment currency
    settles         numeric          NOT NULL,  -- taken off the open amount (with write-offs)
    confidence      double precision,
    decision        text             NOT NULL CHECK (decision IN ('auto', 'review', 'manual')),
    status          text             NOT NULL
        CHECK (status IN ('proposed', 'applied', 'rejected', 'undone')),
    settlement      text,
    difference      numeric,
    fx_rate         numeric,
    reasons         jsonb            NOT NULL DEFAULT '[]',
    created_at      timestamptz      NOT NULL DEFAULT now(),
    created_by      text             NOT NULL,
    decided_at      timestamptz,
    decided_by      text,
    note            text,
    PRIMARY KEY (tenant_id, allocation_id),
    FOREIGN KEY (tenant_id, account_id, entry_id)
        REFERENCES transactions (tenant_id, account_id, entry_id),
    FOREIGN KEY (tenant_id, invoice_id) REFERENCES invoices (tenant_id, invoice_id)
);
CREATE INDEX allocations_queue ON allocations (tenant_id, status, decision, allocation_id);
CREATE INDEX allocations_entry ON allocations (tenant_id, account_id, entry_id);
CREATE INDEX allocations_invoice ON allocations (tenant_id, invoice_id);
