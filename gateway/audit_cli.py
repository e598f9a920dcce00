"""``recon-gateway audit``: verify, export and checkpoint the audit trail (docs/audit.md).

- ``audit verify`` checks every tenant's chain as stored (or ``--tenant``'s) against the
  signed checkpoints, names the first bad entry of each, records what it found (GET
  /v1/audit reports the last), and exits 1 when a chain is bad.
- ``audit export`` writes a tenant's entries as JSON lines, from and to a seq or a time,
  for the independent check of docs/audit.md.
- ``audit checkpoint`` verifies each chain, then signs its head and Merkle root with the
  checkpoint key (outside the database, created 0600 on first use) and appends the
  checkpoint to the checkpoints file (outside the database too). A chain found bad is
  not signed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway import audit_checkpoints as files
from gateway.limits import instant_of
from gateway.options import (
    CommandError,
    add_database_options,
    connected,
    settings_of,
    with_database,
)
from gateway.settings import Settings
from gateway.store import audit as store
from security.audit import Head, sign_checkpoint
from security.audit_verify import MerkleFrontier, Problem, verify_export

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Places:
    key: Path
    checkpoints: Path
    public_keys: Path


def places(settings: Settings, args: argparse.Namespace) -> Places:
    """The key and checkpoints files: the options, else the settings, else beside the data
    folder."""
    key, checkpoints = files.default_paths(settings.data_dir)
    key = Path(getattr(args, "checkpoint_key", None) or settings.audit_checkpoint_key or key)
    checkpoints = Path(getattr(args, "checkpoints", None) or settings.audit_checkpoints
                       or checkpoints)
    return Places(key, checkpoints, files.public_keys_path(key))


def public_keys(where: Places) -> dict[str, Ed25519PublicKey]:
    """The keys checkpoints are checked with: the public keys file beside the key, and the
    key itself."""
    keys = files.read_public_keys(where.public_keys) if where.public_keys.exists() else {}
    if where.key.exists():
        key = files.load(where.key)
        keys[key.key_id] = key.private.public_key()
    return keys


@dataclass(frozen=True, slots=True)
class Verdict:
    tenant: str
    entries: int
    head: Head
    problem: Problem | None
    checked: int  # checkpoints checked against the chain

    def line(self) -> str:
        said = (f"tenant {self.tenant}: {self.entries} entries, head seq {self.head.seq}; "
                f"{self.checked} checkpoint(s) checked: ")
        return said + (f"BAD {self.problem}" if self.problem else "OK")


async def chain_of(conn: asyncpg.Connection, tenant: str) -> list[dict[str, Any]]:
    return [entry async for batch in store.entries(conn, tenant) for entry in batch]


async def verify_tenant(conn: asyncpg.Connection, tenant: str,
                        checkpoints: list[dict[str, Any]],
                        keys: dict[str, Ed25519PublicKey]) -> tuple[Verdict, list[str]]:
    """The tenant's chain checked whole against its checkpoints; and its entries' hashes."""
    entries = await chain_of(conn, tenant)
    mine = [c for c in checkpoints if c.get("chain") == tenant]
    found = verify_export(entries, mine, keys, whole=True)
    head = Head(entries[-1]["seq"], entries[-1]["hash"]) if entries else Head(0, "0" * 64)
    verdict = Verdict(tenant, len(entries), head, found.problem, found.checkpoints_checked)
    return verdict, [str(e["hash"]) for e in entries]


async def tenants_to_check(conn: asyncpg.Connection, tenant: str | None,
                           checkpoints: list[dict[str, Any]]) -> list[str]:
    """``tenant``, or every tenant with a chain or a checkpoint (a chain deleted whole
    still has its checkpoints)."""
    if tenant is not None:
        return [tenant]
    return sorted(set(await store.tenants(conn))
                  | {str(c["chain"]) for c in checkpoints if "chain" in c})


async def verify_all(conn: asyncpg.Connection, tenant: str | None,
                     where: Places) -> list[Verdict]:
    checkpoints = files.read_checkpoints(where.checkpoints)
    keys = public_keys(where)
    verdicts = []
    for name in await tenants_to_check(conn, tenant, checkpoints):
        verdict, _ = await verify_tenant(conn, name, checkpoints, keys)
        await store.record_verification(conn, name, entries=verdict.entries,
                                        head_seq=verdict.head.seq, problem=verdict.problem)
        verdicts.append(verdict)
    return verdicts


async def checkpoint_all(conn: asyncpg.Connection, tenant: str | None, where: Places,
                         now: datetime, *, changed_only: bool = False
                         ) -> list[tuple[Verdict, dict[str, Any] | None]]:
    """Verify each chain and sign the head of those found good; the checkpoints written
    (None for a chain bad or empty, or, ``changed_only``, already signed at its head)."""
    key = files.load_or_create(where.key, now)
    checkpoints = files.read_checkpoints(where.checkpoints)
    keys = public_keys(where)
    done: list[tuple[Verdict, dict[str, Any] | None]] = []
    for name in await tenants_to_check(conn, tenant, checkpoints):
        verdict, hashes = await verify_tenant(conn, name, checkpoints, keys)
        await store.record_verification(conn, name, entries=verdict.entries,
                                        head_seq=verdict.head.seq, problem=verdict.problem)
        signed_already = any(c.get("chain") == name and c.get("head") == verdict.head.hash
                             for c in checkpoints)
        if verdict.problem is not None or not hashes or (changed_only and signed_already):
            done.append((verdict, None))
            continue
        frontier = MerkleFrontier()
        for item in hashes:
            frontier.add(bytes.fromhex(item))
        signed = sign_checkpoint(key.private, key.key_id, chain=name, head=verdict.head,
                                 root=frontier.root(), time=now).as_json()
        files.append_checkpoint(where.checkpoints, signed)
        done.append((verdict, signed))
    return done


# pg_try_advisory_lock key: one process of several signs a round of checkpoints.
_CHECKPOINT_LOCK = int.from_bytes(b"audt-ckp", "big") & 0x7FFF_FFFF_FFFF_FFFF


async def checkpoints_at_intervals(pool: asyncpg.Pool, where: Places, interval: float,
                                   stop: asyncio.Event) -> None:
    """Until ``stop`` is set: every ``interval`` seconds (the first round after one
    interval), verify every chain and sign the heads that changed since their last
    checkpoint (for ``serve``). Where several processes run it, one signs a round and the
    others skip it. A round that fails is logged and the next one tried."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
        if stop.is_set():
            return
        try:
            async with pool.acquire() as conn:
                if await conn.fetchval("SELECT pg_try_advisory_lock($1)", _CHECKPOINT_LOCK):
                    try:
                        done = await checkpoint_all(conn, None, where, datetime.now(UTC),
                                                    changed_only=True)
                    finally:
                        await conn.execute("SELECT pg_advisory_unlock($1)", _CHECKPOINT_LOCK)
                    for verdict, _ in done:
                        if verdict.problem is not None:
                            logger.error("audit trail of tenant %s is bad, not signed: %s",
                                         verdict.tenant, verdict.problem)
        except (OSError, asyncpg.PostgresError, files.CheckpointKeyError) as exc:
            logger.error("audit checkpoint round failed: %s", exc)


