"""recon-gateway audit verify | export | checkpoint on a real database: tampering done in SQL
by a superuser (past the trigger) is found and named; a chain rewritten whole with its
hashes recomputed, by the checkpoints kept outside the database."""

from __future__ import annotations

import asyncio
import io
import json
import stat
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from gateway import audit_checkpoints, audit_cli
from gateway.cli import main
from gateway.store import audit
from security.audit import START, new_entry
from tests.paths import ROOT

TENANT = "default"


@dataclass
class Trail:
    url: str
    folder: Path

    @property
    def key(self) -> Path:
        return self.folder / "checkpoint.key"

    @property
    def checkpoints(self) -> Path:
        return self.folder / "checkpoints.jsonl"

    async def run(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        places = ["--checkpoint-key", str(self.key), "--checkpoints", str(self.checkpoints)]
        if argv[1] in ("verify", "checkpoint", "export"):
            argv = (*argv, *places)
        code = await asyncio.to_thread(main, [*argv, "--database-url", self.url],
                                       out=out, err=err)
        return code, out.getvalue(), err.getvalue()

    async def sql(self, *statements: str | tuple[Any, ...]) -> None:
        """As a superuser, with the trail's triggers not firing (what the trigger cannot
        stop: docs/operations.md); a statement with parameters is a tuple."""
        conn = await asyncpg.connect(self.url)
        try:
            async with conn.transaction():
                await conn.execute("SET LOCAL session_replication_role = replica")
                for statement in statements:
                    if isinstance(statement, tuple):
                        await conn.execute(*statement)
                    else:
                        await conn.execute(statement)
        finally:
            await conn.close()


async def append(url: str, count: int, tenant: str = TENANT) -> None:
    conn = await asyncpg.connect(url)
    try:
        for n in range(count):
            async with conn.transaction():
                await audit.append(conn, tenant, actor=audit.system_actor("test"),
                                   action="invoice.updated", object_type="invoice",
                                   object_id=f"INV-{n}", before={"open_amount": "10.00"},
                                   after={"open_amount": f"{n}.00"})
    finally:
        await conn.close()


@pytest.fixture
async def trail(migrated_database_url: str, tmp_path: Path) -> Trail:
    """Six entries, checkpointed at seq 4, then two more."""
    made = Trail(migrated_database_url, tmp_path)
    await append(migrated_database_url, 4)
    code, out, err = await made.run("audit", "checkpoint")
    assert code == 0, err
    assert "checkpoint of seq 4 signed" in out
    await append(migrated_database_url, 2)
    return made


async def test_a_sound_trail_verifies_and_the_key_is_private(trail: Trail) -> None:
    assert stat.S_IMODE(trail.key.stat().st_mode) == 0o600
    code, out, err = await trail.run("audit", "verify")
    assert (code, out) == (0, "tenant default: 6 entries, head seq 6; 1 checkpoint(s) "
                              "checked: OK\n")
    assert " is a superuser: it could disable the trail's trigger" in err
    conn = await asyncpg.connect(trail.url)
    try:
        last = await audit.last_verification(conn, TENANT)
    finally:
        await conn.close()
    assert last is not None and last["ok"] and last["head_seq"] == 6


async def _rewrite_from(trail: Trail, seq: int) -> None:
    """Entries from ``seq`` on replaced by others, every hash recomputed: a chain whole
    in itself."""
    conn = await asyncpg.connect(trail.url)
    try:
        rows = [e async for batch in audit.entries(conn, TENANT) for e in batch]
    finally:
        await conn.close()
    head = START
    statements: list[str | tuple[Any, ...]] = [
        ("DELETE FROM audit_log WHERE tenant_id = $1 AND seq >= $2", TENANT, seq)]
    for row in rows:
        if row["seq"] < seq:
            head = audit.Head(row["seq"], row["hash"])
            continue
        forged = new_entry(head, time=datetime.now(UTC), actor=row["actor"],
                           action=row["action"], object=row["object"], before=row["before"],
                           after={"open_amount": "0.00"})
        head = forged.head
        statements.append((
            "INSERT INTO audit_log VALUES ($1, $2, $3::text::timestamptz, $4::jsonb, $5,"
            " $6::jsonb, $7::jsonb, $8::jsonb, $9, $10)", TENANT, forged.seq, forged.time,
            json.dumps(forged.actor), forged.action, json.dumps(forged.object),
            json.dumps(forged.before), json.dumps(forged.after), forged.prev, forged.hash))
    await trail.sql(*statements)


TAMPERING: dict[str, tuple[Callable[[Trail], Awaitable[None]], str]] = {
    "altered": (lambda t: t.sql("UPDATE audit_log SET after = '{\"open_amount\": \"99.00\"}'"
                                " WHERE seq = 3"), "BAD seq 3: altered"),
    "deleted": (lambda t: t.sql("DELETE FROM audit_log WHERE seq = 3"), "BAD seq 3: deleted"),
    "inserted": (lambda t: t.sql("ALTER TABLE audit_log DROP CONSTRAINT audit_log_pkey",
                                 "INSERT INTO audit_log SELECT * FROM audit_log WHERE seq = 3"),
                 "BAD seq 3: inserted"),
    # In the table an entry's place is its seq: one moved shows as altered.
    "reordered": (lambda t: t.sql("UPDATE audit_log SET seq = 1000 WHERE seq = 3",
                                  "UPDATE audit_log SET seq = 3 WHERE seq = 4",
                                  "UPDATE audit_log SET seq = 4 WHERE seq = 1000"),
                  "BAD seq 3: altered"),
    "cut at the end": (lambda t: t.sql("DELETE FROM audit_log WHERE seq >= 3"),
                       "BAD seq 3: deleted: the checkpoint of"),
    "rewritten whole": (lambda t: _rewrite_from(t, 1),
                        "BAD seq 4: rewritten: the checkpoint of"),
    "rewritten from seq 3": (lambda t: _rewrite_from(t, 3),
                             "BAD seq 4: rewritten: the checkpoint of"),
}


@pytest.mark.parametrize("kind", sorted(TAMPERING))
async def test_tampering_in_sql_is_found_and_named(trail: Trail, kind: str) -> None:
    tamper, said = TAMPERING[kind]
    await tamper(trail)
    code, out, _ = await trail.run("audit", "verify")
    assert code == 1
    assert out.startswith("tenant default: ") and said in out, out
    conn = await asyncpg.connect(trail.url)
    try:
        last = await audit.last_verification(conn, TENANT)
    finally:
        await conn.close()
    assert last is not None and not last["ok"] and said.split(": ")[0][4:] in \
        f"seq {last['problem']['seq']}"
    code, out, _ = await trail.run("audit", "checkpoint")  # a bad chain is never signed
    assert code == 1 and out.endswith("; not signed\n")


async def test_rewritten_after_the_last_checkpoint_is_not_seen(trail: Trail) -> None:
    """What checkpoints cannot show (docs/audit.md): entries past the last one."""
    await _rewrite_from(trail, 5)
    code, _, _ = await trail.run("audit", "verify")
    assert code == 0


async def test_each_tenant_is_checked_on_its_own(trail: Trail) -> None:
    await append(trail.url, 3, tenant="other")
    await trail.sql("DELETE FROM audit_log WHERE tenant_id = 'other' AND seq = 2")
    code, out, _ = await trail.run("audit", "verify")
    assert code == 1
    assert out.splitlines() == [
        "tenant default: 6 entries, head seq 6; 1 checkpoint(s) checked: OK",
        "tenant other: 2 entries, head seq 3; 0 checkpoint(s) checked: BAD seq 2: deleted: "
        "seq 2 missing before seq 3"]
    code, out, _ = await trail.run("audit", "verify", "--tenant", "default")
    assert code == 0


def _script(folder: Path) -> Path:
    """The check of docs/audit.md, copied from the page, beside audit_verify.py."""
    page = (ROOT / "docs" / "audit.md").read_text(encoding="utf-8")
    code = page.split("# verify_audit.py ENTRIES.jsonl", 1)[1].split("```", 1)[0]
    script = folder / "verify_audit.py"
    script.write_text("# verify_audit.py ENTRIES.jsonl" + code, encoding="utf-8")
    (folder / "audit_verify.py").write_bytes(
        (ROOT / "security" / "audit_verify.py").read_bytes())
    return script


async def test_an_export_is_checked_by_the_independent_script(trail: Trail) -> None:
    exported = trail.folder / "audit.jsonl"
    mine = trail.folder / "mine.jsonl"
    code, out, err = await trail.run("audit", "export", "--checkpoints-out", str(mine))
    assert code == 0 and "6 entries of tenant default exported" in err
    exported.write_text(out, encoding="utf-8")
    script = _script(trail.folder)
    keys = str(trail.key) + ".pub.json"
    done = subprocess.run([sys.executable, str(script), str(exported), str(mine), keys,
                           "--whole"], capture_output=True, text=True, cwd=trail.folder,
                          check=False)
    assert (done.returncode, done.stdout) == (
        0, "6 entries; checkpoints: 1 checked, 0 outside the export\nOK\n"), done.stderr
    await _rewrite_from(trail, 2)
    code, out, _ = await trail.run("audit", "export")
    exported.write_text(out, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script), str(exported), str(mine), keys,
                           "--whole"], capture_output=True, text=True, cwd=trail.folder,
                          check=False)
    assert done.returncode == 1 and "BAD seq 4: rewritten" in done.stdout


