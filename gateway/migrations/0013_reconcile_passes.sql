-- The last reconcile pass of each tenant (gateway/reconcile.py), for the workers' engines
-- (gateway/work/engines.py). A pass records its transaction here, under the tenant's
-- reconcile lock, and reads the one recorded before it. A worker whose own pass is still
-- the last one knows that since then the tenant's invoices and customers changed only by
-- its own writes or by changes still queued in reconcile_work (a change is queued in the
-- transaction that makes it, and only a pass takes it off the queue): with none queued, it
-- brings its engine up to date from its own writes instead of reading every invoice's
-- version. A pass that rolls back leaves the earlier pass recorded, so no worker takes it
-- for its own.
CREATE TABLE reconcile_passes (
    tenant_id   text PRIMARY KEY,
    last_pass   xid8 NOT NULL
);
