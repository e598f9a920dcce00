"""The demo: its data exercises every decision, loads once, and every command its banner
prints works as printed, against a live demo, with every request and delivery logged in
one line that holds no secret."""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import logging
import re
import shlex
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

import parsers
from gateway import demo, logs
from gateway.app import create_app
from gateway.settings import Settings
from parsers.model import EntryStatus
from security import apikeys
from tests.gateway.processes import free_port
from tests.paths import DEMO_STATEMENTS, ROOT

DATA = DEMO_STATEMENTS.parent
UPLOAD = DATA / "upload" / demo.UPLOAD
DOCS = ROOT / "docs" / "demo.md"
EMBEDDED = pytest.mark.parametrize("server_url", ["embedded"], indirect=True)


def _statements() -> list[parsers.Statement]:
    return [s for path in [*sorted(DEMO_STATEMENTS.iterdir()), UPLOAD]
            for s in parsers.parse_path(path, strict=True)]


def test_every_demo_statement_is_valid_adds_up_and_follows_the_one_before() -> None:
    statements = _statements()
    assert sorted({s.format for s in statements}) == ["camt.053", "mt940", "ofx"]
    assert all(s.flags == () for s in statements), [s.flags for s in statements]
    by_account: dict[str, list[parsers.Statement]] = {}
    for statement in statements:
        assert statement.closing_balance is not None
        by_account.setdefault(statement.account.key, []).append(statement)
        if statement.opening_balance is None:
            continue  # OFX gives the closing balance only
        booked = sum((e.amount.amount for e in statement.entries
                      if e.status is EntryStatus.BOOKED), Decimal(0))
        assert statement.opening_balance.amount.amount + booked \
            == statement.closing_balance.amount.amount, statement.statement_id
    assert sorted(len(s) for s in by_account.values()) == [1, 2, 2]
    for days in by_account.values():
        days.sort(key=lambda s: s.closing_balance.date if s.closing_balance else None)
        for earlier, later in itertools.pairwise(days):
            assert earlier.closing_balance is not None and later.opening_balance is not None
            assert later.opening_balance.amount == earlier.closing_balance.amount


async def _counts(conn: asyncpg.Connection) -> dict[str, int]:
    tables = await conn.fetch("SELECT table_name FROM information_schema.tables"
                              " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'")
    return {t["table_name"]: await conn.fetchval(
        f'SELECT count(*) FROM "{t["table_name"]}"')  # noqa: S608 - names from the catalog
        for t in tables}


@EMBEDDED
async def test_the_demo_has_every_kind_of_decision_and_loads_once(database_url: str) -> None:
    settings = Settings(database_url=database_url)
    first = await demo.load(settings)
    conn = await asyncpg.connect(database_url)
    try:
        allocations = await conn.fetch(
            "SELECT a.*, t.currency AS payment_currency FROM allocations a JOIN transactions t"
            " USING (tenant_id, account_id, entry_id) ORDER BY allocation_id")
        review = [a for a in allocations if (a["decision"], a["status"]) == ("review",
                                                                             "proposed")]
        assert {a["invoice_id"] for a in review} >= {demo.TO_ACCEPT, demo.TO_REJECT}
        assert (first.tryouts.accept, first.tryouts.reject) == tuple(
            next(a["allocation_id"] for a in review if a["invoice_id"] == invoice)
            for invoice in (demo.TO_ACCEPT, demo.TO_REJECT))
        automatic = {a["invoice_id"]: a for a in allocations
                     if (a["decision"], a["status"]) == ("auto", "applied")}
        assert first.tryouts.undo == automatic[demo.TO_UNDO]["allocation_id"]
        fx = automatic[demo.FX_INVOICE]
        assert (fx["currency"], fx["payment_currency"], fx["fx_rate"]) == (
            "USD", "EUR", Decimal("0.92"))
        instalment = await conn.fetchrow("SELECT * FROM invoices WHERE invoice_id = $1",
                                         demo.INSTALMENT)
        assert (instalment["status"], automatic[demo.INSTALMENT]["settlement"]) == (
            "partially_paid", "partial")
        unmatched = await conn.fetch(
            "SELECT entry_id FROM transactions t WHERE amount > 0 AND status = 'booked'"
            " AND NOT EXISTS (SELECT 1 FROM allocations a WHERE a.tenant_id = t.tenant_id"
            " AND a.account_id = t.account_id AND a.entry_id = t.entry_id)")
        assert len(unmatched) == 1
        chinese = await conn.fetch("SELECT name FROM customers WHERE name ~ '[\u4e00-\u9fff]'")
        assert len(chinese) >= 2
        # docs/demo.md's table of what the engine decides says what the engine decided.
        table = DOCS.read_text(encoding="utf-8").split("| payment |")[1].split("\n\n")[0]
        rows = table.splitlines()[2:]
        assert len(rows) == 10  # one per incoming payment
        for row in rows:
            cells = [c.strip() for c in row.strip("|").split("|")]
            invoice = cells[1].split()[0]
            if cells[2].startswith("automatic"):
                assert invoice in automatic, row
            elif cells[2] == "**review**":
                assert invoice in {a["invoice_id"] for a in review}, row
            else:
                assert (cells[1], cells[2]) == ("none", "unmatched"), row

        before = await _counts(conn)
        second = await demo.load(settings)
        after = await _counts(conn)
        # The demo key is replaced (the old one revoked): the only row a start adds, with
        # the audit trail's two entries saying so.
        assert {**after, "api_keys": before["api_keys"],
                "audit_log": before["audit_log"]} == before
        assert after["api_keys"] == before["api_keys"] + 1
        assert after["audit_log"] == before["audit_log"] + 2
        assert await conn.fetchval("SELECT count(*) FROM api_keys WHERE name = $1 AND"
                                   " revoked_at IS NULL", demo.DEMO_KEY_NAME) == 1
        assert second.tryouts == first.tryouts and second.key != first.key
    finally:
        await conn.close()


