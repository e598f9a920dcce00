"""gateway: see ../shared/DESIGN.md."""
