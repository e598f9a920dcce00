-- Customers and invoices as the CRMs push them.
CREATE TABLE customers (
    tenant_id    text        NOT NULL,
    customer_id  text        NOT NULL,
    name         text        NOT NULL,
    ibans        text[]      NOT NULL DEFAULT '{}',
    aliases      text[]      NOT NULL DEFAULT '{}',
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, customer_id)
);

CREATE TABLE invoices (
    tenant_id          text        NOT NULL,
    invoice_id         text        NOT NULL,
    customer_id        text        NOT NULL,
    kind               text        NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    currency           char(3)     NOT NULL,
    amount             numeric     NOT NULL CHECK (amount > 0),
    -- What the CRM says is open, and what payments allocated here have settled. The open
    -- amount is the smaller of the CRM's figure and what our allocations leave: a CRM that
    -- has not heard of a payment yet does not reopen the invoice, and one that has (and
    -- says 0) does not make it count twice.
    crm_open_amount    numeric     NOT NULL,
    settled_amount     numeric     NOT NULL DEFAULT 0,
    open_amount        numeric     GENERATED ALWAYS AS
        (least(crm_open_amount, amount - settled_amount)) STORED,
    issue_date         date        NOT NULL,
    due_date           date,
    reference          text,
    related_invoice_id text,
    cancelled          boolean     NOT NULL DEFAULT false,
    status             text        GENERATED ALWAYS AS (CASE
        WHEN cancelled THEN 'cancelled'
        WHEN least(crm_open_amount, amount - settled_amount) < 0 THEN 'overpaid'
        WHEN least(crm_open_amount, amount - settled_amount) = 0 THEN 'paid'
        WHEN least(crm_open_amount, amount - settled_amount) < amount THEN 'partially_paid'
        ELSE 'open' END) STORED,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, invoice_id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, customer_id)
);
CREATE INDEX invoices_status ON invoices (tenant_id, status, due_date);
CREATE INDEX invoices_customer ON invoices (tenant_id, customer_id);
