"""security.audit and security.audit_verify: every single tampering of a chain is found and
its first bad seq named; a chain rewritten whole is caught by an earlier checkpoint."""

from __future__ import annotations

import ast
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from security import audit_verify
from security.audit import (
    START,
    AuditValueError,
    Entry,
    Head,
    MerkleFrontier,
    actor,
    jsonable,
    new_entry,
    sign_checkpoint,
    verify,
)
from security.audit_verify import (
    GENESIS,
    Problem,
    canonical,
    entry_hash,
    merkle_root,
    verify_chain,
    verify_export,
)

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()
KEYS = {"ck-1": KEY.public_key()}

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53 - 1), 2**53 - 1) | st.text(),
    lambda inner: (st.lists(inner, max_size=4)
                   | st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)
CHANGES = st.lists(st.tuples(st.sampled_from(["invoice.updated", "allocation.accepted",
                                              "statement.imported", "keyring.rotated"]),
                             JSON, JSON),
                   min_size=2, max_size=25)


def chain(changes: list[tuple[str, Any, Any]]) -> list[dict[str, Any]]:
    head, entries = START, []
    for n, (action, before, after) in enumerate(changes):
        entry = new_entry(head, time=T0 + timedelta(seconds=n),
                          actor=actor("api_key", "a1b2c3d4e5f6", "treasury import"),
                          action=action, object={"type": "invoice", "id": str(n)},
                          before=before, after=after)
        entries.append(entry.as_json())
        head = entry.head
    return entries


def checkpoint(entries: list[dict[str, Any]], seq: int) -> dict[str, Any]:
    root = merkle_root([bytes.fromhex(e["hash"]) for e in entries[:seq]])
    head = Head(seq, entries[seq - 1]["hash"]) if seq else START
    return sign_checkpoint(KEY, "ck-1", chain="main", head=head, root=root,
                           time=T0 + timedelta(hours=seq)).as_json()


def rehashed(entry: dict[str, Any]) -> dict[str, Any]:
    return {**entry, "hash": entry_hash(entry)}


@settings(deadline=None)
@given(CHANGES)
def test_a_chain_as_written_verifies(changes: list[tuple[str, Any, Any]]) -> None:
    entries = chain(changes)
    assert verify_chain(entries) is None
    assert verify([Entry.from_json(e) for e in entries]) is None
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert entries[0]["prev"] == GENESIS
    verdict = verify_export(entries, [checkpoint(entries, len(entries))], KEYS, whole=True)
    assert (verdict.problem, verdict.checkpoints_checked) == (None, 1)


@settings(deadline=None)
@given(JSON)
def test_the_short_canonical_form_is_rfc8785(value: Any) -> None:
    assert canonical(value) == rfc8785.dumps(value)


def test_canonical_form_details() -> None:
    value: Any = {"b": [1, "中文\u2028\x7f\x01\"\\/"], "a": None, "\U0001f600": 1, "\uffff": 2,
             "é": True}
    assert canonical(value) == rfc8785.dumps(value)
    assert canonical(value).startswith(b'{"a":null,"b":[1,"')
    for bad in (1.5, 2**53, {1: 2}, b"x", "\ud800"):
        with pytest.raises((ValueError, UnicodeError)):
            canonical(bad)


@settings(deadline=None)
@given(CHANGES, st.data())
def test_any_alteration_is_named_at_its_seq(changes: list[tuple[str, Any, Any]],
                                            data: st.DataObject) -> None:
    entries = chain(changes)
    k = data.draw(st.integers(0, len(entries) - 1))
    field = data.draw(st.sampled_from(["time", "actor", "action", "object", "before",
                                       "after", "prev"]))
    changed = "f" * 64 if field == "prev" else {"was": entries[k][field]}
    entries[k] = {**entries[k], field: changed}
    assert verify_chain(entries) == Problem(k + 1, "altered",
                                            "its content does not match its hash")


@settings(deadline=None)
@given(CHANGES, st.data())
def test_an_alteration_with_its_hash_recomputed_breaks_the_next_link(
        changes: list[tuple[str, Any, Any]], data: st.DataObject) -> None:
    entries = chain(changes)
    k = data.draw(st.integers(0, len(entries) - 2))
    entries[k] = rehashed({**entries[k], "after": {"was": entries[k]["after"]}})
    problem = verify_chain(entries)
    assert problem is not None and (problem.seq, problem.kind) == (k + 2, "broken link")


@settings(deadline=None)
@given(CHANGES, st.data())
def test_any_deletion_is_named(changes: list[tuple[str, Any, Any]],
                               data: st.DataObject) -> None:
    entries = chain(changes)
    k = data.draw(st.integers(0, len(entries) - 2))
    count = data.draw(st.integers(1, len(entries) - 1 - k))
    del entries[k:k + count]
    problem = verify_chain(entries)
    assert problem is not None and (problem.seq, problem.kind) == (k + 1, "deleted")