async def test_an_export_from_and_to(trail: Trail) -> None:
    code, out, _ = await trail.run("audit", "export", "--from", "2", "--to", "4")
    assert code == 0
    assert [json.loads(line)["seq"] for line in out.splitlines()] == [2, 3, 4]
    code, out, _ = await trail.run("audit", "export", "--from", "2000-01-01T00:00:00Z",
                                   "--to", "2000-01-02T00:00:00Z")
    assert (code, out) == (0, "")
    code, _, err = await trail.run("audit", "export", "--from", "yesterday")
    assert code == 1 and "give a seq" in err


async def test_serve_signs_changed_chains_at_intervals(trail: Trail) -> None:
    """The loop serve runs: each round signs the heads that moved, and only those."""
    where = audit_cli.Places(trail.key, trail.checkpoints,
                             audit_checkpoints.public_keys_path(trail.key))
    stop = asyncio.Event()

    async def signed_up_to(seq: int) -> list[dict[str, Any]]:
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            found = audit_checkpoints.read_checkpoints(trail.checkpoints)
            if any(c["seq"] == seq for c in found):
                return found
            assert asyncio.get_running_loop().time() < deadline, found
            await asyncio.sleep(0.02)  # polling interval

    async with asyncpg.create_pool(trail.url, min_size=1, max_size=2) as pool:
        task = asyncio.create_task(audit_cli.checkpoints_at_intervals(pool, where, 0.05,
                                                                      stop))
        try:
            await signed_up_to(6)
            await append(trail.url, 2)
            found = await signed_up_to(8)
        finally:
            stop.set()
            await task
    seqs = [c["seq"] for c in found]  # (7 too, if a round fell between the two appends)
    assert seqs[:2] == [4, 6] and seqs[-1] == 8
    assert seqs == sorted(set(seqs))  # an unchanged head is never signed again
    code, out, _ = await trail.run("audit", "verify")
    assert code == 0 and f"{len(seqs)} checkpoint(s) checked: OK" in out
