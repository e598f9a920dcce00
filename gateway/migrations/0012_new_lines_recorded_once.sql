-- A line is recorded once where it is new (issue 11: storing at a share of a bare COPY).
--
-- Until now every line of every statement had a statement_lines row, the 100,000 lines new
-- in the statement that first reported them too, though their transactions row already
-- says which statement that was (statement_pk) and where in it (position). Now such a line's
-- rank in that statement's ledger order is on its transactions row too, and statement_lines
-- holds only the lines a statement reported that were stored before it: 'known' (reported
-- again) and 'supersedes' (a booked line that confirmed a provisional one).
-- all_statement_lines is every line of every statement, as statement_lines was: read it, or
-- both tables, never statement_lines alone for a statement's lines.
ALTER TABLE transactions ADD COLUMN rank integer;  -- in the ledger order of statement_pk

UPDATE transactions t SET position = l.position, rank = l.rank
FROM statement_lines l
WHERE l.tenant_id = t.tenant_id AND l.account_id = t.account_id AND l.entry_id = t.entry_id
  AND l.statement_pk = t.statement_pk AND l.outcome = 'new';
DELETE FROM statement_lines l USING transactions t
WHERE l.tenant_id = t.tenant_id AND l.account_id = t.account_id AND l.entry_id = t.entry_id
  AND l.statement_pk = t.statement_pk AND l.position = t.position AND l.outcome = 'new';

CREATE VIEW all_statement_lines AS
SELECT tenant_id, account_id, statement_pk, position, entry_id, 'new'::text AS outcome, rank
FROM transactions WHERE position IS NOT NULL
UNION ALL
SELECT tenant_id, account_id, statement_pk, position, entry_id, outcome, rank
FROM statement_lines;

-- A statement's lines in the bank's order, from both tables (GET /v1/statements/{id}/lines).
DROP INDEX transactions_statement;
CREATE INDEX transactions_statement ON transactions (tenant_id, account_id, statement_pk, position);

-- The lines' statements are checked once per statement that stores lines, not once per line.
-- A foreign key checks each row apart (one look-up of statements per line: most of the time
-- of storing 100,000 of them); the lines of one INSERT name one statement or a few. The
-- checks run after each statement over the rows it wrote (its transition table); statements
-- are never deleted while lines name them, nor lines moved to another statement.
ALTER TABLE transactions DROP CONSTRAINT transactions_tenant_id_account_id_statement_pk_fkey;
ALTER TABLE statement_lines
    DROP CONSTRAINT statement_lines_tenant_id_account_id_statement_pk_fkey;

CREATE FUNCTION lines_name_stored_statements() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT FROM (SELECT DISTINCT tenant_id, account_id, statement_pk FROM written) w
               WHERE NOT EXISTS (SELECT FROM statements s
                                 WHERE s.tenant_id = w.tenant_id
                                   AND s.account_id = w.account_id
                                   AND s.statement_pk = w.statement_pk)) THEN
        RAISE foreign_key_violation USING
            MESSAGE = format('a row of %I names a statement that is not stored', TG_TABLE_NAME);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER transactions_statement_stored AFTER INSERT ON transactions
    REFERENCING NEW TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION lines_name_stored_statements();
CREATE TRIGGER statement_lines_statement_stored AFTER INSERT ON statement_lines
    REFERENCING NEW TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION lines_name_stored_statements();

-- Updates: a row trigger, and only where a row's statement changes (an update of other
-- columns, such as a reconcile pass marking thousands of lines, copies nothing).
CREATE FUNCTION line_keeps_a_stored_statement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM statements s
                   WHERE s.tenant_id = NEW.tenant_id AND s.account_id = NEW.account_id
                     AND s.statement_pk = NEW.statement_pk) THEN
        RAISE foreign_key_violation USING
            MESSAGE = format('a row of %I names a statement that is not stored', TG_TABLE_NAME);
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER transactions_statement_kept
    BEFORE UPDATE OF tenant_id, account_id, statement_pk ON transactions FOR EACH ROW
    WHEN ((OLD.tenant_id, OLD.account_id, OLD.statement_pk)
          IS DISTINCT FROM (NEW.tenant_id, NEW.account_id, NEW.statement_pk))
    EXECUTE FUNCTION line_keeps_a_stored_statement();
CREATE TRIGGER statement_lines_statement_kept
    BEFORE UPDATE OF tenant_id, account_id, statement_pk ON statement_lines FOR EACH ROW
    WHEN ((OLD.tenant_id, OLD.account_id, OLD.statement_pk)
          IS DISTINCT FROM (NEW.tenant_id, NEW.account_id, NEW.statement_pk))
    EXECUTE FUNCTION line_keeps_a_stored_statement();

CREATE FUNCTION statements_keep_their_lines() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT FROM gone g JOIN transactions t USING (tenant_id, account_id, statement_pk))
       OR EXISTS (SELECT FROM gone g
                  JOIN statement_lines l USING (tenant_id, account_id, statement_pk)) THEN
        RAISE foreign_key_violation USING
            MESSAGE = 'a statement cannot be removed while lines name it';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER statements_keep_their_lines AFTER DELETE ON statements
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION statements_keep_their_lines();
