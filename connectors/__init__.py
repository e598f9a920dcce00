"""connectors: where statements will come from besides uploads (folders, SFTP, bank APIs).
Empty so far; see docs/architecture.md."""
