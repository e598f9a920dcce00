"""Normal forms of what people type: names of payers and references to invoices."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Legal forms and noise words banks and customers add to names (lower case, no dots).
LEGAL_FORMS = frozenset("""
    gmbh mbh ag kg ohg ug eg ev gbr kgaa se co cokg ltd limited plc llp llc inc incorporated
    corp corporation company bv nv vof cv sa sas sarl sarlu sasu snc sl slu srl spa sapa sro
    as asa oy oyj ab aps akts sp zoo spzoo zo oo kft zrt nyrt doo dd ad ood eood pte pty bhd
""".split())
NOISE_WORDS = frozenset("""
    sepa ct sct from von de van der den des la le du of the und and et en mr mrs ms herr frau
    dr prof firma fa gutschrift ueberweisung uberweisung lastschrift zahlung payment transfer
    virement credit
""".split())
_GERMAN_DIGRAPHS = (("ae", "a"), ("oe", "o"), ("ue", "u"))
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def fold(text: str) -> str:
    """Lower case, without diacritics (ß -> ss, æ -> ae, ø -> o), other marks removed."""
    text = text.casefold().replace("ß", "ss").replace("æ", "ae").replace("ø", "o")
    text = text.replace("ł", "l").replace("đ", "d").replace("þ", "th")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=200_000)
def name_tokens(name: str) -> tuple[str, ...]:
    """The words of a person's or company's name that identify it, folded and sorted.

    Legal forms and noise words go; German digraphs are reduced (Mueller -> muller) so that
    a bank's ASCII transliteration and the CRM's spelling meet.
    """
    words = _NOT_ALNUM.split(fold(name).replace(".", ""))  # B.V. -> bv, Sp. z o.o. -> sp z oo
    kept = []
    for word in words:
        if len(word) < 2 or word in LEGAL_FORMS or word in NOISE_WORDS:
            continue
        for digraph, single in _GERMAN_DIGRAPHS:
            word = word.replace(digraph, single)
        kept.append(word)
    return tuple(sorted(kept))


def compact(text: str) -> str:
    """Upper-case letters and digits only: ``inv 2026-0815`` -> ``INV20260815``."""
    if text.isascii():  # IBANs, references: nothing to fold, one pass
        return _NOT_ASCII_ALNUM.sub("", text).upper()
    return "".join(c for c in fold(text) if c.isalnum()).upper()


_NOT_ASCII_ALNUM = re.compile(r"[^0-9A-Za-z]+")


_NOT_DIGIT = re.compile(r"[^0-9]+")


def digits(text: str) -> str:
    return _NOT_DIGIT.sub("", text)


def is_valid_rf(reference: str) -> bool:
    """ISO 11649 creditor reference: ``RF`` + 2 check digits + up to 21 characters, mod 97 = 1."""
    ref = compact(reference)
    if not (5 <= len(ref) <= 25) or not ref.startswith("RF") or not ref[2:4].isdigit():
        return False
    rearranged = ref[4:] + ref[:4]
    try:
        number = int("".join(str(int(c, 36)) for c in rearranged))
    except ValueError:
        return False
    return number % 97 == 1
