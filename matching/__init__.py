"""matching: the reconciliation engine, payments and invoices in, allocations out. Pure: no
I/O, no clock; imports only ``parsers``. How it decides: docs/matching.md; where it sits:
docs/architecture.md."""
