"""security.blindindex: equal values meet, everything else stays apart."""

from __future__ import annotations

import hashlib
import hmac
import secrets

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from security.blindindex import ACCOUNT, IBAN, INDEX_BYTES, BlindIndexer, Purpose

SECRET = secrets.token_bytes(32)
INDEXER = BlindIndexer(SECRET)


def test_an_iban_as_typed_finds_the_iban_as_stored() -> None:
    stored = INDEXER.index(IBAN, "DE89370400440532013000", scope="t1")
    assert len(stored) == INDEX_BYTES
    for typed in ("de89 3704 0044 0532 0130 00", " DE89370400440532013000\n",
                  "DE89\u00a03704\t00440532013000", "DE89-3704-0044-0532-0130-00",
                  "DE89.3704.0044.0532.0130.00", "DE89\u200b370400440532013000"):
        assert INDEXER.index(IBAN, typed, scope="t1") == stored
    assert INDEXER.index(IBAN, "DE89370400440532013001", scope="t1") != stored


def test_purposes_scopes_and_secrets_keep_indexes_apart() -> None:
    value = "DE89370400440532013000"
    base = INDEXER.index(IBAN, value, scope="t1")
    assert INDEXER.index(ACCOUNT, value, scope="t1") != base
    assert INDEXER.index(IBAN, value, scope="t2") != base
    assert BlindIndexer(secrets.token_bytes(32)).index(IBAN, value, scope="t1") != base
    assert BlindIndexer(SECRET).index(IBAN, value, scope="t1") == base  # stable


def test_the_documented_recipe() -> None:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"recon-gateway blind index v1\x00iban\x00t1").derive(SECRET)
    expected = hmac.new(key, b"DE89370400440532013000", hashlib.sha256).digest()[:16]
    assert INDEXER.index(IBAN, "de89 3704 0044 0532 0130 00", scope="t1") == expected


@settings(deadline=None)
@given(st.text(), st.text())
def test_equal_normalized_values_and_only_those_give_equal_indexes(a: str, b: str) -> None:
    same = IBAN.normalize(a) == IBAN.normalize(b)
    assert (INDEXER.index(IBAN, a, scope="t") == INDEXER.index(IBAN, b, scope="t")) == same


def test_a_purpose_with_the_callers_normalization() -> None:
    names = Purpose("customer_name", lambda s: " ".join(s.casefold().split()))
    assert (INDEXER.index(names, "Müller  GmbH", scope="t1")
            == INDEXER.index(names, "MÜLLER GMBH", scope="t1"))


def test_short_secrets_and_nul_separators_are_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        BlindIndexer(b"short")
    with pytest.raises(ValueError, match="NUL"):
        INDEXER.index(IBAN, "x", scope="t1\x00iban")
    assert repr(INDEXER) == "BlindIndexer()"


def test_a_document_hashed_as_it_streams_is_keyed() -> None:
    data = b"{1:F01BANKDEFFXXXX}" * 1000
    streamed = INDEXER.hasher("document", "t1")
    for start in range(0, len(data), 4096):
        streamed.update(data[start:start + 4096])
    whole = INDEXER.hasher("document", "t1")
    whole.update(data)
    assert streamed.digest() == whole.digest() != hashlib.sha256(data).digest()
    other = INDEXER.hasher("document", "t2")
    other.update(data)
    assert other.digest() != whole.digest()


def test_a_value_that_is_not_text_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="account value holds a lone surrogate"):
        INDEXER.index(ACCOUNT, "0532\ud800", scope="t1")
