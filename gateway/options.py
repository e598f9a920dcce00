"""Command-line options shared by the commands that use the database.

Every such command says on standard error which database it uses, before it uses it: a
key made in one folder is no use to a service running on another, and a user should not
have to find that out from a refused request. The demo keeps its own folder
(``./recon-demo``) so that trying it never touches the data of ``./recon-data``; each
command's ``--help`` names its own default.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg

from gateway.embedded import start_embedded
from gateway.migrate import migrate
from gateway.settings import Settings, load

T = TypeVar("T")

DATA_DIR = Settings().data_dir  # ./recon-data
DEMO_DATA_DIR = "./recon-demo"


def add_database_options(parser: argparse.ArgumentParser, *,
                         data_dir: str = DATA_DIR) -> None:
    """``--data-dir``, ``--database-url`` and ``--config``; ``data_dir`` is this command's
    own default folder for the embedded database."""
    parser.add_argument("--data-dir", help=f"folder of the embedded database "
                        f"(default {data_dir}; env RECON_DATA_DIR)")
    parser.add_argument("--database-url", help="use this PostgreSQL server instead of the "
                        "embedded one (env RECON_DATABASE_URL)")
    parser.add_argument("--config", type=Path, help="TOML settings file (env RECON_CONFIG)")
    parser.add_argument("--keyring", help="keyring file of the master keys (default "
                        "<data-dir>/keyring; env RECON_KEYRING)")
    parser.set_defaults(default_data_dir=data_dir)


def settings_of(args: argparse.Namespace, **extra: Any) -> Settings:
    """The settings from the options, environment and file; where none of them names a
    data folder, the command's own default folder."""
    options = {"data_dir": args.data_dir, "database_url": args.database_url,
               "keyring": getattr(args, "keyring", None), **extra}
    settings = load(options, config_file=args.config)
    own = getattr(args, "default_data_dir", DATA_DIR)
    if args.data_dir is None and settings.data_dir == DATA_DIR and own != DATA_DIR:
        settings = dataclasses.replace(settings, data_dir=own)
    return settings


def without_password(url: str) -> str:
    """A database URL fit to show: the password left out, of the user part and of the
    query (``?password=``) alike."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            user, _, host = netloc.rpartition("@")
            netloc = f"{user.split(':', 1)[0]}@{host}"
        query = "&".join(p for p in parts.query.split("&")
                         if unquote(p.split("=", 1)[0]).lower() != "password")
        return urlunsplit(parts._replace(netloc=netloc, query=query))
    except ValueError:
        return "(a database URL that cannot be read)"


def database_label(settings: Settings) -> str:
    """Which database these settings use, in words: ``the embedded database in
    ./recon-data`` or ``the database at postgresql://user@host/db``."""
    if settings.database_url:
        return f"the database at {without_password(settings.database_url)}"
    folder = Path(settings.data_dir)
    where = str(settings.data_dir)
    if not folder.is_absolute():
        where += f" ({folder.resolve()})"
    return f"the embedded database in {where}"


def with_database(settings: Settings, err: TextIO | None = None) -> Settings:
    """The settings with a database URL: the configured one, else the embedded server's
    (started or joined). Says which on ``err`` (standard error when not given)."""
    stream = sys.stderr if err is None else err
    stream.write(f"using {database_label(settings)}\n")
    stream.flush()
    if settings.database_url:
        return settings
    url = start_embedded(Path(settings.data_dir))
    return dataclasses.replace(settings, database_url=url)


class CommandError(RuntimeError):
    """A command cannot go on: the message says what happened and what to do."""


async def connected(settings: Settings,
                    work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run ``work`` on a connection to the settings' database, migrated first."""
    try:
        conn = await asyncpg.connect(settings.database_url)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        where = without_password(settings.database_url or "")
        raise CommandError(f"cannot connect to the database at {where}: {exc}; check "
                           f"--database-url (or RECON_DATABASE_URL) and that the server "
                           f"is running") from exc
    try:
        await migrate(conn)
        return await work(conn)
    finally:
        await conn.close()
