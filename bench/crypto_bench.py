"""The cost of encryption at rest and of the audit chain, beside their raw floors.

    python bench/crypto_bench.py [--values 20000] [--repeat 5]

For typical bank-line fields (an IBAN, a payer's name, a remittance text, a Chinese name,
a 2 KB remittance), in the same run:

- field encryption and decryption (``security.fields.FieldCipher``) against the floor of a
  bare ``AESGCM.encrypt`` with a fresh random nonce and prebuilt associated data of the same
  size, and a bare ``AESGCM.decrypt`` of the same ciphertexts, nonces and associated data
  cut and built beforehand; each value in a row of its own, and a line's four short fields
  together, as an import writes them;
- the same with a key derived per row (HKDF, then a new AES-GCM context), the grain
  docs/security.md did not choose;
- blind indexes (``security.blindindex.BlindIndexer.index``) against a bare
  ``hmac.new(key, value, sha256).digest()`` over the value already normalized;
- audit entries written (``security.audit.new_entry``, RFC 8785 via ``rfc8785``) and checked
  (``security.audit_verify.verify_chain``) against SHA-256 over ``json.dumps`` of the same
  entry.

Each figure is the best of ``--repeat`` runs (the machine is shared). Pure Python, no
database. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import platform
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from security.audit import START, actor, new_entry
from security.audit_verify import verify_chain
from security.blindindex import IBAN, BlindIndexer
from security.envelope import new_data_key
from security.fields import Column, FieldCipher

FIELDS = {
    "IBAN (22 B)": "DE89370400440532013000",
    "name (27 B)": "Müller Maschinenbau GmbH",
    "remittance (70 B)": "RE 2026-4711 Kd-Nr 10023 Zahlung Lieferung November Danke",
    "Chinese name (36 B)": "上海浦东发展银行股份有限公司",
    "remittance (2 KB)": "INV-4711 " * 228,
}


def best(repeat: int, n: int, run: Callable[[], None]) -> float:
    """Operations per second: the best of ``repeat`` timed runs of ``n`` operations."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return n / min(times)


def field_rows(n: int, repeat: int) -> list[tuple[str, str, float, float]]:
    key = new_data_key(1, "t1/transactions")
    cipher = FieldCipher([key])
    column = Column("transactions", "remittance")
    raw = AESGCM(key.secret)
    rows = []
    for number, (label, text) in enumerate(FIELDS.items(), 10):
        data = text.encode()
        row_ids = [("t1", number, i) for i in range(n)]
        blobs: list[bytes] = []

        def ours_encrypt(text: str = text, row_ids: list[tuple[str, int, int]] = row_ids,
                         blobs: list[bytes] = blobs) -> None:
            blobs.clear()
            for row in row_ids:
                blob = cipher.encrypt(text, column, row, key_id=1)
                assert blob is not None
                blobs.append(blob)

        ad = column.associated(b"\x01\x01\x00\x00\x00\x01", ("t1", 1, 0))

        def floor_encrypt(data: bytes = data, ad: bytes = ad) -> None:
            for _ in range(n):
                raw.encrypt(secrets.token_bytes(12), data, ad)

        enc = best(repeat, n, ours_encrypt)
        enc_floor = best(repeat, n, floor_encrypt)
        rows.append((f"encrypt {label}", "AESGCM.encrypt", enc, enc_floor))

        def ours_decrypt(row_ids: list[tuple[str, int, int]] = row_ids,
                         blobs: list[bytes] = blobs) -> None:
            for row, blob in zip(row_ids, blobs, strict=True):
                cipher.decrypt_text(blob, column, row)

        opened = [(blob[6:18], blob[18:], column.associated(blob[:6], row))
                  for row, blob in zip(row_ids, blobs, strict=True)]

        def floor_decrypt(opened: list[tuple[bytes, bytes, bytes]] = opened) -> None:
            for nonce, sealed, associated in opened:  # parts cut and built beforehand
                raw.decrypt(nonce, sealed, associated)

        rows.append((f"decrypt {label}", "AESGCM.decrypt", best(repeat, n, ours_decrypt),
                     best(repeat, n, floor_decrypt)))
        if label.startswith("remittance (70"):
            def per_row(data: bytes = data, ad: bytes = ad) -> None:
                for i in range(n):
                    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                                   info=b"row %d" % i).derive(key.secret)
                    AESGCM(derived).encrypt(secrets.token_bytes(12), data, ad)
            rows.append((f"encrypt {label}, key derived per row (not chosen)",
                         "AESGCM.encrypt", best(repeat, n, per_row), enc_floor))
    # A bank line's four short fields, written together as an import does.
    short = [t for label, t in FIELDS.items() if "2 KB" not in label]
    columns = [Column("transactions", f"c{i}") for i in range(len(short))]
    ads = [c.associated(b"\x01\x01\x00\x00\x00\x01", ("t1", 1, 0)) for c in columns]
    datas = [t.encode() for t in short]
    lines = n // len(short)

    def line_ours() -> None:
        for i in range(lines):
            row = ("t1", 2, i)
            for column, text in zip(columns, short, strict=True):
                cipher.encrypt(text, column, row, key_id=1)

    def line_floor() -> None:
        for _ in range(lines):
            for data, ad in zip(datas, ads, strict=True):
                raw.encrypt(secrets.token_bytes(12), data, ad)

    rows.append((f"encrypt a line's {len(short)} short fields (per line)", "AESGCM.encrypt x4",
                 best(repeat, lines, line_ours), best(repeat, lines, line_floor)))
    return rows


