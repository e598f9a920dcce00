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
    open_amount        numeric     NOT NULL,
    issue_date         date        NOT NULL,
    due_date           date,
    reference          text,
    related_invoice_id text,
    cancelled          boolean     NOT NULL DEFAULT false,
    status             text        NOT NULL CHECK (status IN
        ('open', 'partially_paid', 'paid', 'overpaid', 'cancelled')),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, invoice_id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, customer_id)
);
CREATE INDEX invoices_status ON invoices (tenant_id, status, due_date);
CREATE INDEX invoices_customer ON invoices (tenant_id, customer_id);
