"""gateway: the running service and its command line (HTTP API, storage, ingest,
reconciliation, the outbox and its dispatcher). Nothing imports it. The map of the
packages, the path of a bank line and the decisions they keep: docs/architecture.md."""
