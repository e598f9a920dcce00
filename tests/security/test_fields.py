"""security.envelope and security.fields: wrapped data keys, field ciphertexts bound to their
place, re-wrapping under a new master key."""

from __future__ import annotations

import re
import struct
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from security.envelope import (
    ENCRYPTION_BUDGET,
    DataKey,
    UnwrapError,
    WrappedKey,
    due_for_replacement,
    new_data_key,
    rewrap,
    scope,
    unwrap,
    wrap,
    wrapping,
)
from security.fields import OVERHEAD, Column, FieldCipher, FieldError, Row, key_id_of
from security.keyring import new_keyring, retire, rotate

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
RING = new_keyring(NOW)
KEY = new_data_key(7, "t1/statement_lines")
CIPHER = FieldCipher([KEY])
NAME = Column("statement_lines", "counterparty_name")
IBAN = Column("statement_lines", "counterparty_iban")
VALUES = st.one_of(st.text(), st.binary())
PARTS = st.one_of(st.integers(min_value=0, max_value=2**63), st.text(max_size=20))
ROWS = st.one_of(PARTS, st.tuples(st.text(max_size=8), PARTS),
                 st.tuples(st.text(max_size=8), PARTS, PARTS))


def _same_row(a: Row, b: Row) -> bool:
    def parts(row: Row) -> tuple[str, ...]:
        return tuple(str(p) for p in (row if isinstance(row, tuple) else (row,)))
    return parts(a) == parts(b)


def _read(cipher: FieldCipher, blob: bytes | None, column: Column,
          row: Row, like: str | bytes | None) -> str | bytes | None:
    if isinstance(like, str):
        return cipher.decrypt_text(blob, column, row)
    return cipher.decrypt_bytes(blob, column, row)


@settings(deadline=None)
@given(VALUES, ROWS)
def test_any_text_or_bytes_reads_back_as_it_was_written(value: str | bytes,
                                                        row: Row) -> None:
    blob = CIPHER.encrypt(value, NAME, row, key_id=KEY.id)
    assert blob is not None
    assert len(blob) == len(value.encode() if isinstance(value, str) else value) + OVERHEAD
    assert key_id_of(blob) == KEY.id
    assert _read(CIPHER, blob, NAME, row, value) == value


def test_chinese_text_none_and_the_layout() -> None:
    text = "上海浦东发展银行 付款 发票4711"
    blob = CIPHER.encrypt(text, NAME, 1, key_id=KEY.id)
    assert blob is not None
    assert blob[:6] == struct.pack(">BBI", 1, 1, 7)
    assert text.encode() not in blob
    assert CIPHER.decrypt_text(blob, NAME, 1) == text
    assert CIPHER.encrypt(None, NAME, 1, key_id=KEY.id) is None
    assert CIPHER.decrypt_text(None, NAME, 1) is None
    assert CIPHER.encrypt(text, NAME, 1, key_id=KEY.id) != blob  # a fresh nonce each time


@settings(deadline=None)
@given(VALUES, ROWS, ROWS)
def test_a_ciphertext_moved_to_another_row_never_decrypts(value: str | bytes, row: Row,
                                                          other: Row) -> None:
    blob = CIPHER.encrypt(value, NAME, row, key_id=KEY.id)
    if _same_row(row, other):
        return
    where = re.escape(f"statement_lines.counterparty_name row {other}: does not decrypt")
    with pytest.raises(FieldError, match=where):
        _read(CIPHER, blob, NAME, other, value)


@settings(deadline=None)
@given(VALUES, ROWS, st.sampled_from([IBAN, Column("customers", "counterparty_name"),
                                      Column("statement_lines", "remittance")]))
def test_a_ciphertext_moved_to_another_column_never_decrypts(value: str | bytes,
                                                             row: Row,
                                                             other: Column) -> None:
    blob = CIPHER.encrypt(value, NAME, row, key_id=KEY.id)
    with pytest.raises(FieldError, match="does not decrypt"):
        _read(CIPHER, blob, other, row, value)