@settings(deadline=None)
@given(CHANGES, st.data())
def test_a_deleted_tail_is_caught_by_a_checkpoint(changes: list[tuple[str, Any, Any]],
                                                  data: st.DataObject) -> None:
    entries = chain(changes)
    signed = checkpoint(entries, len(entries))
    cut = data.draw(st.integers(1, len(entries) - 1))
    kept = entries[:cut]
    assert verify_chain(kept) is None  # the chain alone cannot tell
    problem = verify_export(kept, [signed], KEYS, whole=True).problem
    assert problem is not None and (problem.seq, problem.kind) == (cut + 1, "deleted")


@settings(deadline=None)
@given(CHANGES, st.data())
def test_any_insertion_is_named(changes: list[tuple[str, Any, Any]],
                                data: st.DataObject) -> None:
    """A forged entry as the writer would make it (seq, link and hash all right), placed
    beside the real entry of its seq."""
    entries = chain(changes)
    k = data.draw(st.integers(0, len(entries) - 1))
    forged = rehashed({**entries[k], "action": "allocation.accepted",
                       "after": {"forged": True}, "actor": actor("user", "mallory")})
    place = k + data.draw(st.integers(0, 1))
    entries.insert(place, forged)
    problem = verify_chain(entries)
    assert problem is not None and (problem.seq, problem.kind) == (k + 1, "inserted")


@settings(deadline=None)
@given(CHANGES, st.data())
def test_any_reordering_is_named_at_the_first_entry_out_of_place(
        changes: list[tuple[str, Any, Any]], data: st.DataObject) -> None:
    entries = chain(changes)
    i = data.draw(st.integers(0, len(entries) - 1))
    j = data.draw(st.integers(0, len(entries) - 1).filter(lambda j: j != i))
    entries.insert(j, entries.pop(i))
    first = next(e for n, e in enumerate(entries) if e["seq"] != n + 1)
    problem = verify_chain(entries)
    assert problem is not None and (problem.seq, problem.kind) == (first["seq"], "reordered")


@settings(deadline=None)
@given(CHANGES, st.data())
def test_a_chain_rewritten_whole_is_caught_by_an_earlier_checkpoint(
        changes: list[tuple[str, Any, Any]], data: st.DataObject) -> None:
    entries = chain(changes)
    at = data.draw(st.integers(1, len(entries)))
    signed = [checkpoint(entries, at)]
    k = data.draw(st.integers(0, at - 1))  # the first entry rewritten, covered by it
    rewritten = list(entries)
    rewritten[k] = {**rewritten[k], "after": {"rewritten": True}}
    for n in range(k, len(rewritten)):
        prev = rewritten[n - 1]["hash"] if n else GENESIS
        rewritten[n] = rehashed({**rewritten[n], "prev": prev})
    assert verify_chain(rewritten) is None  # consistent in itself
    problem = verify_export(rewritten, signed, KEYS).problem
    assert problem is not None and (problem.seq, problem.kind) == (at, "rewritten")
    # a window that starts after seq 1 still meets the checkpoint's head
    if k > 0 and at > k:
        window = verify_export(rewritten[k:], signed, KEYS).problem
        assert window is not None and window.kind == "rewritten"


def test_the_rewrite_is_placed_between_the_last_good_checkpoint_and_the_first_bad() -> None:
    entries = chain([("invoice.updated", n, n + 1) for n in range(10)])
    signed = [checkpoint(entries, 3), checkpoint(entries, 6), checkpoint(entries, 9)]
    rewritten = entries[:4] + [rehashed({**e, "after": "x"}) for e in entries[4:]]
    for n in range(4, 10):
        rewritten[n] = rehashed({**rewritten[n], "prev": rewritten[n - 1]["hash"]})
    verdict = verify_export(rewritten, signed, KEYS)
    assert verdict.problem == Problem(
        6, "rewritten", f"the checkpoint of {signed[1]['time']} (seq 6) signed another chain: "
                        "entries after seq 3 up to seq 6 were rewritten")
    assert verdict.checkpoints_checked == 1


def test_forged_or_unknown_checkpoints_are_refused() -> None:
    entries = chain([("invoice.updated", 1, 2)] * 4)
    good = checkpoint(entries, 4)
    other = Ed25519PrivateKey.generate()
    forged = sign_checkpoint(other, "ck-1", chain="main", head=Head(4, entries[3]["hash"]),
                             root=bytes(32), time=T0).as_json()
    for bad, words in [({**good, "seq": 3}, "does not verify"),
                       ({**good, "signature": "!!"}, "does not verify"),
                       (forged, "does not verify"),
                       ({**good, "key_id": "ck-9"}, "'ck-9', which is not one of the keys"),
                       ({**good, "extra": 1}, "not a checkpoint")]:
        problem = verify_export(entries, [good, bad], KEYS).problem
        assert problem is not None and problem.kind == "forged checkpoint"
        assert words in problem.detail


