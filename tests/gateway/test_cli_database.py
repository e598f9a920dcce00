"""The commands that use a database: which one they say they use, keys (names unique per
tenant, list, revoke exactly one, last use recorded once a minute), serve's address, and
import's progress on a terminal. On the embedded server only: nothing here depends on the
server."""

from __future__ import annotations

import argparse
import fcntl
import io
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import TextIO

import asyncpg
import pytest

from gateway import commands
from gateway.cli import build_parser, main
from gateway.migrate import migrate
from gateway.options import database_label, settings_of, without_password
from gateway.progress import Progress
from gateway.settings import Settings
from security.roles import Role
from tests.gateway.conftest import AiohttpClient, make_api
from tests.gateway.migration_support import migrate_before
from tests.gateway.processes import Server
from tests.paths import DEMO_CAMT, DEMO_MT940

pytestmark = pytest.mark.parametrize("server_url", ["embedded"], indirect=True)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_a_command_says_which_database_it_uses(database_url: str) -> None:
    code, out, err = run("keys", "list", "--database-url", database_url)
    assert (code, out) == (0, "")
    assert err.startswith(f"using the database at {without_password(database_url)}\n")
    assert "no keys in tenant default; `recon-gateway keys create" in err


def test_shown_urls_hold_no_password(server_url: str) -> None:
    assert without_password("postgresql://app:s3cret@db.example:5432/recon?password=x"
                            "&sslmode=require") == \
        "postgresql://app@db.example:5432/recon?sslmode=require"
    assert database_label(Settings(data_dir="./recon-data")).startswith(
        "the embedded database in ./recon-data (/")


def test_the_demo_keeps_its_own_folder(server_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECON_DATA_DIR", raising=False)
    monkeypatch.delenv("RECON_CONFIG", raising=False)

    def folder(*argv: str) -> str:
        args: argparse.Namespace = build_parser().parse_args(list(argv))
        return settings_of(args).data_dir

    assert folder("demo") == "./recon-demo"
    assert folder("keys", "create", "--role", "admin", "--name", "x") == "./recon-data"
    assert folder("demo", "--data-dir", "elsewhere") == "elsewhere"
    monkeypatch.setenv("RECON_DATA_DIR", "from-env")
    assert folder("demo") == "from-env"


def test_key_names_are_unique_and_revoke_takes_exactly_one(database_url: str) -> None:
    url = ("--database-url", database_url)
    code, first, _ = run("keys", "create", "--role", "crm", "--name", "账单 CRM", *url)
    assert code == 0 and first.startswith("rgw_")
    code, out, err = run("keys", "create", "--role", "admin", "--name", "账单 CRM ", *url)
    assert (code, out) == (1, "")
    assert "a key named '账单 CRM' already exists" in err and "keys revoke" in err
    for name, words in [("   ", "cannot be empty"), ("0123456789ab", "look like a key id"),
                        ("a\x1bb", "control")]:
        code, out, err = run("keys", "create", "--role", "admin", "--name", name, *url)
        assert (code, out) == (2, ""), name
        assert words in err

    code, listed, _ = run("keys", "list", *url)
    assert code == 0
    header, row = listed.splitlines()
    assert header.split() == ["id", "name", "role", "created", "last", "used", "revoked"]
    assert "账单 CRM" in row and row.split()[-2:] == ["never", "-"]

    code, _, err = run("keys", "revoke", "账单 CRM", *url)
    assert code == 0 and "revoked key " in err
    code, _, err = run("keys", "revoke", "账单 CRM", *url)
    assert code == 1 and "no active key has the id or name" in err
    # The name is free again once its key is revoked.
    assert run("keys", "create", "--role", "crm", "--name", "账单 CRM", *url)[0] == 0
    code, listed, _ = run("keys", "list", "--active", *url)
    assert len(listed.splitlines()) == 2
    code, listed, _ = run("keys", "list", *url)
    assert len(listed.splitlines()) == 3


async def test_migration_renames_the_later_keys_of_a_shared_name(
        conn: asyncpg.Connection) -> None:
    await migrate_before(conn, "api_key_names")
    keys = [("t", "k1", "ops", "2026-01-01", None), ("t", "k2", "ops", "2026-01-02", None),
            ("t", "k3", "ops", "2026-01-03", None), ("t", "k4", "ops (k3)", "2026-01-04", None),
            ("t", "k5", "ops", "2025-01-01", "2026-01-01"), ("u", "k6", "ops", "2026-01-05", None)]
    for tenant, key_id, name, created, revoked in keys:
        await conn.execute(
            "INSERT INTO api_keys (tenant_id, key_id, name, role, secret_sha256, created_at,"
            " revoked_at) VALUES ($1, $2, $3, 'admin', $4, $5::text::timestamptz,"
            " $6::text::timestamptz)", tenant, key_id, name, bytes(32), created, revoked)
    await migrate(conn)
    names = dict(await conn.fetch("SELECT key_id, name FROM api_keys"))
    assert names == {"k1": "ops", "k2": "ops (k2)", "k3": "ops (k3, 2)", "k4": "ops (k3)",
                     "k5": "ops", "k6": "ops"}
    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.execute("UPDATE api_keys SET name = 'ops' WHERE key_id = 'k2'")


async def test_last_use_is_recorded_at_most_once_a_minute(
        database_url: str, aiohttp_client: AiohttpClient) -> None:
    api = await make_api(database_url, aiohttp_client)
    conn = await asyncpg.connect(database_url)

    async def stamp(name: str = "test-treasury") -> tuple[object, int]:
        """When the key was last used, and the version of its row (xmin: each write
        makes a new one)."""
        row = await conn.fetchrow("SELECT last_used_at, xmin::text::bigint AS version"
                                  " FROM api_keys WHERE name = $1", name)
        assert row is not None
        return row["last_used_at"], row["version"]

    async def call() -> None:
        response = await api.client.get("/v1/statements", headers=api.auth(Role.TREASURY))
        assert response.status == 200

    try:
        assert (await stamp())[0] is None
        await call()
        first = await stamp()
        assert first[0] is not None
        for _ in range(4):
            await call()
        assert await stamp() == first  # no write within the minute
        await conn.execute("UPDATE api_keys SET last_used_at = now() - interval '50 seconds'"
                           " WHERE name = 'test-treasury'")
        before = await stamp()
        await call()
        assert await stamp() == before
        await conn.execute("UPDATE api_keys SET last_used_at = now() - interval '61 seconds'"
                           " WHERE name = 'test-treasury'")
        old = await stamp()
        await call()
        assert (await stamp())[0] > old[0]  # type: ignore[operator]
        # A wrong secret with a real key id records nothing.
        key_id = api.keys[Role.AUDITOR].split("_")[1]
        refused = await api.client.get("/v1/statements", headers={
            "Authorization": f"Bearer rgw_{key_id}_{'A' * 43}"})
        assert refused.status == 401
        assert (await stamp("test-auditor"))[0] is None
    finally:
        await conn.close()


def test_serve_says_where_it_listens(database_url: str, tmp_path: Path) -> None:
    server = Server("--database-url", database_url, log=tmp_path / "serve.log")
    try:
        server.wait_ready()
        wanted = f"listening on http://127.0.0.1:{server.port} "
        deadline = time.monotonic() + 30
        while wanted not in server.log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)  # polling interval
        log = server.log_path.read_text()
        assert wanted in log
        assert f"on the database at {without_password(database_url)}" in log
        assert "using the database at" in log
    finally:
        server.stop()


