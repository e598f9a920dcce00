"""Settings: one table, with defaults and help, read with one documented precedence.

Precedence, highest first: command-line option, environment variable
(``RECON_<NAME>``), configuration file (TOML, ``--config`` or ``RECON_CONFIG``), default.
docs/configuration.md lists every setting; a test keeps it complete. Secret settings are
never logged or printed (``Settings.public()`` masks them).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    default: Any
    help: str
    secret: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting("database_url", None,
            "PostgreSQL URL; without one an embedded server runs in <data_dir>/postgres",
            secret=True),
    Setting("data_dir", "./recon-data", "folder for the embedded database and local state"),
    Setting("keyring", None,
            "keyring file of the master keys that unwrap the data keys (default "
            "<data_dir>/keyring, created on first start with mode 0600); keep it and its "
            "backups apart from the database's"),
    Setting("host", "127.0.0.1", "address the HTTP API listens on"),
    Setting("port", 8080, "port the HTTP API listens on"),
    Setting("tenant", "default", "tenant key written on every row"),
    Setting("max_body_bytes", 64 * 1024 * 1024, "largest request body accepted (413 beyond)"),
    Setting("max_statement_bytes", 4 * 1024 * 1024 * 1024,
            "largest statement file POST /v1/statements accepts (413 beyond); it is written "
            "to a temporary file as it arrives, never held in memory"),
    Setting("pool_min_size", 1, "database connections kept open"),
    Setting("pool_max_size", 10, "most database connections at once"),
    Setting("shutdown_timeout", 30.0, "seconds in-flight requests get to finish on shutdown"),
    Setting("log_level", "INFO", "DEBUG, INFO, WARNING or ERROR"),
    Setting("log_format", "auto",
            "text (one readable line per event), json (one JSON object per line) or auto "
            "(text on a terminal, json otherwise)"),
    Setting("dispatcher", True, "whether serve also delivers webhooks (several processes may)"),
    Setting("reconcile_workers", 1,
            "reconcile workers serve runs (0: none, matching is left to `recon-gateway "
            "worker` processes); several processes may run them"),
    Setting("reconcile_batch", 5000,
            "most waiting payments one background pass matches (one transaction)"),
    Setting("reconcile_poll", 5.0,
            "seconds a reconcile worker waits for a notification before looking anyway"),
    Setting("allow_private_webhooks", False,
            "allow webhook and JWKS URLs on private, loopback and link-local addresses, "
            "and plain http (for tests and closed networks)"),
    Setting("webhook_timeout", 10.0, "seconds a subscriber has to answer one delivery"),
    Setting("webhook_lease", 60.0,
            "seconds a dispatcher holds a lane; a dead dispatcher's lanes are taken over "
            "after it (keep it well above webhook_timeout)"),
    Setting("webhook_retry_schedule", "0,5,300,1800,7200,18000,36000,50400,72000,86400",
            "seconds before each attempt of a delivery (about 20% jitter is added); after "
            "the last one fails the delivery is given up, unless the endpoint failed "
            "throughout (then it is disabled instead and the delivery kept)"),
    Setting("webhook_retry_floor", 30.0,
            "least seconds before retrying after a 429 answer or a timeout"),
    Setting("webhook_warn_after", 86400.0,
            "seconds of failing deliveries before a subscription.failing event warns"),
    Setting("webhook_disable_after", 259200.0,
            "seconds of failing deliveries before the subscription is disabled (always "
            "after the warning); its backlog is kept"),
    Setting("webhook_concurrency", 64, "deliveries one dispatcher has in flight at most"),
    Setting("jwks_cache_seconds", 3600.0, "how long a subscriber's JWKS document is reused"),
    Setting("audit_checkpoint_interval", 3600.0,
            "seconds between the audit checkpoints serve signs (only of chains that moved; "
            "0: none, `recon-gateway audit checkpoint` signs on demand)"),
    Setting("audit_checkpoint_key", None,
            "ed25519 key file that signs audit checkpoints (default "
            "<data_dir>-audit-checkpoint.key beside the data folder, created 0600 on first "
            "use); keep it where the database's administrators cannot reach"),
    Setting("audit_checkpoints", None,
            "file the signed audit checkpoints are appended to (default "
            "<data_dir>-audit-checkpoints.jsonl beside the data folder)"),
    Setting("event_retention_days", 90,
            "days events, finished deliveries and attempts are kept (replay reaches this "
            "far back; 30 at least; a pending delivery and its event are never removed)"),
)

_BY_NAME = {s.name: s for s in SETTINGS}


class SettingsError(ValueError):
    """A setting has a value of the wrong kind or an unknown name."""


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str | None = dataclasses.field(default=None, repr=False)  # may hold a password
    data_dir: str = "./recon-data"
    keyring: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    tenant: str = "default"
    max_body_bytes: int = 64 * 1024 * 1024
    max_statement_bytes: int = 4 * 1024 * 1024 * 1024
    pool_min_size: int = 1
    pool_max_size: int = 10
    shutdown_timeout: float = 30.0
    log_level: str = "INFO"
    log_format: str = "auto"
    dispatcher: bool = True
    reconcile_workers: int = 1
    reconcile_batch: int = 5000
    reconcile_poll: float = 5.0
    allow_private_webhooks: bool = False
    webhook_timeout: float = 10.0
    webhook_lease: float = 60.0
    webhook_retry_schedule: str = "0,5,300,1800,7200,18000,36000,50400,72000,86400"
    webhook_retry_floor: float = 30.0
    webhook_warn_after: float = 86400.0
    webhook_disable_after: float = 259200.0
    webhook_concurrency: int = 64
    jwks_cache_seconds: float = 3600.0
    audit_checkpoint_interval: float = 3600.0
    audit_checkpoint_key: str | None = None
    audit_checkpoints: str | None = None
    event_retention_days: int = 90

    def public(self) -> dict[str, Any]:
        """The settings with secrets masked: safe to log."""
        return {
            f.name: ("***" if _BY_NAME[f.name].secret and getattr(self, f.name) else
                     getattr(self, f.name))
            for f in dataclasses.fields(self)
        }


def _coerce(name: str, value: Any) -> Any:
    default = _BY_NAME[name].default
    kind = type(default) if default is not None else str
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    if kind is bool:
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"setting {name}: expected true or false, got {value!r}")
    try:
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"setting {name}: expected {kind.__name__}, got {value!r}") from exc


def load(
    options: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Settings from options (None = not given), environment and file, over the defaults."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = config_file or (Path(environ["RECON_CONFIG"]) if environ.get("RECON_CONFIG") else None)
    if path is not None:
        try:
            with path.open("rb") as handle:
                from_file = tomllib.load(handle)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"configuration file {path}: {exc}") from exc
        unknown = set(from_file) - set(_BY_NAME)
        if unknown:
            raise SettingsError(f"configuration file {path}: unknown settings {sorted(unknown)}")
        values.update(from_file)
    for setting in SETTINGS:
        env = environ.get(f"RECON_{setting.name.upper()}")
        if env is not None and env != "":
            values[setting.name] = env
    for name, value in (options or {}).items():
        if value is not None:
            values[name] = value
    return Settings(**{name: _coerce(name, value) for name, value in values.items()})
