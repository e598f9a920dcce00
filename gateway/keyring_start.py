"""The keyring at start: found (or made), checked against the database, then installed.

``serve``, ``worker``, ``dispatch`` and ``demo`` call ``open_keyring`` on a migrated database
before they do anything else, and ``create_app`` does again at its start:

- The file is ``settings.keyring``, else ``<data_dir>/keyring`` (``keyring_path``).
- Missing: made (mode 0600) when the database holds no data key yet; refused when it does,
  since what those keys encrypted could never be read again with a new keyring.
- Unreadable, damaged, too open (``security.keyring_file.read``), or not the keyring that
  wraps the stored data keys (one that does not unwrap, or a master key it lacks): refused.
- Then the plain secrets a database migrated from before encryption holds are encrypted in
  place (``subscriptions.seal_plain``, ``signing_keys.seal_plain``), once, whichever process
  starts first.

Every refusal is a ``KeyringStartError`` (a ``CommandError``: one line, no traceback) that
starts ``keyring <file>:`` and says what is wrong and what to do, and never holds key
material (the core's messages repeat only key ids, scopes and counts).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from gateway.options import CommandError, connected
from gateway.settings import Settings
from gateway.store import data_keys, signing_keys, subscriptions
from security import keyring_file
from security.envelope import UnwrapError
from security.keyring import KeyringError, new_keyring

logger = logging.getLogger(__name__)


class KeyringStartError(CommandError):
    """The keyring cannot be used with this database; the message says why."""


def ready(settings: Settings) -> None:
    """Open and check the keyring before a command starts its service (``serve``,
    ``demo``): a refusal is then one line and exit 1, not a failed start-up inside the
    web server."""
    asyncio.run(connected(settings, lambda conn: open_keyring(conn, settings)))


def keyring_path(settings: Settings) -> Path:
    return Path(settings.keyring) if settings.keyring else Path(settings.data_dir) / "keyring"


async def open_keyring(conn: asyncpg.Connection, settings: Settings) -> data_keys.Keys:
    """The checked keyring of ``settings``, installed as this process's (see the module)."""
    keys = await check_keyring(conn, keyring_path(settings))
    sealed = (await subscriptions.seal_plain(conn, keys=keys)
              + await signing_keys.seal_plain(conn, keys=keys))
    if sealed:
        logger.info("encrypted %d plain secret(s) left from before encryption at rest",
                    sealed)
    data_keys.install(keys)
    return keys


async def check_keyring(conn: asyncpg.Connection, path: Path) -> data_keys.Keys:
    """The keyring at ``path`` (made if missing and the database has no data key) that
    unwraps every stored data key; ``KeyringStartError`` otherwise."""
    stored = await data_keys.every(conn)
    if not path.exists() and not path.is_symlink():
        if stored:
            masters = sorted({s.wrapped.master_key_id for s in stored})
            raise KeyringStartError(
                f"keyring {path}: no such file, but the database holds {len(stored)} data "
                f"key(s) wrapped by master key(s) {', '.join(masters)}: restore the keyring "
                "from its backup, or name it with --keyring (RECON_KEYRING)")
        _create(path)
    try:
        keys = data_keys.Keys.read(path)
    except KeyringError as exc:
        raise KeyringStartError(str(exc)) from None
    for found in stored:
        try:
            keys.unwrap(found.wrapped)
        except UnwrapError as exc:
            raise KeyringStartError(
                f"keyring {path}: not the keyring of this database: {exc}") from None
    return keys


def _create(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        keyring_file.create(path, new_keyring(datetime.now(UTC)))
    except FileExistsError:
        return  # another process made it first: read theirs
    except OSError as exc:
        raise KeyringStartError(f"keyring {path}: cannot be created: {exc.strerror}") from None
    logger.warning("created a new keyring %s: back it up apart from the database "
                   "(docs/operations.md)", path)
