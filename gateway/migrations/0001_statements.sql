-- Bank accounts, raw documents, statements and transactions.
-- Every table carries tenant_id (and, below the account, account_id) so that the schema
-- can be distributed by tenant. Amounts are numeric with their currency; never float.

CREATE TABLE bank_accounts (
    tenant_id    text        NOT NULL,
    account_id   bigint      GENERATED ALWAYS AS IDENTITY,
    account_key  text        NOT NULL,          -- parsers.model.Account.key
    iban         text,
    number       text,
    bic          text,
    bank_id      text,
    currency     char(3),
    owner_name   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, account_id),
    UNIQUE (tenant_id, account_key)
);

CREATE TABLE raw_documents (
    tenant_id    text        NOT NULL,
    document_id  bigint      GENERATED ALWAYS AS IDENTITY,
    sha256       bytea       NOT NULL CHECK (length(sha256) = 32),
    source       text        NOT NULL,
    format       text        NOT NULL,
    size_bytes   integer     NOT NULL CHECK (size_bytes >= 0),
    content      bytea       NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, document_id),
    UNIQUE (tenant_id, sha256)
);
-- Kept out of line and uncompressed: compressing a 100 MB file inside the import's
-- transaction costs more than its disk space, and once encrypted at rest (a later issue)
-- the bytes will not compress anyway.
ALTER TABLE raw_documents ALTER COLUMN content SET STORAGE EXTERNAL;

CREATE TABLE statements (
    tenant_id        text        NOT NULL,
    account_id       bigint      NOT NULL,
    statement_pk     bigint      GENERATED ALWAYS AS IDENTITY,
    document_id      bigint      NOT NULL,
    ordinal          integer     NOT NULL,     -- position of the statement in its document
    format           text        NOT NULL,
    format_version   text,
    statement_id     text,
    sequence         text,
    created_at       timestamptz,
    period_start     date,
    period_end       date,
    opening_amount   numeric,
    opening_currency char(3),
    opening_date     date,
    closing_amount   numeric,
    closing_currency char(3),
    closing_date     date,
    entry_count      integer     NOT NULL,
    flags            jsonb       NOT NULL DEFAULT '[]',
    imported_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, account_id, statement_pk),
    UNIQUE (tenant_id, document_id, ordinal),
    FOREIGN KEY (tenant_id, account_id) REFERENCES bank_accounts (tenant_id, account_id),
    FOREIGN KEY (tenant_id, document_id) REFERENCES raw_documents (tenant_id, document_id)
);

CREATE TABLE transactions (
    tenant_id            text        NOT NULL,
    account_id           bigint      NOT NULL,
    entry_id             text        NOT NULL,  -- parsers.identity.entry_ids
    seq                  bigint      GENERATED ALWAYS AS IDENTITY,  -- arrival order
    statement_pk         bigint      NOT NULL,  -- the statement that first reported it
    booking_date         date,
    value_date           date,
    amount               numeric     NOT NULL,
    currency             char(3)     NOT NULL,
    status               text        NOT NULL CHECK (status IN ('booked', 'pending', 'info')),
    reversal             boolean     NOT NULL DEFAULT false,
    bank_reference       text,
    counterparty_name    text,
    counterparty_account text,
    end_to_end_id        text,
    remittance           text,
    creditor_reference   text,
    details              jsonb       NOT NULL,  -- the entry's other fields that are set
    imported_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, account_id, entry_id),
    FOREIGN KEY (tenant_id, account_id, statement_pk)
        REFERENCES statements (tenant_id, account_id, statement_pk)
);

CREATE INDEX transactions_booking ON transactions (tenant_id, account_id, booking_date);
CREATE UNIQUE INDEX transactions_seq ON transactions (tenant_id, seq);
