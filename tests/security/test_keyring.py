"""security.keyring (the form) and security.keyring_file (the file): what is refused, and
that no refusal shows key material."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from security import keyring_file
from security.keyring import (
    Keyring,
    KeyringError,
    MasterKey,
    dumps,
    loads,
    new_keyring,
    retire,
    rotate,
)

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def _materials(ring: Keyring) -> list[str]:
    return [base64.b64encode(k.key).decode() for k in ring.keys if k.key is not None]


def test_a_keyring_reads_back_as_written_through_rotation_and_retirement() -> None:
    ring = new_keyring(NOW)
    rotated = rotate(ring, NOW.replace(hour=13))
    assert rotated.primary != ring.primary
    assert [k.state for k in rotated.keys] == ["active", "active"]
    assert rotated.material(ring.primary) == ring.primary_key.key
    retired = retire(rotated, ring.primary, NOW.replace(hour=14), wrapping=[rotated.primary])
    old = retired.get(ring.primary)
    assert (old.state, old.key, old.retired_at) == ("retired", None, NOW.replace(hour=14))
    assert retired.material(ring.primary) is None
    for each in (ring, rotated, retired):
        assert loads(dumps(each), source="k") == each
    document = json.loads(dumps(retired))
    assert (document["format"], document["version"]) == ("recon-gateway keyring", 1)
    assert document["keys"][0]["key"] is None


def test_retiring_refuses_the_primary_and_a_key_that_still_wraps() -> None:
    ring = rotate(new_keyring(NOW), NOW)
    old = ring.keys[0].id
    with pytest.raises(KeyringError, match="primary"):
        retire(ring, ring.primary, NOW, wrapping=[])
    with pytest.raises(KeyringError, match="still wraps 2 data key"):
        retire(ring, old, NOW, wrapping=[old, ring.primary, old])
    with pytest.raises(KeyringError, match="no key"):
        retire(ring, "mk-nope", NOW, wrapping=[])


def test_key_material_never_shows_in_repr() -> None:
    ring = new_keyring(NOW)
    (material,) = _materials(ring)
    assert material not in repr(ring)
    assert repr(ring.primary_key.key) not in repr(ring)
    assert repr(ring.primary_key) == f"MasterKey(id={ring.primary!r}, state='active')"


def _document(ring: Keyring) -> dict[str, object]:
    result: dict[str, object] = json.loads(dumps(ring))
    return result


@pytest.mark.parametrize(("change", "words"), [
    (lambda d: d.update(version=2), "unknown version 2: this program reads version 1"),
    (lambda d: d.pop("version"), "unknown version \\(not a number\\)"),
    (lambda d: d.update(version=d["keys"][0]["key"]), "unknown version \\(not a number\\)"),
    (lambda d: d.update(format="other"), "not a keyring"),
    (lambda d: d.update(primary="mk-x"), "primary 'mk-x' is not one of the keys"),
    (lambda d: d.update(keys=[]), "non-empty list"),
    (lambda d: d["keys"][0].update(state="on"), "key 1 .*\"state\" must be one of"),
    (lambda d: d["keys"][0].update(key="AAAA"), "key 1 .*must be 32 bytes, not 3"),
    (lambda d: d["keys"][0].update(key="not base64!"), "key 1 .*not valid base64"),
    (lambda d: d["keys"][0].update(key=None), "active key .* must have 32 bytes"),
    (lambda d: d["keys"][0].update(created_at="yesterday"), "times must read like"),
    (lambda d: d["keys"][0].update(id="MK 1"), "a key id must be 1-64 characters"),
    (lambda d: d["keys"][0].update(id=d["keys"][0]["key"]), "a key id must be"),
    (lambda d: d.update(primary=d["keys"][0]["key"]), "primary \\(not a key id\\)"),
    (lambda d: d["keys"].append(dict(d["keys"][0])), "two keys share an id"),
    (lambda d: d["keys"][0].update(state="retired"), "retired key .* must not keep"),
])
def test_a_malformed_keyring_says_what_is_wrong_and_shows_no_key(change: object,
                                                                 words: str) -> None:
    ring = new_keyring(NOW)
    document = _document(ring)
    change(document)  # type: ignore[operator]
    with pytest.raises(KeyringError, match=words) as caught:
        loads(json.dumps(document).encode(), source="data/keyring")
    assert str(caught.value).startswith("keyring data/keyring: ")
    for material in _materials(ring):
        assert material not in str(caught.value)


def test_a_truncated_or_empty_keyring_is_refused_without_echoing_it() -> None:
    ring = new_keyring(NOW)
    data = dumps(ring)
    (material,) = _materials(ring)
    for cut in range(0, len(data) - 2, 7):
        with pytest.raises(KeyringError) as caught:
            loads(data[:cut], source="kr")
        assert material not in str(caught.value)
        assert material[:8] not in str(caught.value)
    with pytest.raises(KeyringError, match="empty"):
        loads(b"", source="kr")
    with pytest.raises(KeyringError, match="UTF-8"):
        loads(b"\xff\xfe{", source="kr")


def test_created_with_mode_0600_whatever_the_umask_and_never_over_another(
        tmp_path: Path) -> None:
    path = tmp_path / "keyring"
    ring = new_keyring(NOW)
    old_umask = os.umask(0)
    try:
        keyring_file.create(path, ring)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keyring_file.read(path) == ring
    with pytest.raises(FileExistsError):
        keyring_file.create(path, new_keyring(NOW))
    assert keyring_file.read(path) == ring
    rotated = rotate(ring, NOW)
    keyring_file.replace(path, rotated)
    assert keyring_file.read(path) == rotated
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keyring"]  # no temporary left


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o602, 0o644, 0o660])
def test_a_keyring_group_or_others_may_use_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "keyring"
    keyring_file.create(path, new_keyring(NOW))
    path.chmod(mode)
    with pytest.raises(KeyringError, match=f"mode {mode:04o}.*chmod 600") as caught:
        keyring_file.read(path)
    assert str(path) in str(caught.value)


def test_missing_damaged_or_odd_files_are_refused_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(KeyringError, match="no such file") as caught:
        keyring_file.read(tmp_path / "absent")
    assert str(tmp_path / "absent") in str(caught.value)
    path = tmp_path / "keyring"
    keyring_file.create(path, new_keyring(NOW))
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(KeyringError, match=f"keyring {path}: not valid JSON"):
        keyring_file.read(path)
    link = tmp_path / "link"
    link.symlink_to(path)
    with pytest.raises(KeyringError, match=f"keyring {link}: not valid JSON"):
        keyring_file.read(link)  # a link is followed, its file checked
    path.chmod(0o644)
    with pytest.raises(KeyringError, match="mode 0644"):
        keyring_file.read(link)
    path.chmod(0o000)
    if os.geteuid() != 0:  # root opens it all the same
        with pytest.raises(KeyringError, match="cannot be opened: Permission denied"):
            keyring_file.read(path)
    with pytest.raises(KeyringError, match="not a regular file"):
        (tmp_path / "folder").mkdir(mode=0o700)
        keyring_file.read(tmp_path / "folder")


def test_a_fifo_in_the_keyrings_place_is_refused_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "keyring"
    os.mkfifo(fifo, 0o600)
    found: list[BaseException | Keyring] = []

    def read() -> None:
        try:
            found.append(keyring_file.read(fifo))
        except BaseException as exc:  # handed to the test's thread
            found.append(exc)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(timeout=30)
    if thread.is_alive():  # blocked opening the FIFO: give it a writer so it ends
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(timeout=30)
        pytest.fail("reading a FIFO waited for a writer")
    (error,) = found
    assert isinstance(error, KeyringError) and "is not a regular file" in str(error)


def test_replacing_through_a_link_writes_the_file_it_leads_to(tmp_path: Path) -> None:
    """A rotation through a link must not leave the provisioned keyring (the link's target)
    with the old keys while the link becomes a file of its own."""
    (tmp_path / "secrets").mkdir()
    target, link = tmp_path / "secrets" / "keyring", tmp_path / "keyring"
    ring = new_keyring(NOW)
    keyring_file.create(target, ring)
    link.symlink_to(target)
    rotated = rotate(ring, NOW)
    keyring_file.replace(link, rotated)
    assert link.is_symlink()
    assert keyring_file.read(target) == keyring_file.read(link) == rotated
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keyring", "secrets"]
    assert [p.name for p in (tmp_path / "secrets").iterdir()] == ["keyring"]


def test_a_reader_sees_the_old_keyring_or_the_new_never_a_part(tmp_path: Path) -> None:
    path = tmp_path / "keyring"
    ring = new_keyring(NOW)
    keyring_file.create(path, ring)
    rings = [ring]
    for _ in range(30):
        rings.append(rotate(rings[-1], NOW))
    stop, reading = threading.Event(), threading.Event()
    seen: list[Keyring | Exception] = []

    def reader() -> None:
        while True:  # at least one read after the last write, however the threads run
            done = stop.is_set()
            try:
                seen.append(keyring_file.read(path))
            except KeyringError as exc:
                seen.append(exc)
            reading.set()
            if done:
                return

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        assert reading.wait(timeout=60), "the reader never read"
        for each in rings[1:]:
            keyring_file.replace(path, each)
    finally:
        stop.set()
        thread.join()
    assert len(seen) >= 2 and seen[-1] == rings[-1]
    assert all(isinstance(s, Keyring) and s in rings for s in seen), [
        s for s in seen if not isinstance(s, Keyring)]


def test_a_keyring_in_memory_checks_itself() -> None:
    key = MasterKey(id="mk-a", created_at=NOW, state="active", key=b"\x00" * 31)
    with pytest.raises(KeyringError, match="32 bytes"):
        Keyring(primary="mk-a", keys=(key,))


def test_the_store_sketch_in_docs_security_runs() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text(
        encoding="utf-8")
    (sketch,) = re.findall(r"^```python\n(.*?)^```", doc, re.MULTILINE | re.DOTALL)
    exec(compile(sketch, "docs/security.md", "exec"), {})  # noqa: S102 - our own page


RING = rotate(new_keyring(NOW), NOW)


@settings(deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2000), st.binary(max_size=3)), min_size=1,
                max_size=4),
       st.integers(0, 2000))
def test_a_damaged_keyring_never_shows_its_key_material(edits: list[tuple[int, bytes]],
                                                         cut: int) -> None:
    """Whatever bytes are changed or cut, loading gives a keyring or a KeyringError, and no
    message holds a piece of a key (base64, hex or raw)."""
    data = bytearray(dumps(RING))
    for at, new in edits:
        data[at % len(data):at % len(data) + len(new)] = new
    data = data[:max(1, len(data) - cut % len(data))]
    try:
        loads(bytes(data), source="kr")
    except KeyringError as exc:
        message = str(exc)
        for key in RING.keys:
            assert key.key is not None
            text = base64.b64encode(key.key).decode()
            pieces = [text[i:i + 8] for i in range(0, len(text) - 8, 4)]
            pieces += [key.key.hex()[:16], repr(key.key)[2:14]]
            assert not any(piece in message for piece in pieces), message