def test_the_identity_parts_cannot_be_shifted_into_each_other() -> None:
    blob = CIPHER.encrypt("x", Column("ab", "c"), "d", key_id=KEY.id)
    for table, column, row in [("a", "bc", "d"), ("ab", "", "cd"), ("abc", "", "d")]:
        with pytest.raises(FieldError):
            CIPHER.decrypt_text(blob, Column(table, column), row)
    blob = CIPHER.encrypt("x", NAME, ("t1", 42), key_id=KEY.id)
    assert CIPHER.decrypt_text(blob, NAME, ("t1", "42")) == "x"  # integers in decimal
    others: list[Row] = [("t2", 42), ("t1/42",), "t1/42", ("t1", 42, 0), ("t1", "4", "2")]
    for other in others:
        with pytest.raises(FieldError, match="does not decrypt"):
            CIPHER.decrypt_text(blob, NAME, other)
    with pytest.raises(FieldError, match="1 to 255 parts"):
        CIPHER.encrypt("x", NAME, (), key_id=KEY.id)
    with pytest.raises(FieldError, match="longer than 65535 bytes"):
        CIPHER.encrypt("x", NAME, ("t1", "x" * 65536), key_id=KEY.id)
    with pytest.raises(FieldError, match="longer than 65535 bytes"):
        CIPHER.encrypt("x", Column("t" * 65536, "c"), 1, key_id=KEY.id)


def test_damaged_or_relabelled_ciphertexts_say_what_is_wrong() -> None:
    blob = CIPHER.encrypt("x", NAME, 5, key_id=KEY.id)
    assert blob is not None
    cases = [
        (blob[:20], "too short"),
        (b"\x02" + blob[1:], "unknown ciphertext version 2"),
        (blob[:1] + b"\x00" + blob[2:], "does not decrypt"),  # read as bytes below
        (blob[:2] + struct.pack(">I", 8) + blob[6:], "data key 8, which is not loaded"),
        (blob[:-1] + bytes([blob[-1] ^ 1]), "does not decrypt"),
        (blob[:20] + bytes([blob[20] ^ 1]) + blob[21:], "does not decrypt"),
    ]
    for damaged, words in cases:
        with pytest.raises(FieldError, match=words):
            if damaged[1] == 0:
                CIPHER.decrypt_bytes(damaged, NAME, 5)
            else:
                CIPHER.decrypt_text(damaged, NAME, 5)
    with pytest.raises(FieldError, match="holds text, read as bytes"):
        CIPHER.decrypt_bytes(blob, NAME, 5)
    with pytest.raises(FieldError, match="no data key 9"):
        CIPHER.encrypt("x", NAME, 5, key_id=9)
    with pytest.raises(FieldError, match="counterparty_name row 5: text that is not valid"):
        CIPHER.encrypt("M\udcfcller", NAME, 5, key_id=KEY.id)


def test_the_newest_data_key_of_a_scope_takes_the_writes_and_old_ones_still_read() -> None:
    cipher = FieldCipher([new_data_key(3, "t1/lines"), new_data_key(2, "t2/lines")])
    assert (cipher.current("t1/lines"), cipher.current("t2/lines")) == (3, 2)
    old = cipher.encrypt(b"old", NAME, 1, key_id=3)
    cipher.add(new_data_key(10, "t1/lines"))
    assert cipher.current("t1/lines") == 10
    assert cipher.decrypt_bytes(old, NAME, 1) == b"old"
    with pytest.raises(FieldError, match="no data key for scope 't3/lines'"):
        cipher.current("t3/lines")


def test_a_wrapped_key_unwraps_to_itself_and_shows_nothing_of_it() -> None:
    stored = wrap(KEY, RING)
    assert (stored.id, stored.scope, stored.master_key_id) == (7, KEY.scope, RING.primary)
    assert len(stored.wrapped) == 60
    assert KEY.secret not in stored.wrapped
    assert unwrap(stored, RING) == KEY
    assert KEY.secret.hex() not in repr(KEY) and str(KEY.secret) not in repr(KEY)


@pytest.mark.parametrize(("change", "words"), [
    (lambda w: replace(w, id=8), "does not unwrap"),
    (lambda w: replace(w, scope="t2/statement_lines"), "does not unwrap"),
    (lambda w: replace(w, wrapped=w.wrapped[:-1] + bytes([w.wrapped[-1] ^ 1])),
     "does not unwrap"),
    (lambda w: replace(w, wrapped=w.wrapped[:59]), "has 59 bytes"),
    (lambda w: replace(w, master_key_id="mk-other"), "does not hold"),
])
def test_a_relabelled_or_damaged_wrapped_key_does_not_unwrap(change: object,
                                                             words: str) -> None:
    changed: WrappedKey = change(wrap(KEY, RING))  # type: ignore[operator]
    with pytest.raises(UnwrapError, match=words):
        unwrap(changed, RING)


