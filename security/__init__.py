"""security: API keys and roles, webhook signing and payload encryption, and the checks on
webhook targets; the keyring, data keys, field encryption and blind indexes
(docs/security.md); the audit chain and its verifier (docs/audit.md). Pure: no I/O, except
``keyring_file``, the one module that reads and writes a file (the keyring); imports nothing
of ours. See docs/architecture.md."""
