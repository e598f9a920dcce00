"""OFX 1.x (SGML) and 2.x (XML) bank and credit card statements, to ``Statement``.

Layers, each a module tested on its own (after ofxtools)::

    file  --ofx_bytes---> blocks of bytes, never the whole file
          --ofx_header--> text and version (OFXHEADER lines or <?xml?><?OFX?>, encoding)
          --ofx_tokens--> tags and text, one at a time
          --ofx_tree----> generic element tree, SGML or XML, as banks really write it
          --ofx_clean---> repaired tree (empty elements, decimal commas, misplaced balances)
          --ofx_statement-> Statement objects, then
          --ofx_reference-> ofxparse must read the repaired document the same way

Read as a stream (``stream``; ``parse`` and ``parse_each`` gather it): the file is read in
blocks and decoded as it goes (``ofx_header``), ``ofx_stream`` builds the tree as the
tokens come and yields each entry as soon as its STMTTRN is read, taking it out of the
tree, so memory does not grow with the file or its entries; a document it does not take
(several statements, anything irregular, a bad value) is read whole as one tree
(``ofx_statement.read_whole``), with the same results, and held whole. A file cut short
or damaged in its tags is refused where that is met, with the whole reading's error.

Mapping (sections of the OFX 2.1.1 specification):

- ``STMTRS`` (§11.4.2.2) and ``CCSTMTRS`` (§11.4.3.2): one ``Statement`` each, in document
  order, several per file allowed. ``INVSTMTRS`` (investment) is refused: not supported.
- ``BANKACCTFROM``: ``BANKID`` -> ``bank_id``; ``ACCTID`` -> ``iban`` when it passes the
  IBAN mod-97 check, else ``number``. ``CCACCTFROM`` ``ACCTID`` -> ``number``. ``CURDEF`` ->
  the account's currency. ``BRANCHID`` and ``ACCTTYPE`` have no place in the model.
- ``TRNUID`` of the enclosing ``STMTTRNRS`` -> ``statement_id``; the signon's ``DTSERVER``
  -> ``created_at`` in UTC. ``DTSTART``/``DTEND`` -> the period, dates as written.
- ``LEDGERBAL`` -> ``closing_balance`` (CLBD, dated ``DTASOF``); ``AVAILBAL`` ->
  ``available_balances`` (CLAV). OFX has no opening balance: ``opening_balance`` is None.
- ``STMTTRN`` (§11.4.4.1) -> ``Entry``: ``TRNAMT`` signed as given (OFX amounts are the
  account holder's view already); ``DTPOSTED`` -> ``booking_date``, the calendar date the
  bank wrote (not shifted to UTC, which would move late bookings to the next day);
  ``DTAVAIL`` -> ``value_date`` (when the funds are available, ISO's value date).
  ``DTUSER``, the day the customer initiated it (a card payment), is not a value date
  and is not mapped. ``FITID`` -> ``bank_reference``; ``CHECKNUM``, else ``REFNUM`` ->
  ``customer_reference``; ``NAME`` or ``PAYEE/NAME`` -> ``counterparty_name``;
  ``BANKACCTTO``/``CCACCTTO`` ``ACCTID`` -> ``counterparty_account``; ``MEMO`` ->
  ``remittance``; ``TRNTYPE`` -> ``bank_transaction_code`` (proprietary, issuer "OFX").
  ``CURRENCY``: the amounts are in ``CURSYM``; ``ORIGCURRENCY``: they are in ``CURDEF``,
  converted from ``CURSYM``. Either way ``fx`` carries ``CURRATE`` from CURSYM to CURDEF.

Flags (codes): ``ofx_repaired`` (a repair made to read the file; the message says which),
``ofx_header_missing`` (no header: version unknown), ``encoding_guessed`` (parsers.text),
``timezone_assumed`` (DTSERVER without an offset, read as UTC), ``ofx_status`` (a non-zero
status beside a statement), ``ofx_account_missing`` (no BANKACCTFROM/CCACCTFROM),
``ofx_correction`` (CORRECTACTION: an entry replacing or deleting an earlier one; a
DELETE is not read as an entry).

Refused with ``ParseError``: an empty or truncated document, malformed amounts and
dates, an error response (the server's message is quoted), investment statements, and
any file ofxparse reads differently from this parser. ``parse_each`` (and ``stream``)
read each statement of a multi-statement file on its own: a bad one (a malformed amount,
a reading ofxparse disagrees with) is its ``ParseError`` in its place, named
``statement 2 of 3``, and the others are kept; what concerns the whole document still
raises.

The ofxparse cross-check reads a sample: the document as cleaned, with the first
``CROSS_CHECK_TRANSACTIONS`` (200) transactions of each statement. ofxparse (through
BeautifulSoup) needs about ten times our time per transaction and memory growing with the
file, so checking every transaction made it most of the time of a large file. What it is
there to catch is a document read another way (other statements, accounts, balances, a
shifted or dropped transaction), which shows in the first transactions as well as in all
of them; every transaction's own values are read and checked by this parser anyway. Files
up to 200 transactions a statement (nearly all real ones) are still checked whole. The
sample is written from the tree the stream keeps (the first 200 STMTTRN, the rest taken
out as they are read), so it needs no more of the file than the stream does; ofxparse
itself reads only whole documents, which is why it is given that sample, not the file.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import BinaryIO

from parsers import ofx_header
from parsers.errors import ParseError
from parsers.model import Statement
from parsers.ofx_stream import stream_document
from parsers.stream import Part, collect, whole

# The parser family (its folder of golden files), and the format its statements say.
FAMILY = "ofx"
FORMAT_NAMES = ("ofx",)


def sniff(head: bytes) -> bool:
    """True if ``head`` starts like OFX (see ``ofx_header.starts_like_ofx``)."""
    return ofx_header.starts_like_ofx(head)


def parse(data: bytes, *, source: str) -> tuple[Statement, ...]:
    """Every bank and credit card statement of an OFX document, in document order."""
    return whole(parse_each(data, source=source))


def parse_each(data: bytes, *, source: str) -> tuple[Statement | ParseError, ...]:
    """Every statement of the document, each read on its own: a bad one is its
    ``ParseError`` in its place (``statement 2 of 3: ...`` when there are several), so that
    the good ones of a multi-statement file can still be shown. What concerns the whole
    document (its header and tree, an error response, a transaction outside any
    statement, ofxparse reading another number of statements) still raises. The
    statements of ``stream``, gathered.
    """
    return tuple(collect(stream(io.BytesIO(data), source=source)))


def stream(file: BinaryIO, *, source: str) -> Iterator[Part]:
    """The statements of an open binary file as a stream of parts (``parsers.stream``), a
    bad one of several a ``StatementFailed``; each entry as soon as its STMTTRN is read
    (``parsers.ofx_stream``)."""
    return stream_document(file, source=source)
