"""security: API keys and roles, webhook signing and payload encryption, and the checks on
webhook targets. Pure: no I/O; imports nothing of ours. See docs/architecture.md."""
