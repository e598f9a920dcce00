"""IBAN recognition, by the ``schwifty`` library (ISO 13616: country, length, mod-97)."""

from __future__ import annotations

from schwifty import IBAN
from schwifty.exceptions import SchwiftyException


def normalize_iban(text: str | None) -> str | None:
    """The IBAN in compact upper-case form if ``text`` is a valid one, else None."""
    if not text:
        return None
    compact = "".join(text.split()).upper()
    if not (15 <= len(compact) <= 34) or not compact.isascii() or not compact.isalnum():
        return None
    try:
        return str(IBAN(compact).compact)
    except (SchwiftyException, ValueError):
        return None
