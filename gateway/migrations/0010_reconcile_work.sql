-- Reconciliation as background work (docs/operations.md, "Reconciliation workers").
--
-- An import or an invoice change commits and answers; workers match what changed:
--
-- * a payment waits for matching while transactions.matched_at is NULL. New lines are
--   inserted with it NULL; a pass sets it on every payment it looked at (whatever the
--   engine decided); a person's reject or undo sets it NULL again, so the payment is
--   matched again against what is open now.
-- * an invoice or customer changed by the CRM or by a person is queued in reconcile_work
--   by the triggers below: the workers match it against the unallocated payments it could
--   settle. A pass's own invoice updates are not queued (it sets recon.reconcile_pass).
-- * workers wake on NOTIFY recon_reconcile (payload: the tenant), and poll besides; the
--   triggers notify for invoices and customers, the import for its lines (a trigger on
--   transactions would copy every imported line into a transition table).
ALTER TABLE transactions ADD COLUMN matched_at timestamptz;

-- What was reconciled before this migration has been looked at already: only payments with
-- no live allocation wait (as every pass so far took them up again).
UPDATE transactions t SET matched_at = t.imported_at
WHERE t.amount > 0 AND t.status = 'booked' AND NOT t.reversal AND NOT t.provisional
  AND coalesce(t.booking_date, t.value_date) IS NOT NULL
  AND EXISTS (SELECT 1 FROM allocations a
              WHERE a.tenant_id = t.tenant_id AND a.account_id = t.account_id
                AND a.entry_id = t.entry_id AND a.status IN ('proposed', 'applied'));

CREATE INDEX transactions_match_waiting ON transactions (tenant_id, seq)
    WHERE matched_at IS NULL AND amount > 0 AND status = 'booked' AND NOT reversal
      AND NOT provisional AND coalesce(booking_date, value_date) IS NOT NULL;

-- Insert-only: a change appends a row, a pass deletes the rows it took. No writer ever
-- waits for a row a pass holds (an upsert of one row per invoice would make every CRM write
-- of an invoice wait for the pass that took it to commit). An invoice changed twice
-- between passes is in it twice; a pass takes it once.
CREATE TABLE reconcile_work (
    tenant_id   text        NOT NULL,
    work_id     bigint      GENERATED ALWAYS AS IDENTITY,
    subject     text        NOT NULL CHECK (subject IN ('invoice', 'customer')),
    subject_id  text        NOT NULL,
    queued_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant_id, work_id)
);

CREATE FUNCTION reconcile_queue_invoices() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('recon.reconcile_pass', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    INSERT INTO reconcile_work (tenant_id, subject, subject_id)
    SELECT DISTINCT tenant_id, 'invoice', invoice_id FROM changed_rows;
    PERFORM pg_notify('recon_reconcile', tenant_id) FROM (
        SELECT DISTINCT tenant_id FROM changed_rows) tenants;
    RETURN NULL;
END $$;

CREATE FUNCTION reconcile_queue_customers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('recon.reconcile_pass', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    INSERT INTO reconcile_work (tenant_id, subject, subject_id)
    SELECT DISTINCT tenant_id, 'customer', customer_id FROM changed_rows;
    PERFORM pg_notify('recon_reconcile', tenant_id) FROM (
        SELECT DISTINCT tenant_id FROM changed_rows) tenants;
    RETURN NULL;
END $$;

CREATE TRIGGER invoices_queue_insert AFTER INSERT ON invoices
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION reconcile_queue_invoices();
CREATE TRIGGER invoices_queue_update AFTER UPDATE ON invoices
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION reconcile_queue_invoices();
CREATE TRIGGER customers_queue_insert AFTER INSERT ON customers
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION reconcile_queue_customers();
CREATE TRIGGER customers_queue_update AFTER UPDATE ON customers
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION reconcile_queue_customers();
-- What people's decisions taught (learned_payers) changes a customer as the engine sees it.
CREATE TRIGGER learned_queue_insert AFTER INSERT ON learned_payers
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION reconcile_queue_customers();
CREATE TRIGGER learned_queue_delete AFTER DELETE ON learned_payers
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION reconcile_queue_customers();
