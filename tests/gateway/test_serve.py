"""Claims about processes, tested with real processes: serve on the embedded database,
keys from the command line, two servers on one database, graceful shutdown. What the import
commands print and store is checked in this process (``command``): a child process costs
over a second of imports each time."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.gateway.processes import Server, cli, command
from tests.paths import DEMO_CAMT

CAMT = DEMO_CAMT.read_bytes()


@pytest.fixture
def embedded_serve(tmp_path: Path, data_dir: Path) -> Iterator[tuple[Server, Path]]:
    # The log format setting reaches serve: text lines, though the log is not a terminal.
    server = Server("--data-dir", str(data_dir), log=tmp_path / "serve.log",
                    env={"RECON_LOG_FORMAT": "text"})
    try:
        server.wait_ready()
        yield server, data_dir
    finally:
        server.stop()


def test_serve_runs_on_the_embedded_database_with_keys_from_the_cli(
        embedded_serve: tuple[Server, Path]) -> None:
    server, data_dir = embedded_serve
    created = cli("keys", "create", "--role", "treasury", "--name", "ops",
                  "--data-dir", str(data_dir))
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert created.stdout == key + "\n" and key.startswith("rgw_")
    assert key not in created.stderr

    status, body = server.request("POST", "/v1/statements", key=key, body=CAMT)
    assert (status, body["entries_new"]) == (201, 3)
    status, _ = server.request("GET", "/v1/transactions", key=key)
    assert status == 200

    revoked = cli("keys", "revoke", "ops", "--data-dir", str(data_dir))
    assert revoked.returncode == 0, revoked.stderr
    status, problem = server.request("GET", "/v1/transactions", key=key)
    assert problem["type"].endswith("/unauthenticated")
    assert status == 401
    log = server.log_path.read_text()
    assert key not in log
    assert re.search(r"^\S+Z INFO +POST /v1/statements 201 [0-9.]+ ms key=", log, re.M), log
    assert server.stop() == 0


def test_two_servers_importing_the_same_file_at_once_store_it_once(
        database_url: str, tmp_path: Path) -> None:
    created = cli("keys", "create", "--role", "admin", "--name", "both",
                  "--database-url", database_url)
    key = created.stdout.strip()
    servers = [Server("--database-url", database_url, log=tmp_path / f"s{i}.log")
               for i in range(2)]
    try:
        for server in servers:
            server.wait_ready()

        async def post_all() -> list[tuple[int, dict[str, object]]]:
            loop = asyncio.get_running_loop()
            return await asyncio.gather(*(
                loop.run_in_executor(None, lambda s=s: s.request(
                    "POST", "/v1/statements", key=key, body=CAMT))
                for s in servers for _ in range(3)))

        results = asyncio.run(post_all())
        assert [status for status, _ in results] == [201] * 6
        assert sum(int(str(body["entries_new"])) for _, body in results) == 3
        assert sum(body["document_known"] is False for _, body in results) == 1

        async def count() -> int:
            conn = await asyncpg.connect(database_url)
            try:
                value: int = await conn.fetchval("SELECT count(*) FROM transactions")
                return value
            finally:
                await conn.close()

        assert asyncio.run(count()) == 3
    finally:
        for server in servers:
            server.stop()


async def test_shutdown_lets_the_request_in_flight_finish(database_url: str,
                                                         tmp_path: Path) -> None:
    """SIGTERM while an import is being stored: the import completes, then the process exits.

    The import is held mid-way by a lock the test takes on the transactions table, so the
    request is certainly in flight when the signal arrives. (aiohttp stops reading request
    bodies at shutdown, so an upload still arriving is cut off; see docs/operations.md.)
    """
    key = cli("keys", "create", "--role", "treasury", "--name", "slow",
              "--database-url", database_url).stdout.strip()
    server = Server("--database-url", database_url, log=tmp_path / "serve.log")
    blocker = await asyncpg.connect(database_url)
    try:
        server.wait_ready()
        lock = blocker.transaction()
        await lock.start()
        await blocker.execute("LOCK TABLE transactions IN ACCESS EXCLUSIVE MODE")
        loop = asyncio.get_running_loop()
        upload = loop.run_in_executor(None, lambda: server.request(
            "POST", "/v1/statements", key=key, body=CAMT))
        await _poll(lambda: blocker.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND datname = current_database()"), "the import to wait on the lock")
        server.terminate()
        await loop.run_in_executor(None, _wait_until_refused, server.port)
        await lock.rollback()
        status, body = await upload
        assert (status, body["entries_new"]) == (201, 3)
        assert await loop.run_in_executor(None, server.stop) == 0
    finally:
        await blocker.close()
        server.stop()


async def _poll(probe: Callable[[], Awaitable[int]], what: str, deadline: float = 30) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if await probe():
            return
        await asyncio.sleep(0.05)  # polling interval
    raise AssertionError(f"gave up waiting for {what}")


def _wait_until_refused(port: int, deadline: float = 30) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return
        time.sleep(0.05)  # polling interval
    raise AssertionError("the server kept accepting connections after SIGTERM")


def test_demo_loads_its_data_once_and_prints_a_working_key(tmp_path: Path,
                                                           data_dir: Path) -> None:
    for round_number in (1, 2):  # the second start stores nothing twice
        server = Server("--data-dir", str(data_dir), log=tmp_path / f"demo{round_number}.log",
                        command="demo")
        try:
            server.wait_ready()
            printed = server.log_path.read_text()
            key = next(line.split()[2] for line in printed.splitlines()
                       if line.strip().startswith("demo key"))
            status, page = server.request("GET", "/v1/invoices?status=paid", key=key)
            assert status == 200 and len(page["items"]) == 6  # reconciled on load
            status, page = server.request("GET", "/v1/matches?status=applied", key=key)
            assert status == 200 and len(page["items"]) == 7  # and an instalment
            status, page = server.request("GET", "/v1/transactions", key=key)
            assert status == 200 and len(page["items"]) == 15  # a pending line booked
            expected = "3 new entries" if round_number == 1 else "0 new entries, 3 known"
            assert printed.count(expected) == 3, printed
        finally:
            assert server.stop() == 0


def test_invoices_import_from_csv_and_its_errors(database_url: str, tmp_path: Path) -> None:
    good = tmp_path / "invoices.csv"
    good.write_text(
        "invoice_id,customer_id,customer_name,currency,amount,open_amount,issue_date,"
        "due_date,reference\n"
        "A-1,C1,Alpha GmbH,EUR,100.00,100.00,2026-11-01,2026-11-30,A-1\n"
        "A-2,C1,Alpha GmbH,EUR,50.00,,2026-11-02,,\n")
    done = command("invoices", "import", str(good), "--database-url", database_url)
    assert (done.returncode, done.stdout.strip()) == (
        0, f"{good}: 2 invoices, 2 created, 0 updated")
    again = command("invoices", "import", str(good), "--database-url", database_url)
    assert again.stdout.strip().endswith("0 created, 0 updated")

    bad = tmp_path / "bad.csv"
    bad.write_text(good.read_text().replace("EUR,50.00", "EURO,-50.00"))
    refused = command("invoices", "import", str(bad), "--database-url", database_url)
    assert refused.returncode == 1
    assert f"{bad}: line 3 (A-2): currency: must be an ISO 4217 code" in refused.stderr
    assert f"{bad}: line 3 (A-2): amount: must be greater than zero" in refused.stderr
    assert "nothing was imported" in refused.stderr

    # The same screening as the API: an id with a zero-width space, a week date, an
    # amount of 10^30 (line numbers count the header).
    hidden = tmp_path / "hidden.csv"
    hidden.write_text(good.read_text().replace("A-1,C1", "A\u200b-1,C1")
                      .replace("2026-11-02", "2026-W45-1").replace("50.00", "1" + "0" * 30))
    screened = command("invoices", "import", str(hidden), "--database-url", database_url)
    assert screened.returncode == 1
    assert f"{hidden}: line 2 (A\u200b-1): invoice_id: contains the invisible" \
        in screened.stderr
    assert f"{hidden}: line 3 (A-2): issue_date: must be a date as YYYY-MM-DD" \
        in screened.stderr
    assert f"{hidden}: line 3 (A-2): amount: must be less than" in screened.stderr


def test_import_command_stores_good_files_and_lists_bad_ones(database_url: str,
                                                            tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_bytes(DEMO_CAMT.read_bytes()[:500])
    done = command("import", str(DEMO_CAMT), str(bad), "--database-url", database_url)
    assert done.returncode == 1
    assert f"{DEMO_CAMT}: 1 statement(s), 3 new entries, 0 known" in done.stdout
    assert done.stderr.splitlines()[1].startswith(f"error: {bad}: ")  # after "using ..."
    again = command("import", str(DEMO_CAMT), "--database-url", database_url)
    assert again.returncode == 0
    assert "0 new entries, 3 known (document already imported)" in again.stdout
