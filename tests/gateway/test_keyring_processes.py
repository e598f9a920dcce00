"""The keyring at start, with real processes: ``serve``, ``worker``, ``dispatch`` and ``demo``
refuse a missing (once data keys exist), unreadable, damaged, too open or wrong keyring with
one line naming the file and what is wrong, exit 1, no traceback and no key material; a new
database gets a keyring of mode 0600 made at first start."""

from __future__ import annotations

import asyncio
import base64
import stat
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from gateway.store import data_keys
from security import keyring_file
from security.fields import Column
from security.keyring import new_keyring
from tests.gateway.processes import cli

NOTE = Column("subscriptions", "secret")


def _keyring(path: Path) -> Path:
    keyring_file.create(path, new_keyring(datetime.now(UTC)))
    return path


def _materials(*paths: Path) -> list[str]:
    return [base64.b64encode(key.key).decode() for path in paths
            for key in keyring_file.read(path).keys if key.key is not None]


@pytest.fixture
async def holding(migrated_database_url: str, tmp_path: Path) -> tuple[str, Path]:
    """A database holding a data key wrapped by the master key of its keyring."""
    ring = _keyring(tmp_path / "keyring")
    conn = await asyncpg.connect(migrated_database_url)
    try:
        await data_keys.encrypt(conn, "default", [(NOTE, ("default", "s1"), "x")],
                                keys=data_keys.Keys.read(ring))
    finally:
        await conn.close()
    return migrated_database_url, ring


def _refused(command: str, database_url: str, keyring: Path, tmp_path: Path,
             *shown: str, secrets: list[str]) -> None:
    extra = ["--once"] if command == "worker" else []
    done = cli(command, *extra, "--database-url", database_url, "--keyring", str(keyring),
               "--data-dir", str(tmp_path / "data"), env={"RECON_LOG_FORMAT": "text"})
    assert done.returncode == 1, (done.stdout, done.stderr)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr
    assert f"keyring {keyring}:" in errors[0]
    for words in shown:
        assert words in errors[0], errors[0]
    assert "Traceback" not in done.stderr + done.stdout
    for secret in secrets:
        assert secret not in done.stderr + done.stdout


@pytest.mark.parametrize("command", ["serve", "worker", "dispatch", "demo"])
def test_every_service_command_refuses_a_keyring_that_is_not_the_databases(
        command: str, holding: tuple[str, Path], tmp_path: Path) -> None:
    database_url, ring = holding
    other = _keyring(tmp_path / "other-keyring")
    _refused(command, database_url, other, tmp_path, "not the keyring of this database",
             "which this keyring does not hold", secrets=_materials(ring, other))


@pytest.mark.parametrize("command", ["serve", "worker", "dispatch", "demo"])
def test_every_service_command_refuses_to_start_without_the_keyring_of_its_data(
        command: str, holding: tuple[str, Path], tmp_path: Path) -> None:
    database_url, ring = holding
    missing = tmp_path / "nowhere" / "keyring"
    _refused(command, database_url, missing, tmp_path,
             "no such file, but the database holds 1 data key(s)", "restore the keyring",
             secrets=_materials(ring))
    assert not missing.exists()  # never a new keyring over data it cannot read


def test_a_damaged_too_open_or_unreadable_keyring_is_refused(
        holding: tuple[str, Path], tmp_path: Path) -> None:
    database_url, ring = holding
    text = ring.read_bytes()
    truncated = tmp_path / "truncated"
    truncated.write_bytes(text[: len(text) // 2])
    truncated.chmod(0o600)
    too_open = tmp_path / "too-open"
    too_open.write_bytes(text)
    too_open.chmod(0o644)
    folder = tmp_path / "a-folder"
    folder.mkdir(mode=0o700)
    for path, shown in [(truncated, "not valid JSON"), (too_open, "chmod 600"),
                        (folder, "not a regular file")]:
        _refused("serve", database_url, path, tmp_path, shown, secrets=_materials(ring))


def test_a_new_database_gets_a_keyring_of_its_owner_only_at_first_start(
        migrated_database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "made" / "keyring"
    args = ["--database-url", migrated_database_url, "--keyring", str(path)]
    first = cli("worker", "--once", *args)
    assert first.returncode == 0, first.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    made = keyring_file.read(path)
    again = cli("worker", "--once", *args)
    assert again.returncode == 0, again.stderr
    assert keyring_file.read(path) == made  # found, not made again
    status = cli("keyring", "status", *args)
    assert status.returncode == 0 and made.primary in status.stdout, status.stderr
    for secret in _materials(path):
        assert secret not in first.stderr + again.stderr + status.stdout


async def test_the_default_keyring_is_in_the_data_folder(
        migrated_database_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = await asyncio.to_thread(cli, "worker", "--once", "--database-url",
                                   migrated_database_url, "--data-dir", str(data))
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE((data / "keyring").stat().st_mode) == 0o600