# -- the banner, run against a live demo ------------------------------------------------

@contextlib.contextmanager
def captured_log(log_format: str) -> Iterator[io.StringIO]:
    """Every log line of this process, in ``log_format``, while the block runs."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter_for(log_format, stream))
    root, aiohttp_access = logging.getLogger(), logging.getLogger("aiohttp.access")
    levels = root.level, aiohttp_access.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    aiohttp_access.setLevel(logging.WARNING)  # as logs.configure does: we log requests
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(levels[0])
        aiohttp_access.setLevel(levels[1])


async def curl(session: aiohttp.ClientSession, line: str) -> tuple[int, Any]:
    """What curl does with the options the banner uses, read as a shell reads the line:
    a body makes a POST, and without a Content-Type curl sends a form's; ``@file`` reads
    the file from the current folder (``-d`` drops its line ends, ``--data-binary`` not).
    An option this does not know fails the test."""
    argv = shlex.split(line)
    assert argv[0] == "curl", line
    method, url, body = None, None, None
    headers: dict[str, str] = {}
    words = iter(argv[1:])
    for word in words:
        if word == "-s":
            continue
        if word == "-X":
            method = next(words)
        elif word == "-H":
            name, _, value = next(words).partition(":")
            headers[name.strip()] = value.strip()
        elif word in ("-d", "--data-binary"):
            value = next(words)
            body = Path(value[1:]).read_bytes() if value.startswith("@") else value.encode()
            if word == "-d" and value.startswith("@"):
                body = body.replace(b"\r", b"").replace(b"\n", b"")
        else:
            assert not word.startswith("-") and url is None, f"curl {word}? in {line}"
            url = word
    assert url is not None, line
    if body is not None:
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    async with session.request(method or ("POST" if body is not None else "GET"), url,
                               data=body, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def _lines_of(process: asyncio.subprocess.Process, count: int,
                    timeout: float = 120) -> list[dict[str, Any]]:
    """The first ``count`` events the example receiver prints (one JSON line each)."""
    assert process.stdout is not None
    taken: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while len({t["webhook_id"] for t in taken}) < count:
            line = await process.stdout.readline()
            assert line, "the receiver stopped"
            if not line.startswith(b"listening on "):
                taken.append(json.loads(line))
    return taken


def _secrets(key: str) -> list[re.Pattern[str]]:
    """What no log line may hold: the key's secret, IBANs, names and amounts of the data."""
    texts = [*(p.read_text(encoding="utf-8") for p in DEMO_STATEMENTS.iterdir()),
             UPLOAD.read_text(encoding="utf-8"), (DATA / "customers.json").read_text("utf-8")]
    ibans = {i for text in texts for i in re.findall(r"\b[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}\b",
                                                     text)}
    customers = json.loads((DATA / "customers.json").read_text(encoding="utf-8"))
    names = {c["name"] for c in customers} | {a for c in customers for a in c["aliases"]}
    names |= {e.counterparty_name for s in _statements() for e in s.entries
              if e.counterparty_name}
    amounts = {f"{abs(e.amount.amount):.2f}" for s in _statements() for e in s.entries}
    parts = apikeys.split(key)  # the secret as the key splits (it may itself hold "_")
    assert parts is not None
    return [re.compile(re.escape(parts[1])),
            *(re.compile(re.escape(i)) for i in ibans),
            *(re.compile(re.escape(n), re.IGNORECASE) for n in names),
            *(re.compile(rf"(?<![0-9:.]){re.escape(a)}(?![0-9])") for a in amounts)]


