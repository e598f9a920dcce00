"""The independent check of docs/audit.md, run as an auditor would: the script copied out of
the page, beside a copy of security/audit_verify.py, in a folder of their own."""

from __future__ import annotations

import ast
import base64
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from security import audit_verify, keyring
from security.audit import START, Head, actor, new_entry, sign_checkpoint
from security.audit_verify import entry_hash, merkle_root

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "audit.md").read_text(encoding="utf-8")
T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"^ *```{kind}\n(.*?)^ *```", DOC, re.MULTILINE | re.DOTALL)


def _export() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    head, entries = START, []
    for n in range(4):
        entry = new_entry(head, time=T0 + timedelta(minutes=n),
                          actor=actor("user", "compliance.lead"), action="invoice.updated",
                          object={"type": "invoice", "id": f"INV-{n}"},
                          before={"status": "open"}, after={"status": "paid", "note": "已付"})
        entries.append(entry.as_json())
        head = entry.head
    checkpoints = []
    for seq in (2, 4):
        root = merkle_root([bytes.fromhex(e["hash"]) for e in entries[:seq]])
        checkpoints.append(sign_checkpoint(
            KEY, "ck-2026-12", chain="main", head=Head(seq, entries[seq - 1]["hash"]),
            root=root, time=T0 + timedelta(hours=seq)).as_json())
    return entries, checkpoints


@pytest.fixture
def auditor(tmp_path: Path) -> Path:
    (script,) = [b for b in _blocks("python") if b.startswith("# verify_audit.py")]
    (tmp_path / "verify_audit.py").write_text(script, encoding="utf-8")
    shutil.copy(audit_verify.__file__, tmp_path / "audit_verify.py")
    public = KEY.public_key().public_bytes(serialization.Encoding.Raw,
                                           serialization.PublicFormat.Raw)
    (tmp_path / "keys.json").write_text(
        json.dumps({"ck-2026-12": base64.b64encode(public).decode()}), encoding="utf-8")
    return tmp_path


def _run(folder: Path, entries: list[dict[str, Any]],
         checkpoints: list[dict[str, Any]]) -> tuple[int, str]:
    for name, rows in (("audit.jsonl", entries), ("checkpoints.jsonl", checkpoints)):
        (folder / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n"
                                           for r in rows), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    done = subprocess.run(
        [sys.executable, "verify_audit.py", "audit.jsonl", "checkpoints.jsonl", "keys.json",
         "--whole"], cwd=folder, env=env, capture_output=True, text=True, timeout=120,
        check=False)
    assert not done.stderr, done.stderr
    return done.returncode, done.stdout


def _shown_outputs() -> list[str]:
    return [block.split("\n", 1)[1] for block in _blocks("text")
            if block.startswith("$ python verify_audit.py")]


def test_the_script_prints_what_the_page_shows(auditor: Path) -> None:
    entries, checkpoints = _export()
    shown_ok, shown_rewritten = _shown_outputs()
    assert _run(auditor, entries, checkpoints) == (0, shown_ok)
    rewritten = [dict(e) for e in entries]
    rewritten[2]["after"] = {"status": "open"}
    for n in (2, 3):
        rewritten[n]["prev"] = rewritten[n - 1]["hash"]
        rewritten[n]["hash"] = entry_hash(rewritten[n])
    assert _run(auditor, rewritten, checkpoints) == (1, shown_rewritten)


def test_the_script_catches_every_kind_of_tampering(auditor: Path) -> None:
    entries, checkpoints = _export()
    altered = [dict(e) for e in entries]
    altered[2]["actor"] = actor("user", "someone.else")
    relinked = [dict(e) for e in entries]
    relinked[1]["after"] = {"status": "void"}
    relinked[1]["hash"] = entry_hash(relinked[1])
    forged = {**checkpoints[1], "seq": 3}
    cases = [
        (altered, checkpoints, "BAD seq 3: altered"),
        (relinked, checkpoints, "BAD seq 3: broken link"),
        ([entries[0], entries[1], entries[3]], checkpoints, "BAD seq 3: deleted"),
        (entries[:3], checkpoints, "BAD seq 4: deleted"),
        ([entries[0], entries[2], entries[1], entries[3]], checkpoints, "BAD seq 3: reordered"),
        ([*entries[:3], {**entries[2], "hash": entries[2]["hash"]}, entries[3]], checkpoints,
         "BAD seq 3: inserted"),
        (entries, [checkpoints[0], forged], "BAD seq 3: forged checkpoint"),
    ]
    for rows, signed, words in cases:
        code, out = _run(auditor, rows, signed)
        assert code == 1 and words in out, (words, out)


def test_the_script_imports_nothing_of_ours() -> None:
    (script,) = [b for b in _blocks("python") if b.startswith("# verify_audit.py")]
    for node in ast.walk(ast.parse(script)):
        if isinstance(node, ast.ImportFrom) and node.module:
            assert node.module in ("audit_verify", "cryptography.hazmat.primitives."
                                   "asymmetric.ed25519"), node.module
        elif isinstance(node, ast.Import):
            assert all(a.name in sys.stdlib_module_names for a in node.names)


def test_the_pages_examples_are_real() -> None:
    """The entry, checkpoint and key shown in docs/audit.md verify; the keyring shown in
    docs/security.md loads once a key stands in for its placeholder."""
    examples = [json.loads(b) for b in _blocks("json")]
    (entry,) = [e for e in examples if "action" in e]
    (signed,) = [e for e in examples if "signature" in e]
    (keys,) = [e for e in examples if set(e) == {"ck-2026-12"}]
    assert audit_verify.verify_chain([entry]) is None
    public = {k: Ed25519PublicKey.from_public_bytes(base64.b64decode(v))
              for k, v in keys.items()}
    assert audit_verify.checkpoint_signed(signed, public) is None
    verdict = audit_verify.verify_export([entry], [signed], public, whole=True)
    assert (verdict.problem, verdict.checkpoints_checked) == (None, 1)

    security_doc = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    (ring_text,) = [b for b in re.findall(r"^```json\n(.*?)^```", security_doc,
                                          re.MULTILINE | re.DOTALL) if "keyring" in b]
    key = base64.b64encode(bytes(32)).decode()
    ring = keyring.loads(ring_text.replace("<32 random bytes, standard base64>", key).encode(),
                         source="docs/security.md")
    assert ring.primary_key.created_at == datetime(2026, 12, 2, 13, 0, tzinfo=UTC)
    assert [k.state for k in ring.keys] == ["retired", "active"]