def test_an_export_window_is_linked_to_the_checkpoint_before_it() -> None:
    entries = chain([("invoice.updated", n, n + 1) for n in range(8)])
    signed = [checkpoint(entries, 4), checkpoint(entries, 8)]
    verdict = verify_export(entries[4:], signed, KEYS)
    assert (verdict.problem, verdict.checkpoints_checked, verdict.checkpoints_outside) == (
        None, 1, 1)
    relinked = [rehashed({**entries[4], "prev": "1" * 64}), *entries[5:]]
    problem = verify_export(relinked, signed, KEYS).problem
    assert problem is not None and (problem.seq, problem.kind) == (5, "broken link")
    # without a checkpoint just before it, a window is taken from its first entry
    assert verify_export(entries[5:7], signed, KEYS).problem is None


def test_malformed_entries_say_what_is_missing() -> None:
    entries = chain([("invoice.updated", 1, 2)] * 3)
    cases = [({k: v for k, v in entries[1].items() if k != "actor"}, "missing ['actor']"),
             ({**entries[1], "v": 2}, "unknown entry version 2"),
             ({**entries[1], "v": True}, "unknown entry version True"),
             ({**entries[1], "seq": "2"}, "seq must be a positive integer"),
             ({**entries[1], "hash": entries[1]["hash"].upper()}, "64 lower-case hex"),
             ({**entries[1], "after": 1.5}, "float is not allowed")]
    for bad, words in cases:
        problem = verify_chain([entries[0], bad, entries[2]])
        assert problem is not None and problem.kind == "malformed", problem
        assert words in problem.detail


@settings(deadline=None)
@given(st.lists(st.binary(min_size=32, max_size=32), max_size=70))
def test_the_frontier_keeps_the_rfc6962_root(leaves: list[bytes]) -> None:
    frontier = MerkleFrontier()
    assert frontier.root() == merkle_root([])
    for n, leaf in enumerate(leaves, 1):
        frontier.add(leaf)
        assert frontier.root() == merkle_root(leaves[:n])


def test_merkle_roots_match_the_certificate_transparency_reference() -> None:
    """The test vectors of RFC 6962's reference implementation (tree sizes 0 to 8)."""
    leaves = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43",
              bytes(range(0x50, 0x58)), bytes(range(0x60, 0x70))]
    roots = ["e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
             "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
             "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
             "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
             "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
             "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
             "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
             "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"]
    for size, root in enumerate(roots):
        assert merkle_root(leaves[:size]).hex() == root


def test_values_become_json_or_are_refused_saying_where() -> None:
    assert jsonable({"amount": Decimal("12.30"), "due": date(2026, 12, 31),
                     "at": T0, "ids": (1, 2)}) == {
        "amount": "12.30", "due": "2026-12-31", "at": "2026-12-02T12:00:00.000000Z",
        "ids": [1, 2]}
    for bad, words in [({"amount": 1.5}, "after.amount: a float .*Decimal"),
                       ({"n": 2**60}, "after.n: integer beyond"),
                       ({"raw": b"x"}, "after.raw: a bytes"),
                       ({"at": datetime(2026, 1, 1)}, "aware"),
                       ({1: "x"}, "keys must be text"),
                       ({"s": "\udc80"}, "after.s: text that is not valid Unicode"),
                       ({"\ud800": 1}, "after \\(a key\\): text that is not valid")]:
        with pytest.raises(AuditValueError, match=words):
            new_entry(START, time=T0, actor=actor("system", "worker"), action="x",
                      object={"type": "t", "id": "1"}, after=bad)
    with pytest.raises(AuditValueError, match="actor kind"):
        actor("robot", "r2")
    for action in ("x\udc80", 5, ""):
        with pytest.raises(AuditValueError, match="action"):
            new_entry(START, time=T0, actor=actor("system", "worker"),
                      action=action,  # type: ignore[arg-type]
                      object={"type": "t", "id": "1"})


def test_the_verifier_imports_only_the_standard_library_and_cryptography() -> None:
    source = Path(audit_verify.__file__).read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            assert top in sys.stdlib_module_names or top in ("cryptography", "__future__"), name


def test_a_huge_gap_is_named_at_once_and_a_whole_export_must_start_at_seq_one() -> None:
    entries = chain([("invoice.updated", n, n + 1) for n in range(4)])
    far = rehashed({**entries[2], "seq": 2**52})
    assert verify_chain([*entries[:2], far]) == Problem(
        3, "deleted", f"seqs 3 to {2**52 - 1} missing before seq {2**52}")
    problem = verify_export(entries[2:], [], KEYS, whole=True).problem
    assert problem == Problem(1, "deleted", "seqs 1 to 2 missing before seq 3")
    assert verify_export(entries[2:], [], KEYS).problem is None  # a window, taken as it is