@EMBEDDED
async def test_every_command_the_banner_prints_works_and_is_logged(
        database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        aiohttp_server: Any) -> None:
    monkeypatch.chdir(tmp_path)  # the folder the user started the demo in
    settings = Settings(database_url=database_url, data_dir="./recon-demo",
                        allow_private_webhooks=True,
                        webhook_retry_schedule=",".join(["0", "0.2", "0.5"] + ["1"] * 120))
    loaded = await demo.load(settings)
    files = demo.write_files(Path(settings.data_dir), crm_port=free_port())
    with captured_log("text") as text, captured_log("json") as as_json:
        server = await aiohttp_server(create_app(settings))
        printed = demo.banner(f"http://127.0.0.1:{server.port}", loaded, files)
        # Commands are the lines indented by four spaces; everything else is prose.
        commands = [line[4:] for line in printed.splitlines() if line.startswith("    ")]
        assert sum(c.startswith("curl ") for c in commands) == len(commands) - 1
        assert "@recon-demo/" + demo.UPLOAD in printed  # relative to where it started
        answers: dict[str, Any] = {}
        receiver = None
        async with aiohttp.ClientSession() as session:
            try:
                for command in commands:
                    if "SUB_ID" in command or "SECRET" in command:
                        continue  # after the subscription, below
                    status, answers[command] = await curl(session, command)
                    assert 200 <= status < 300, (command, status, answers[command])
                subscribe = next(c for c in commands if c.endswith("/v1/subscriptions"))
                subscription = answers[subscribe]
                filled = [c.replace("SUB_ID", subscription["id"])
                          .replace("SECRET", subscription["secret"])
                          for c in commands if "SUB_ID" in c or "SECRET" in c]
                replay = next(c for c in filled if c.startswith("curl "))
                # The upload's payments are matched in the background: their events are
                # among those replayed once that is done.
                await _until_idle(session, f"http://127.0.0.1:{server.port}", loaded.key)
                # The CRM is not up yet: the replay's first attempts fail, and are retried.
                status, queued = await curl(session, replay)
                assert status == 202 and queued["queued"] > 10, queued
                await _until_logged(text, "ClientConnectorError")
                run = next(c for c in filled if not c.startswith("curl "))
                receiver = await asyncio.create_subprocess_exec(
                    *shlex.split(run), stdout=asyncio.subprocess.PIPE)
                taken = await _lines_of(receiver, queued["queued"])
            finally:
                if receiver is not None and receiver.returncode is None:
                    receiver.terminate()
                    await receiver.wait()
        assert not any(t["gap"] for t in taken)
        assert {t["event"]["type"] for t in taken} >= {
            "invoice.paid", "invoice.partially_paid", "allocation.reversed",
            "payment.unmatched"}
        upload = next(v for c, v in answers.items() if "--data-binary @recon-demo/m" in c)
        # Its new lines, booked, matched by the workers afterwards.
        assert (upload["reconciliation"]["status"], upload["reconciliation"]["lines"]) == (
            "queued", upload["entries_new"])
        assert upload["entries_new"] >= 2  # the instalment's rest, ACME's
        await _until_logged(text, ": 204 in ")
    _check_log(text.getvalue(), as_json.getvalue(), loaded.key, subscription["secret"])


async def _until_idle(session: aiohttp.ClientSession, base: str, key: str,
                      timeout: float = 120) -> None:
    """Poll GET /v1/reconcile until the workers have matched everything queued."""
    async with asyncio.timeout(timeout):
        while True:
            async with session.get(f"{base}/v1/reconcile",
                                   headers={"Authorization": f"Bearer {key}"}) as answer:
                if (await answer.json())["status"] == "idle":
                    return
            await asyncio.sleep(0.05)  # polling interval


async def _until_logged(stream: io.StringIO, words: str, timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while words not in stream.getvalue():
            await asyncio.sleep(0.05)  # polling interval


def _check_log(text: str, as_json: str, key: str, webhook_secret: str) -> None:
    lines = text.splitlines()
    key_id = key.split("_")[1]
    requests = [line for line in lines if f" key={key_id} " in line]
    for shape in (r"GET /v1/transactions\?limit=5 200 [0-9.]+ ms key=",
                  r"GET /v1/matches\?decision=review&status=proposed 200 ",
                  r"GET /v1/invoices/\{invoice_id\} 200 ",
                  r"POST /v1/matches/[0-9]+/accept 200 ",
                  r"POST /v1/matches/[0-9]+/undo 200 ",
                  r"POST /v1/statements\?filename=\*\*\* 201 ",
                  r"POST /v1/subscriptions/sub_[0-9a-f]{32}/replay 202 "):
        assert any(re.search(shape, line) for line in requests), (shape, requests)
    assert all(re.search(r" request=[0-9a-f]{32}$", line) for line in requests)
    deliveries = [line for line in lines if " webhook " in line]
    assert any(re.search(r"WARNING webhook [a-z_.]+ evt_[0-9a-f]{32} to sub_[0-9a-f]{32} "
                         r"attempt 1: ClientConnectorError in [0-9.]+ ms, next attempt at ",
                         line) for line in deliveries), deliveries
    assert any(re.search(r"INFO  webhook [a-z_.]+ evt_\S+ to sub_\S+ attempt [0-9]+: 204 in "
                         r"[0-9.]+ ms, delivered$", line) for line in deliveries), deliveries
    objects = [json.loads(line) for line in as_json.splitlines()]
    assert any(o.get("path") == "/v1/statements?filename=***" and o["status"] == 201
               and o["key_id"] == key_id and o.get("request_id") for o in objects)
    assert any(o.get("event_type") and o.get("outcome") == "succeeded" and o["attempt"] >= 1
               for o in objects)
    everything = text + as_json
    for secret in [*_secrets(key), re.compile(re.escape(webhook_secret))]:
        assert not secret.search(everything), secret.pattern
