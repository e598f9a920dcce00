"""connectors: see ../shared/DESIGN.md."""
