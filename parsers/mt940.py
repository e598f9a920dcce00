"""SWIFT MT940 statements and MT942 interim reports: bytes in, ``Statement`` objects out.

Read as a stream (``stream``; ``parse`` and ``parse_each`` gather it), line by line from
the open file, in layers, each in its own module: ``parsers.text_stream`` (the encoding
decided as ``parsers.text.decode`` decides it: UTF-8, else a guessed code page, flagged;
then the lines) -> ``mt940_clean`` (transport bytes, envelopes) -> ``mt940_lines`` (bank
headers, fields, one message per ``:20:``, a long one in pieces) -> ``mt940_statement``
(the statement's fields and checks, each entry yielded once its ``:86:`` is read) ->
``mt940_fields`` (each field's value, via the ``mt-940`` package's tag patterns where they
hold) -> ``mt940_entry`` and ``mt940_details`` (the entry, the ``:86:`` dialects). Memory
holds one entry and the statement's own fields, never the file or its entries.

Mapping: ``:20:`` statement_id; ``:25:`` account (IBAN when the check digits hold, BIC or
bank code / number, else a number); ``:28C:`` sequence; ``:60F:``/``:60M:`` opening balance
(OPBD/ITBD); ``:62F:``/``:62M:`` closing balance (CLBD/ITBD); ``:64:`` CLAV and ``:65:`` FWAV
in available_balances; ``:13D:`` created_at (UTC). The statement's currency is that of the
opening balance (MT942: of ``:34F:`` or ``:90D:``/``:90C:``). Each ``:61:`` is one entry:
C/D signed +/-, RC negative and RD positive with ``reversal``, EC/ED pending; the type
(``NTRF``) is ``bank_transaction_code.swift``; ``NONREF`` is no reference.
``:86:`` is read by ``mt940_details`` (German ``?nn`` subfields with SEPA keys, Romanian
variants, ``/CODE/`` dialects) and, for the free-text layouts of some banks (ING old
format, ABN AMRO, ASN/SNS, Triodos, mBank, Danske), ``mt940_dialects``; other free text is
not guessed at and sets no remittance. A ``:61:``
reference ``KREF+`` points to the ``:86:`` ``KREF+`` value, which is taken instead.
``Entry.additional_info`` keeps, verbatim, whatever the bank wrote about an entry that did
not all go into fields: the ``:61:`` supplementary details, the ``:86:`` text, ``:NS:``.

Checks: every MT940 statement needs ``:25:``, ``:60a:`` and ``:62a:`` (a statement without its
closing balance is a cut-off file, not a short statement); the number of ``:61:`` lines in
the text must equal the number of entries; MT942 ``:90D:``/``:90C:`` counts and sums must
match the entries. Any failure is a ``ParseError`` naming the line and field.

Flags set here (besides ``encoding_guessed``): ``replacement_characters`` (U+FFFD already
in the file), ``text_outside_statement`` (a preamble or trailing text ignored),
``field_wrapped`` (a one-line field continued on the next line, joined),
``decimal_point`` (amounts with ``.`` for the decimal comma), ``amount_without_decimal_comma``,
``transaction_type_missing``, ``entry_date_year_inferred`` (MMDD placed across a year end),
``timezone_assumed`` (``:13D:`` without offset), ``account_not_iban`` (IBAN-shaped, wrong
check digits), ``account_currency_mismatch`` (currency after the account differs from the
balances'), ``statement_information`` (``:86:``/``:NS:`` text for the statement as a whole,
before the first or after the last entry, which the model has no field for: the text is in
the flag's message).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import BinaryIO

from parsers.errors import ParseError
from parsers.model import Flag, Statement
from parsers.mt940_lines import read_messages
from parsers.mt940_statement import RawStatementLines, StatementReader
from parsers.stream import Part, StatementFailed, collect, whole
from parsers.text_stream import TextSource

# The parser family (its folder of golden files); its statements say "mt940" or "mt942".
FAMILY = "mt940"
FORMAT_NAMES = ("mt940", "mt942")

_SNIFF_NOISE = str.maketrans("", "", "\x01\x03\x1a")
_SNIFF_START = re.compile(r"(?m)^(?:\{4:)?:20:")
_SNIFF_MORE = re.compile(r"(?m)^:(?:28C?|6[0-2][FM]?|13D?|34F):")


def sniff(head: bytes) -> bool:
    """True for MT940/MT942: a ``:20:`` line followed by ``:25:`` and a statement field.

    Whatever precedes the first ``:20:`` (envelope, bank header, preamble) is allowed,
    except the start of an XML or OFX document.
    """
    text = head.removeprefix(b"\xef\xbb\xbf").decode("latin-1").translate(_SNIFF_NOISE)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    opening = text.lstrip()[:64].upper()
    if opening.startswith(("<", "OFXHEADER")):
        return False
    start = _SNIFF_START.search(text)
    if start is None:
        return False
    rest = text[start.end():]
    account = re.search(r"(?m)^:25P?:", rest)
    return account is not None and _SNIFF_MORE.search(rest) is not None


def parse(data: bytes, *, source: str) -> tuple[Statement, ...]:
    """Every statement (MT940) or report (MT942) in ``data``, whole, or a ``ParseError``."""
    return whole(parse_each(data, source=source))


def parse_each(data: bytes, *, source: str) -> tuple[Statement | ParseError, ...]:
    """Every statement in ``data``, each read on its own: a bad one is its ``ParseError``,
    in its place, naming it (``statement 2 of 3, :20: REF``), so that the good ones of a
    multi-statement file can still be shown. A file that cannot be cut into statements at
    all still raises. The statements of ``stream``, gathered.
    """
    return tuple(collect(stream(io.BytesIO(data), source=source)))


def stream(file: BinaryIO, *, source: str) -> Iterator[Part]:
    """The statements of an open binary file as a stream of parts (``parsers.stream``),
    read line by line from where the file stands: each entry is yielded once its ``:86:``
    is read, so memory does not grow with the number of entries. A bad statement is a
    ``StatementFailed`` (named as ``parse_each`` names it) and the next one is read; what
    cannot be cut into statements at all (control characters, an envelope left open, a
    field outside any statement, no ``:20:``) raises ``ParseError`` where it is met.
    """
    text = TextSource(file)
    flags = list(text.flags)
    if text.replacement_characters:
        first = next(n for n, line in enumerate(text.lines(), 1) if "\ufffd" in line)
        flags.append(Flag("replacement_characters", "the file already contains U+FFFD "
                          "replacement characters: text was damaged before it reached us",
                          f"line {first}"))
    raw = RawStatementLines(text)
    number = 0
    reader: StatementReader | None = None
    failed = False
    for piece in read_messages(raw.tap(), source=source):
        if reader is None:
            number += 1
            reader, failed = StatementReader(piece, source, tuple(flags), raw), False
        if not failed:
            try:
                yield from reader.take(piece)
                if not piece.more:
                    yield from reader.finish(piece)
            except ParseError as exc:
                failed = True
                count = _count_messages(text, source)
                yield StatementFailed(_naming(exc, number, count, reader.reference)
                                      if max(count, number) > 1 else exc)
        if not piece.more:
            reader = None
    if number == 0:
        raise ParseError("no statement found: expected a :20: field (MT940/MT942)",
                         source=source, line=1, field=":20:")


def _count_messages(text: TextSource, source: str) -> int:
    """How many messages the file holds, read again from its start (for naming a bad
    statement ``2 of 3``); what that reading cannot get past ends the stream anyway."""
    count = 0
    try:
        for piece in read_messages(text.lines(), source=source):
            count += not piece.more
    except ParseError:
        pass
    return count


def _naming(error: ParseError, number: int, count: int, reference: str) -> ParseError:
    """``error`` with the statement it is in named first."""
    name = f"statement {number} of {count}" + (f", :20: {reference}" if reference else "")
    return ParseError(f"{name}: {error.message}", source=error.source, line=error.line,
                      path=error.path, field=error.field)