def index_rows(n: int, repeat: int) -> list[tuple[str, str, float, float]]:
    indexer = BlindIndexer(secrets.token_bytes(32))
    typed = "de89 3704 0044 0532 0130 00"
    normalized = IBAN.normalize(typed).encode()
    key = indexer.key("iban", "t1")

    def ours() -> None:
        for _ in range(n):
            indexer.index(IBAN, typed, scope="t1")

    def floor() -> None:
        for _ in range(n):
            hmac.new(key, normalized, hashlib.sha256).digest()

    return [("blind index of an IBAN as typed", "hmac.new(...).digest()",
             best(repeat, n, ours), best(repeat, n, floor))]


def audit_rows(n: int, repeat: int) -> list[tuple[str, str, float, float]]:
    t0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    who = actor("api_key", "a1b2c3d4e5f6", "treasury import")
    entries: list[dict[str, object]] = []

    def write() -> None:
        entries.clear()
        head = START
        for i in range(n):
            entry = new_entry(head, time=t0 + timedelta(microseconds=i), actor=who,
                              action="allocation.accepted",
                              object={"type": "allocation", "id": f"al_{i}"},
                              before={"status": "proposed"},
                              after={"status": "accepted", "amount": Decimal("100.00"),
                                     "currency": "EUR"})
            entries.append(entry.as_json())
            head = entry.head

    written = best(repeat, n, write)

    def floor() -> None:
        for entry in entries:
            hashlib.sha256(json.dumps(entry, sort_keys=True).encode()).hexdigest()

    hashed = best(repeat, n, floor)
    checked = best(repeat, n, lambda: verify_chain(entries) and None)
    return [("audit entry written (rfc8785 + SHA-256)", "sha256(json.dumps)", written, hashed),
            ("audit entry verified (audit_verify)", "sha256(json.dumps)", checked, hashed)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--values", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = (field_rows(args.values, args.repeat) + index_rows(args.values, args.repeat)
            + audit_rows(args.values, args.repeat))
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {args.values} values, best of {args.repeat}")
    print()
    print("| operation | ours (/s) | floor | floor (/s) | ours/floor |")
    print("| --- | ---: | --- | ---: | ---: |")
    for what, floor_name, ours, floor in rows:
        print(f"| {what} | {ours:,.0f} | {floor_name} | {floor:,.0f} | {ours / floor:.2f} |")


if __name__ == "__main__":
    main()
