"""The roles an API key can have. Every route of the API names the roles it admits."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"            # everything, including keys and settings
    TREASURY = "treasury"      # bank feeds, statements, matches, invoices
    CRM = "crm"                # pushes invoices and customers, subscribes to events
    COMPLIANCE = "compliance"  # AML alerts, audit log
    AUDITOR = "auditor"        # reads, never writes
