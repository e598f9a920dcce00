"""``recon-gateway keys``: create, list and revoke API keys.

A key is printed once, alone on standard output (so ``KEY=$(recon-gateway keys create
...)`` works); everything said about it goes to standard error. Names are unique among a
tenant's active keys, so ``keys revoke NAME`` revokes exactly the key meant (an id given
is taken as an id first). ``keys list`` shows every key with when it was created, last
used (to the minute) and revoked; never a secret, which is not stored.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from typing import Any, TextIO

import asyncpg

from gateway.options import (
    add_database_options,
    connected,
    settings_of,
    with_database,
)
from gateway.store import api_keys
from gateway.store.audit import system_actor
from gateway.textwidth import aligned
from security import apikeys
from security.roles import Role

LIST_HEADERS = ("id", "name", "role", "created", "last used", "revoked")


def _when(moment: datetime | None, empty: str) -> str:
    """A moment in UTC to the minute: ``2026-11-20 14:03 UTC``."""
    if moment is None:
        return empty
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def keys_create(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        name = apikeys.key_name(args.name)
    except apikeys.KeyNameError as exc:
        err.write(f"error: --name: {exc}\n")
        return 2
    settings = with_database(settings_of(args), err)
    key = apikeys.generate()

    async def work(conn: asyncpg.Connection) -> str | None:
        try:
            await api_keys.create(conn, settings.tenant, key=key, role=Role(args.role),
                                  name=name, actor=system_actor("keys create"))
        except api_keys.NameTaken as taken:
            return (f"error: a key named {name!r} already exists (id {taken.key_id}); "
                    f"choose another name, or revoke that key first "
                    f"(recon-gateway keys revoke {taken.key_id})")
        return None

    refused = asyncio.run(connected(settings, work))
    if refused:
        err.write(refused + "\n")
        return 1
    out.write(key.text + "\n")  # the key alone on standard output
    out.flush()
    err.write(f"created key {key.key_id} ({name}, role {args.role}); "
              f"it is shown only this once\n")
    return 0


def keys_revoke(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    settings = with_database(settings_of(args), err)

    async def work(conn: asyncpg.Connection) -> asyncpg.Record | None:
        return await api_keys.revoke(conn, settings.tenant, args.key,
                                     actor=system_actor("keys revoke"))

    revoked = asyncio.run(connected(settings, work))
    if revoked is None:
        err.write(f"error: no active key has the id or name {args.key!r}; "
                  f"`recon-gateway keys list` shows the keys\n")
        return 1
    err.write(f"revoked key {revoked['key_id']} ({revoked['name']}, role {revoked['role']})\n")
    return 0


def keys_list(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    settings = with_database(settings_of(args), err)

    async def work(conn: asyncpg.Connection) -> list[asyncpg.Record]:
        return await api_keys.listing(conn, settings.tenant, active_only=args.active)

    rows = asyncio.run(connected(settings, work))
    if not rows:
        err.write(f"no {'active ' if args.active else ''}keys in tenant {settings.tenant}; "
                  f"`recon-gateway keys create --role ROLE --name NAME` makes one\n")
        return 0
    out.writelines(line + "\n" for line in aligned(LIST_HEADERS, [
        (r["key_id"], r["name"], r["role"], _when(r["created_at"], ""),
         _when(r["last_used_at"], "never"), _when(r["revoked_at"], "-"))
        for r in rows]))
    return 0


def register(commands: Any) -> None:
    """Add ``keys create|list|revoke`` to the top-level subcommand parser."""
    keys = commands.add_parser(
        "keys", help="create, list and revoke API keys",
        description="API keys for the HTTP API. A new key is printed once, alone on standard "
        "output (KEY=$(recon-gateway keys create ...) works); only its hash is stored. Names "
        "are unique among the active keys, so `keys revoke NAME` revokes exactly the key "
        "meant.")
    keys.set_defaults(help_of=keys)
    key_commands = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    create = key_commands.add_parser(
        "create", help="create a key and print it (once)",
        description="Create an API key and print it, alone, on standard output: it is "
        "shown only this once (only its hash is stored).")
    add_database_options(create)
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--name", required=True,
                        help="who or what the key is for; unique among the active keys")
    create.set_defaults(run=keys_create)

    listing = key_commands.add_parser(
        "list", help="list the keys: id, name, role, created, last used, revoked",
        description="List the API keys, oldest first. Times are UTC; `last used` is kept "
        "to the minute.")
    add_database_options(listing)
    listing.add_argument("--active", action="store_true", help="leave out revoked keys")
    listing.set_defaults(run=keys_list)

    revoke = key_commands.add_parser(
        "revoke", help="revoke a key by id or name",
        description="Revoke one active key, named by its id or its name. Requests with it "
        "are refused from then on.")
    add_database_options(revoke)
    revoke.add_argument("key", metavar="KEY_ID_OR_NAME")
    revoke.set_defaults(run=keys_revoke)