def _through_a_terminal(argv: list[str], deadline: float = 120) -> tuple[int, str]:
    """Run the command with standard error on a pseudo-terminal; its exit status and
    everything it wrote there."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    process = subprocess.Popen([sys.executable, "-m", "gateway.cli", *argv],
                               stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks = []
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        ready, _, _ = select.select([master], [], [], 1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        elif process.poll() is not None:
            break
    os.close(master)
    return process.wait(deadline), b"".join(chunks).decode()


def test_import_shows_progress_on_a_terminal_and_not_elsewhere(database_url: str) -> None:
    argv = ["import", str(DEMO_MT940), str(DEMO_CAMT), "--database-url", database_url]
    code, shown = _through_a_terminal(argv)
    assert code == 0, shown
    assert f"\rimport 1 of 2: {DEMO_MT940.name}: parsing" in shown
    piped = subprocess.run([sys.executable, "-m", "gateway.cli", *argv], capture_output=True,
                           text=True, timeout=120, check=False)
    assert piped.returncode == 0, piped.stderr
    assert "\r" not in piped.stderr and "import 1 of 2" not in piped.stderr
    assert "known" in piped.stdout


def test_import_progress_names_each_step(database_url: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    class EveryStep(Progress):
        """Every update drawn: the steps, not the pace, are under test here."""

        def __init__(self, stream: TextIO) -> None:
            super().__init__(stream, enabled=True, interval=0, ticker=False)

    monkeypatch.setattr(commands, "Progress", EveryStep)
    err = io.StringIO()
    code = main(["import", str(DEMO_CAMT), "--database-url", database_url],
                out=io.StringIO(), err=err)
    assert code == 0, err.getvalue()
    steps = [s.strip() for s in err.getvalue().split("\r") if s.strip()]
    at = f"import 1 of 1: {DEMO_CAMT.name}"
    assert steps[1:4] == [f"{at}: parsing", f"{at}: storing 3 lines", "reconciling"], steps
    assert steps[4].startswith("reconciling: 0 of ")
    assert steps[-1].startswith("reconciling: ") and steps[-1].endswith(" payments stored")