def test_another_keyring_cannot_unwrap() -> None:
    other = new_keyring(NOW)
    forged = replace(wrap(KEY, RING), master_key_id=other.primary)
    with pytest.raises(UnwrapError, match="does not unwrap"):
        unwrap(forged, other)


@settings(deadline=None)
@given(st.lists(st.tuples(VALUES, ROWS), min_size=1, max_size=20),
       st.integers(min_value=1, max_value=4))
def test_rewrapping_keeps_every_field_readable_and_frees_the_old_master(
        fields: list[tuple[str | bytes, Row]], rotations: int) -> None:
    ring = RING
    keys = [new_data_key(n, f"t{n % 2}/lines") for n in (1, 2, 3)]
    stored = [wrap(k, ring) for k in keys]
    writer = FieldCipher(keys)
    blobs = [writer.encrypt(v, NAME, r, key_id=keys[n % 3].id)
             for n, (v, r) in enumerate(fields)]
    for _ in range(rotations):
        old = ring.primary
        ring = rotate(ring, NOW)
        stored = [rewrap(s, ring) for s in stored]
        assert {s.master_key_id for s in stored} == {ring.primary}
        ring = retire(ring, old, NOW, wrapping=[s.master_key_id for s in stored])
        assert ring.material(old) is None
    reader = FieldCipher(unwrap(s, ring) for s in stored)
    for (value, row), blob in zip(fields, blobs, strict=True):
        assert _read(reader, blob, NAME, row, value) == value


def test_a_data_key_wrapped_by_a_retired_master_says_so() -> None:
    ring = rotate(RING, NOW)
    stored = wrap(KEY, RING)  # under the old primary
    assert rewrap(rewrap(stored, ring), ring).master_key_id == ring.primary
    retired = retire(ring, RING.primary, NOW, wrapping=[])  # told wrongly that none wraps
    with pytest.raises(UnwrapError, match="which is retired"):
        unwrap(stored, retired)


def test_field_ciphertexts_are_plain_aes_gcm_an_outsider_can_open() -> None:
    """The documented layout, read with nothing of ours."""
    blob = CIPHER.encrypt("Zahlung 4711", NAME, 42, key_id=KEY.id)
    assert blob is not None
    header, nonce, sealed = blob[:6], blob[6:18], blob[18:]

    def part(text: str) -> bytes:
        return len(text.encode()).to_bytes(2, "big") + text.encode()

    associated = (header + part("statement_lines") + part("counterparty_name")
                  + b"\x01" + part("42"))
    assert AESGCM(KEY.secret).decrypt(nonce, sealed, associated) == b"Zahlung 4711"


def test_data_key_ids_fit_four_bytes() -> None:
    for bad in (0, 2**32):
        with pytest.raises(ValueError, match="data key id"):
            new_data_key(bad, "s")
    assert new_data_key(2**32 - 1, "s").id == 2**32 - 1
    assert isinstance(KEY, DataKey)


def test_scopes_replacement_and_what_each_master_key_wraps() -> None:
    assert scope("t1", "transactions") == "t1/transactions"
    assert scope("t/1", "blind-index") == "t/1/blind-index"
    for tenant, table in (("", "x"), ("t1", ""), ("t1", "a/b")):
        with pytest.raises(ValueError, match="scope"):
            scope(tenant, table)
    assert not due_for_replacement(ENCRYPTION_BUDGET - 1, NOW, NOW + timedelta(days=364))
    assert due_for_replacement(ENCRYPTION_BUDGET, NOW, NOW)
    assert due_for_replacement(0, NOW, NOW + timedelta(days=365))
    # a blind-index secret is never replaced: every stored index would be orphaned
    assert not due_for_replacement(ENCRYPTION_BUDGET, NOW, NOW + timedelta(days=3650),
                                   scope=scope("t1", "blind-index"))
    ring = rotate(RING, NOW)
    stored = [wrap(new_data_key(n, "t1/x"), RING) for n in (1, 2)] + [
        wrap(new_data_key(3, "t1/y"), ring), replace(wrap(KEY, ring), master_key_id="mk-gone")]
    assert wrapping(ring, stored) == {RING.primary: 2, ring.primary: 1, "mk-gone": 1}
