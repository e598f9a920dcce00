"""``recon-gateway keyring status | rotate | retire KEY_ID``: the master keys of the keyring.

- ``status``: each master key of the keyring (primary, active or retired) and how many stored
  data keys it wraps, and any data key wrapped by a master key the keyring lacks (a wrong
  keyring: exit 1).
- ``rotate``: a new primary master key in the keyring file, then every data key re-wrapped
  under it, a batch per short transaction, while the service runs (a service that meets a
  data key wrapped by the new key reads the file again). No field is rewritten.
- ``retire KEY_ID``: the key's material leaves the file; refused for the primary and while it
  wraps any data key.

``rotate`` and ``retire`` hold a database advisory lock while they change the file and the
rows, so two of them at once (on the machine that keeps the keyring) run one after the
other: two rotations leave two new keys, every data key under the last. The file is written
before any data key is wrapped under the new key, so no stored key ever names a master key
the file lacks; a rotation stopped half way is finished by running it again.

Never prints key material: only key ids, states and counts.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import asyncpg

from gateway.keyring_start import KeyringStartError, check_keyring, keyring_path
from gateway.options import add_database_options, connected, settings_of, with_database
from gateway.settings import Settings
from gateway.store import data_keys
from security import keyring_file
from security.envelope import wrapping
from security.keyring import KeyringError, retire, rotate

# pg_advisory_lock key of keyring changes: "recon-kr" as a 64-bit integer, fixed forever.
LOCK_KEY = int.from_bytes(b"recon-kr", "big") & 0x7FFF_FFFF_FFFF_FFFF


def _run(args: argparse.Namespace, err: TextIO, work: Any) -> Any:
    settings = with_database(settings_of(args), err)
    return asyncio.run(connected(settings, lambda conn: work(conn, settings)))


def status(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    async def report(conn: asyncpg.Connection, settings: Settings) -> int:
        path = keyring_path(settings)
        keys = await _existing(conn, path, check=False)
        stored = await data_keys.every(conn)
        counts = wrapping(keys.ring, (s.wrapped for s in stored))
        out.write(f"keyring {path}: {len(keys.ring.keys)} master key(s), "
                  f"{len(stored)} data key(s) in the database\n")
        unknown = 0
        for key_id, wrapped in counts.items():
            try:
                key = keys.ring.get(key_id)
            except KeyError:
                out.write(f"  {key_id}  NOT IN THIS KEYRING  wraps {wrapped}\n")
                unknown += wrapped
                continue
            role = "primary" if key_id == keys.ring.primary else key.state
            if key.state == "retired" and wrapped:
                unknown += wrapped
            out.write(f"  {key_id}  {role:<8}  wraps {wrapped}\n")
        if unknown:
            err.write(f"error: keyring {path}: {unknown} data key(s) are wrapped by a master "
                      "key this keyring cannot use: it is not this database's keyring, or "
                      "an older copy\n")
            return 1
        return 0

    code: int = _run(args, err, report)
    return code


def rotate_command(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    async def rotated(conn: asyncpg.Connection, settings: Settings) -> int:
        path = keyring_path(settings)
        await _existing(conn, path, check=True)
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        try:
            keys = await _existing(conn, path, check=True)  # as the last holder left it
            ring = rotate(keys.ring, datetime.now(UTC))
            keyring_file.replace(path, ring)
            done = await data_keys.rewrap_all(conn, data_keys.Keys.read(path))
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
        older = [k.id for k in ring.keys if k.id != ring.primary and k.state == "active"]
        out.write(f"keyring {path}: new primary master key {ring.primary}; {done} data "
                  f"key(s) re-wrapped under it\n")
        if older:
            out.write(f"  still active, wrapping nothing now: {', '.join(older)} (retire "
                      "each with `recon-gateway keyring retire KEY_ID`)\n")
        out.write("  back the keyring up now: the database's data keys need this copy\n")
        return 0

    code: int = _run(args, err, rotated)
    return code


def retire_command(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    async def retired(conn: asyncpg.Connection, settings: Settings) -> int:
        path = keyring_path(settings)
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        try:
            keys = await _existing(conn, path, check=False)
            stored = await data_keys.every(conn)
            try:
                ring = retire(keys.ring, args.key_id, datetime.now(UTC),
                              wrapping=[s.wrapped.master_key_id for s in stored])
            except KeyringError as exc:
                raise KeyringStartError(f"keyring {path}: {exc.problem}") from None
            keyring_file.replace(path, ring)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
        out.write(f"keyring {path}: {args.key_id} retired; its material is gone from this "
                  "file (older copies and backups still hold it)\n")
        return 0

    code: int = _run(args, err, retired)
    return code


async def _existing(conn: asyncpg.Connection, path: Path, *, check: bool) -> data_keys.Keys:
    """The keyring at ``path``, which must exist (these commands never make one); with
    ``check``, it must unwrap every stored data key too."""
    if not path.exists() and not path.is_symlink():
        raise KeyringStartError(f"keyring {path}: no such file (the service makes it on its "
                                "first start; name another with --keyring or RECON_KEYRING)")
    if check:
        return await check_keyring(conn, path)
    try:
        return data_keys.Keys.read(path)
    except KeyringError as exc:
        raise KeyringStartError(str(exc)) from None


def register(commands: Any) -> None:
    keyring = commands.add_parser(
        "keyring", help="the master keys that wrap the data keys (status, rotate, retire)",
        description="The keyring file holds the master keys that wrap the data keys of "
        "encryption at rest (docs/security.md, docs/operations.md). It is never in the "
        "database; back it up apart from it.")
    keyring.set_defaults(help_of=keyring)
    actions = keyring.add_subparsers(dest="action", metavar="ACTION")
    shown = actions.add_parser("status", help="which master key wraps how many data keys")
    add_database_options(shown)
    shown.set_defaults(run=status)
    rotated = actions.add_parser(
        "rotate", help="add a new primary master key and re-wrap every data key under it "
        "(while the service runs)")
    add_database_options(rotated)
    rotated.set_defaults(run=rotate_command)
    retired = actions.add_parser(
        "retire", help="drop an old master key's material (refused while it wraps any data "
        "key)")
    retired.add_argument("key_id", metavar="KEY_ID", help="the master key, as status shows it")
    add_database_options(retired)
    retired.set_defaults(run=retire_command)
