"""security: see ../shared/DESIGN.md."""
