-- Line identity decided from the statements themselves (docs/ingest.md).
--
-- statements: where a booked statement sits in its account's ledger (its balances, derived
-- from the lines when the bank gives only one), the dates of its lines, whether it is an
-- intraday report, and what its import found.
ALTER TABLE statements
    ADD COLUMN provisional      boolean NOT NULL DEFAULT false,
    ADD COLUMN ledger_opening   numeric,
    ADD COLUMN ledger_closing   numeric,
    ADD COLUMN ledger_currency  char(3),
    ADD COLUMN ledger_afters    numeric[],  -- the balance after each line, in the bank's order
    ADD COLUMN first_date       date,
    ADD COLUMN last_date        date,
    ADD COLUMN entries_new      integer NOT NULL DEFAULT 0,
    ADD COLUMN entries_known    integer NOT NULL DEFAULT 0,
    ADD COLUMN entries_superseded integer NOT NULL DEFAULT 0,
    ADD COLUMN possible_duplicates integer NOT NULL DEFAULT 0;

UPDATE statements SET
    provisional = format IN ('mt942', 'camt.052', 'camt.054'),
    ledger_opening = opening_amount, ledger_closing = closing_amount,
    ledger_currency = coalesce(opening_currency, closing_currency),
    first_date = period_start, last_date = period_end;

CREATE INDEX statements_ledger ON statements (tenant_id, account_id, last_date)
    WHERE NOT provisional AND ledger_opening IS NOT NULL;

-- transactions: provisional lines (intraday, pending) until a booked statement confirms them;
-- lines stored although one like them was (possible_duplicate); the reference scheme of the
-- format that reported the line (a bank reference means the same line only within one).
ALTER TABLE transactions
    ADD COLUMN provisional          boolean NOT NULL DEFAULT false,
    ADD COLUMN possible_duplicate   boolean NOT NULL DEFAULT false,
    ADD COLUMN reference_scheme     text,
    ADD COLUMN confirmed_statement_pk bigint,
    ADD COLUMN position             integer,  -- its place in the statement that first reported it
    ADD COLUMN balance_after        numeric;  -- the ledger balance after it, where known

UPDATE transactions t SET
    provisional = s.provisional OR t.status <> 'booked',
    reference_scheme = CASE WHEN s.format LIKE 'mt94%' THEN 'swift'
                            WHEN s.format LIKE 'camt%' THEN 'iso' ELSE s.format END
FROM statements s
WHERE s.tenant_id = t.tenant_id AND s.account_id = t.account_id
  AND s.statement_pk = t.statement_pk;

CREATE INDEX transactions_day ON transactions
    (tenant_id, account_id, (coalesce(booking_date, value_date)));

-- statement_lines: every line of every statement, in the bank's order, and the stored line it
-- is: new, known (reported again), or a booked line that superseded a provisional one.
CREATE TABLE statement_lines (
    tenant_id     text    NOT NULL,
    account_id    bigint  NOT NULL,
    statement_pk  bigint  NOT NULL,
    position      integer NOT NULL,
    entry_id      text    NOT NULL,
    outcome       text    NOT NULL CHECK (outcome IN ('new', 'known', 'supersedes')),
    rank          integer,  -- its index in the statement's ledger order (booked lines only)
    PRIMARY KEY (tenant_id, account_id, statement_pk, position),
    FOREIGN KEY (tenant_id, account_id, statement_pk)
        REFERENCES statements (tenant_id, account_id, statement_pk)
    -- No foreign key to transactions: the rows are written in the same transaction as the
    -- lines they name, by the same code, and checking one per row against a table whose
    -- statistics do not yet count the lines just copied in made a 20,000-line import take
    -- minutes (the check's plan scanned the table for each row).
);
CREATE INDEX statement_lines_entry ON statement_lines (tenant_id, account_id, entry_id);

-- Lines stored before this migration: each belongs to the statement that first reported it,
-- in arrival order (the overlaps found then were not recorded).
INSERT INTO statement_lines (tenant_id, account_id, statement_pk, position, entry_id, outcome,
                             rank)
SELECT tenant_id, account_id, statement_pk,
       row_number() OVER (PARTITION BY tenant_id, account_id, statement_pk ORDER BY seq) - 1,
       entry_id, 'new',
       row_number() OVER (PARTITION BY tenant_id, account_id, statement_pk ORDER BY seq) - 1
FROM transactions;
UPDATE transactions t SET position = l.position
FROM statement_lines l
WHERE l.tenant_id = t.tenant_id AND l.account_id = t.account_id AND l.entry_id = t.entry_id;