def _add_places(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint-key", metavar="FILE",
                        help="the ed25519 key that signs checkpoints (default beside the "
                        "data folder: <data-dir>-audit-checkpoint.key; created 0600 on first "
                        "use; FILE.pub.json holds the public keys for auditors)")
    parser.add_argument("--checkpoints", metavar="FILE",
                        help="the signed checkpoints, JSON lines (default beside the data "
                        "folder: <data-dir>-audit-checkpoints.jsonl)")


def audit_verify(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    settings = with_database(settings_of(args), err)
    where = places(settings, args)

    async def work(conn: asyncpg.Connection) -> tuple[list[Verdict], str | None]:
        return await verify_all(conn, args.tenant, where), await store.unprotected(conn)

    verdicts, unprotected = _run(settings, work)
    if unprotected:
        err.write(f"note: {unprotected}: it could disable the trail's trigger, so only the "
                  f"checkpoints show changes made through it (docs/operations.md, The audit "
                  f"trail's protection)\n")
    for verdict in verdicts:
        out.write(verdict.line() + "\n")
    if not verdicts:
        out.write("no audit entries yet\n")
    return 1 if any(v.problem for v in verdicts) else 0


def audit_checkpoint(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    settings = with_database(settings_of(args), err)
    where = places(settings, args)

    async def work(conn: asyncpg.Connection) -> list[tuple[Verdict, dict[str, Any] | None]]:
        return await checkpoint_all(conn, args.tenant, where, datetime.now(UTC))

    done = _run(settings, work)
    for verdict, signed in done:
        if signed is not None:
            out.write(f"tenant {verdict.tenant}: checkpoint of seq {signed['seq']} signed by "
                      f"{signed['key_id']}, appended to {where.checkpoints}\n")
        elif verdict.problem is not None:
            out.write(verdict.line() + "; not signed\n")
        else:
            out.write(f"tenant {verdict.tenant}: no entries; nothing to sign\n")
    return 1 if any(v.problem for v, _ in done) else 0


def _bound(text: str | None, name: str) -> int | datetime | None:
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    when = instant_of(text)
    if when is None:
        raise CommandError(f"--{name} {text!r}: give a seq (a whole number) or a time with "
                           f"its offset, e.g. 2026-12-01T00:00:00Z")
    return when


def audit_export(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    settings = with_database(settings_of(args), err)
    tenant = args.tenant or settings.tenant
    first, last = _bound(args.from_, "from"), _bound(args.to, "to")

    async def work(conn: asyncpg.Connection) -> int:
        low = first if isinstance(first, int) else 1
        high = last if isinstance(last, int) or last is None else None
        if isinstance(first, datetime):
            low = await conn.fetchval(
                "SELECT coalesce(min(seq), 0) FROM audit_log WHERE tenant_id = $1"
                " AND time >= $2", tenant, first) or 2**53
        if isinstance(last, datetime):
            high = await conn.fetchval(
                "SELECT coalesce(max(seq), 0) FROM audit_log WHERE tenant_id = $1"
                " AND time < $2", tenant, last)
        if args.checkpoints_out:
            where = places(settings, args)
            mine = [c for c in files.read_checkpoints(where.checkpoints)
                    if c.get("chain") == tenant]
            Path(args.checkpoints_out).write_text(
                "".join(json.dumps(c, sort_keys=True) + "\n" for c in mine), encoding="utf-8")
        written = 0
        async for batch in store.entries(conn, tenant, first=low, last=high):
            out.writelines(json.dumps(entry, ensure_ascii=False) + "\n" for entry in batch)
            written += len(batch)
        return written

    written = _run(settings, work)
    err.write(f"{written} entries of tenant {tenant} exported\n")
    return 0


def _run(settings: Settings, work: Any) -> Any:
    return asyncio.run(connected(settings, work))


def register(commands: Any) -> None:
    """Add ``audit verify|export|checkpoint`` to the top-level subcommand parser."""
    audit = commands.add_parser(
        "audit", help="verify, export and checkpoint the audit trail",
        description="The audit trail: one hash-chained log per tenant of every state change "
        "(docs/audit.md).")
    audit.set_defaults(help_of=audit)
    actions = audit.add_subparsers(dest="audit_command", metavar="ACTION")

    verify = actions.add_parser(
        "verify", help="check the chains against the checkpoints; exit 1 naming the first "
        "bad entry", description="Check every tenant's chain (or --tenant's) as stored, "
        "against the signed checkpoints: an entry altered, deleted, inserted or reordered "
        "in the database, or a chain rewritten since a checkpoint, is named and the exit "
        "status is 1. The result is recorded for GET /v1/audit.")
    add_database_options(verify)
    _add_places(verify)
    verify.add_argument("--tenant", help="only this tenant's chain")
    verify.set_defaults(run=audit_verify)

    export = actions.add_parser(
        "export", help="write a tenant's entries as JSON lines",
        description="Write the entries of a tenant's chain (the configured tenant unless "
        "--tenant), in seq order, one JSON object a line, on standard output; "
        "docs/audit.md has a short script that checks them against the checkpoints.")
    add_database_options(export)
    export.add_argument("--tenant", help="the tenant (default: the tenant setting)")
    export.add_argument("--from", dest="from_", metavar="SEQ_OR_TIME",
                        help="first entry: a seq, or the first entry at or after a time")
    export.add_argument("--to", metavar="SEQ_OR_TIME",
                        help="last entry: a seq, or the last entry before a time")
    _add_places(export)
    export.add_argument("--checkpoints-out", metavar="FILE",
                        help="also write the tenant's signed checkpoints to FILE, for the "
                        "check of docs/audit.md (the public keys are in the key's .pub.json)")
    export.set_defaults(run=audit_export)

    checkpoint = actions.add_parser(
        "checkpoint", help="sign each chain's head and append it to the checkpoints file",
        description="Verify each chain, then sign its head and Merkle root with the "
        "checkpoint key and append the checkpoint to the checkpoints file, both outside "
        "the database. A chain found bad is not signed (exit status 1).")
    add_database_options(checkpoint)
    _add_places(checkpoint)
    checkpoint.add_argument("--tenant", help="only this tenant's chain")
    checkpoint.set_defaults(run=audit_checkpoint)
