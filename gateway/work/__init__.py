"""Background work: what a request commits is done here, off the request path.

``reconcile``: workers that match what changed (new payments, changed invoices and
customers) and keep one engine per tenant between passes. They run inside ``serve``
(setting ``reconcile_workers``) and as ``recon-gateway worker`` processes, as many as
wanted, coordinated only through PostgreSQL: a tenant's pass holds its advisory lock, and
a worker that finds it held goes on with other tenants.
"""
