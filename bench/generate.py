"""Seeded generators of large, realistic bank statements for the parser benchmark.

Standard library only, and independent of the project's writers: the benchmark must be able
to feed a parser files that no code of ours has shaped. Each generator writes one statement
of ``n`` entries spread over a year, with booked balances that add up (opening + entries =
closing) and amounts drawn as integer cents, never floats.

- ``camt053``: camt.053.001.08, one ``Stmt``, OPBD/CLBD balances, every ``Ntry`` with
  Amt/CdtDbtInd/Sts/BookgDt/ValDt/AcctSvcrRef/BkTxCd and one ``TxDtls`` (EndToEndId, the
  counterparty's name and IBAN under RltdPties, RmtInf/Ustrd). Pretty-printed, UTF-8.
- ``mt940``: one ``:20:`` statement with ``n`` ``:61:``/``:86:`` pairs, ``:60F:``/``:62F:``,
  CRLF line ends; ``:86:`` in the SWIFT ``/EREF/../NAME/../REMI/`` style or the German
  ``?20`` style (``dialect``).
- ``ofx``: OFX 1.02 SGML bank statement, ``n`` STMTTRN (FITID, TRNAMT, DTPOSTED, NAME,
  MEMO), LEDGERBAL and AVAILBAL.

``python bench/generate.py --formats camt,mt940,ofx --sizes 1000`` writes files to
``bench/out/`` (git-ignored) with a ``.json`` sidecar of the figures a parser must find.
"""

from __future__ import annotations

import argparse
import json
import random
import unicodedata
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

# Bump when the generated content changes, so cached files in bench/out/ are not reused.
GENERATOR_VERSION = 1
DEFAULT_SEED = 20260101
OUT = Path(__file__).resolve().parent / "out"

FORMATS = ("camt", "mt940", "ofx")
EXTENSIONS = {"camt": "xml", "mt940": "sta", "ofx": "ofx"}

_FIRST = (
    "Anna", "Jürgen", "Søren", "Zoë", "Łukasz", "María", "François", "Ingrid", "Mehmet",
    "Olivia", "Pieter", "Chiara", "Bogdan", "Hanne", "Jiří", "Noah", "Emma", "Lars",
)
_LAST = (
    "Müller", "Jansen", "de Vries", "Nowak", "García", "Rossi", "Dubois", "Öztürk", "Novák",
    "Andersen", "Schmidt", "Kowalski", "Smith", "Weiß", "Lindqvist", "Papadopoulos",
)
_COMPANY = (
    "Müller & Söhne GmbH", "Nordlicht Logistik AG", "Café Central KG", "Bakker B.V.",
    "Acme Supplies Ltd", "Stadtwerke Beispielstadt", "Finanzamt Mitte", "Ørsted Energi A/S",
    "Hotel Zur Post", "Telekom Deutschland GmbH", "Allianz Versicherungs-AG",
    "Groupe Lumière SA", "Vodafone GmbH", "Amazon EU S.a.r.l.",
)
_BICS = (
    "COBADEFFXXX", "DEUTDEFFXXX", "INGDDEFFXXX", "ABNANL2AXXX", "RABONL2UXXX", "BNPAFRPPXXX",
    "UNCRITMMXXX", "NDEADKKKXXX", "HYVEDEMMXXX", "SOLADEST600",
)
_CREDIT_TEXT = (
    "Rechnung {inv} Kd-Nr {cust}", "Invoice {inv} customer {cust}", "RE {inv} vom {day}",
    "Payment for order {cust} invoice {inv}", "Zahlung {inv} Teilbetrag",
    "Factuur {inv} klantnummer {cust}",
)
_DEBIT_TEXT = (
    "Miete {month} Objekt {cust}", "Strom Abschlag {month} Vertrag {cust}",
    "Lastschrift Beitrag {month} Mitglied {cust}", "Supplier invoice {inv}",
    "Lohn Gehalt {month} PersNr {cust}", "Kartenzahlung Filiale {cust}",
)
# ISO 20022 bank transaction codes with the matching SWIFT :61: code and German GVC.
_CODES_CREDIT = (("PMNT", "RCDT", "ESCT", "NTRF", "166"), ("PMNT", "RCDT", "BOOK", "NTRF", "153"))
_CODES_DEBIT = (
    ("PMNT", "ICDT", "ESCT", "NTRF", "116"),
    ("PMNT", "IDDT", "ESDD", "NDDT", "105"),
    ("PMNT", "CCRD", "POSD", "NMSC", "106"),
)


@dataclass(frozen=True)
class EntrySpec:
    """One generated statement line, format-neutral."""

    cents: int  # signed: credit positive
    booking_date: date
    value_date: date
    bank_reference: str
    end_to_end_id: str
    counterparty_name: str
    counterparty_iban: str
    counterparty_bic: str
    remittance: str
    domain: str
    family: str
    subfamily: str
    swift_code: str
    gvc: str


@dataclass(frozen=True)
class Expected:
    """What a parser must find in a generated file (written beside it as JSON)."""

    format: str
    entries: int
    currency: str
    opening_cents: int
    closing_cents: int
    net_cents: int
    seed: int
    generator_version: int


def iban(rng: random.Random, country: str = "DE") -> str:
    """A random IBAN with valid ISO 13616 check digits (German layout: BLZ + account)."""
    bban = f"{rng.randrange(10**7, 10**8)}{rng.randrange(10**9, 10**10)}"
    digits = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{country}{98 - int(digits) % 97:02d}{bban}"


def ascii_text(text: str) -> str:
    """Transliterate to plain ASCII as banks do for SWIFT and OFX 1.x (Müller -> Mueller)."""
    for a, b in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("Ä", "Ae"), ("Ö", "Oe"),
                 ("Ü", "Ue"), ("ß", "ss"), ("Ø", "O"), ("ø", "o"), ("Ł", "L"), ("ł", "l")):
        text = text.replace(a, b)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if ord(c) < 128)


def _amount(cents: int) -> str:
    """Absolute amount with a decimal point: 123456 -> '1234.56'."""
    whole, frac = divmod(abs(cents), 100)
    return f"{whole}.{frac:02d}"


def entries(n: int, rng: random.Random, start: date, opening: int) -> Iterator[EntrySpec]:
    """``n`` entries spread evenly over the 365 days from ``start``, in date order.

    Money in is likelier while the balance is below ``opening`` and out while above, so the
    balance wanders around its opening value as a business account's does.
    """
    balance = opening
    for i in range(n):
        booking = start + timedelta(days=i * 365 // max(n, 1))
        credit = rng.random() < (0.6 if balance < opening else 0.4)
        magnitude = rng.choice((rng.randrange(100, 20_000), rng.randrange(1_000, 500_000),
                                rng.randrange(10_000, 5_000_000)))
        value = booking
        if rng.random() < 0.1 and booking.month == (booking + timedelta(days=1)).month:
            value = booking + timedelta(days=1)
        if rng.random() < 0.3:
            name = rng.choice(_COMPANY)
        else:
            name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
        fields = {
            "inv": f"INV-{booking.year}-{rng.randrange(1, 999_999):06d}",
            "cust": str(rng.randrange(10_000, 99_999)),
            "day": booking.strftime("%d.%m.%Y"),
            "month": booking.strftime("%m/%Y").replace("/", "."),
        }
        text = rng.choice(_CREDIT_TEXT if credit else _DEBIT_TEXT).format(**fields)
        domain, family, subfamily, swift, gvc = rng.choice(
            _CODES_CREDIT if credit else _CODES_DEBIT
        )
        cents = magnitude if credit else -magnitude
        balance += cents
        yield EntrySpec(
            cents=cents,
            booking_date=booking,
            value_date=value,
            bank_reference=f"{booking:%y%m%d}{i:010d}",
            end_to_end_id=f"E2E{rng.randrange(16**12):012X}" if rng.random() < 0.8 else "",
            counterparty_name=name,
            counterparty_iban=iban(rng),
            counterparty_bic=rng.choice(_BICS),
            remittance=text,
            domain=domain,
            family=family,
            subfamily=subfamily,
            swift_code=swift,
            gvc=gvc,
        )


def _setup(n: int, seed: int) -> tuple[random.Random, list[EntrySpec], int, int]:
    rng = random.Random(seed)
    opening = rng.randrange(-1_000_000, 50_000_000)
    items = list(entries(n, rng, date(2025, 1, 1), opening))
    return rng, items, opening, opening + sum(e.cents for e in items)


def _expected(fmt: str, n: int, seed: int, currency: str, opening: int,
              closing: int) -> Expected:
    return Expected(fmt, n, currency, opening, closing, closing - opening, seed,
                    GENERATOR_VERSION)


# --- camt.053.001.08 -----------------------------------------------------------------------

def _camt_balance(code: str, cents: int, day: date) -> str:
    sign = "CRDT" if cents >= 0 else "DBIT"
    return (
        "      <Bal>\n"
        f"        <Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>\n"
        f'        <Amt Ccy="EUR">{_amount(cents)}</Amt>\n'
        f"        <CdtDbtInd>{sign}</CdtDbtInd>\n"
        f"        <Dt><Dt>{day.isoformat()}</Dt></Dt>\n"
        "      </Bal>\n"
    )


def _camt_entry(e: EntrySpec) -> str:
    credit = e.cents > 0
    sign = "CRDT" if credit else "DBIT"
    party, agent = ("Dbtr", "DbtrAgt") if credit else ("Cdtr", "CdtrAgt")
    amount = _amount(e.cents)
    e2e = e.end_to_end_id or "NOTPROVIDED"
    return (
        "      <Ntry>\n"
        f'        <Amt Ccy="EUR">{amount}</Amt>\n'
        f"        <CdtDbtInd>{sign}</CdtDbtInd>\n"
        "        <Sts><Cd>BOOK</Cd></Sts>\n"
        f"        <BookgDt><Dt>{e.booking_date.isoformat()}</Dt></BookgDt>\n"
        f"        <ValDt><Dt>{e.value_date.isoformat()}</Dt></ValDt>\n"
        f"        <AcctSvcrRef>{e.bank_reference}</AcctSvcrRef>\n"
        "        <BkTxCd>\n"
        f"          <Domn><Cd>{e.domain}</Cd><Fmly><Cd>{e.family}</Cd>"
        f"<SubFmlyCd>{e.subfamily}</SubFmlyCd></Fmly></Domn>\n"
        f"          <Prtry><Cd>{e.swift_code}+{e.gvc}</Cd><Issr>DK</Issr></Prtry>\n"
        "        </BkTxCd>\n"
        "        <NtryDtls>\n"
        "          <TxDtls>\n"
        f"            <Refs><AcctSvcrRef>{e.bank_reference}</AcctSvcrRef>"
        f"<EndToEndId>{e2e}</EndToEndId></Refs>\n"
        f'            <Amt Ccy="EUR">{amount}</Amt>\n'
        f"            <CdtDbtInd>{sign}</CdtDbtInd>\n"
        "            <RltdPties>\n"
        f"              <{party}><Pty><Nm>{escape(e.counterparty_name)}</Nm></Pty></{party}>\n"
        f"              <{party}Acct><Id><IBAN>{e.counterparty_iban}</IBAN></Id></{party}Acct>\n"
        "            </RltdPties>\n"
        f"            <RltdAgts><{agent}><FinInstnId><BICFI>{e.counterparty_bic}</BICFI>"
        f"</FinInstnId></{agent}></RltdAgts>\n"
        f"            <RmtInf><Ustrd>{escape(e.remittance)}</Ustrd></RmtInf>\n"
        "          </TxDtls>\n"
        "        </NtryDtls>\n"
        "      </Ntry>\n"
    )


def camt053(n: int, seed: int = DEFAULT_SEED) -> tuple[bytes, Expected]:
    """A camt.053.001.08 document with one statement of ``n`` entries."""
    rng, items, opening, closing = _setup(n, seed)
    account = iban(rng)
    first = date(2025, 1, 1)
    last = items[-1].booking_date if items else first
    credits = [e.cents for e in items if e.cents > 0]
    debits = [-e.cents for e in items if e.cents < 0]
    net = closing - opening
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
        "  <BkToCstmrStmt>\n"
        "    <GrpHdr>\n"
        f"      <MsgId>BENCH-{seed}-{n}</MsgId>\n"
        "      <CreDtTm>2026-01-01T06:00:00+01:00</CreDtTm>\n"
        "      <MsgPgntn><PgNb>1</PgNb><LastPgInd>true</LastPgInd></MsgPgntn>\n"
        "    </GrpHdr>\n"
        "    <Stmt>\n"
        f"      <Id>STMT-2025-{seed % 100_000:05d}</Id>\n"
        "      <ElctrncSeqNb>1</ElctrncSeqNb>\n"
        "      <LglSeqNb>1</LglSeqNb>\n"
        "      <CreDtTm>2026-01-01T06:00:00+01:00</CreDtTm>\n"
        f"      <FrToDt><FrDtTm>{first.isoformat()}T00:00:00+01:00</FrDtTm>"
        f"<ToDtTm>{last.isoformat()}T23:59:59+01:00</ToDtTm></FrToDt>\n"
        "      <Acct>\n"
        f"        <Id><IBAN>{account}</IBAN></Id>\n"
        "        <Ccy>EUR</Ccy>\n"
        "        <Ownr><Nm>Beispiel Handel GmbH</Nm></Ownr>\n"
        "        <Svcr><FinInstnId><BICFI>COBADEFFXXX</BICFI></FinInstnId></Svcr>\n"
        "      </Acct>\n",
        _camt_balance("OPBD", opening, first - timedelta(days=1)),
        _camt_balance("CLBD", closing, last),
        "      <TxsSummry>\n"
        f"        <TtlNtries><NbOfNtries>{n}</NbOfNtries><Sum>{_amount(sum(credits) + sum(debits))}"
        f"</Sum><TtlNetNtry><Amt>{_amount(net)}</Amt>"
        f"<CdtDbtInd>{'CRDT' if net >= 0 else 'DBIT'}</CdtDbtInd></TtlNetNtry></TtlNtries>\n"
        f"        <TtlCdtNtries><NbOfNtries>{len(credits)}</NbOfNtries>"
        f"<Sum>{_amount(sum(credits))}</Sum></TtlCdtNtries>\n"
        f"        <TtlDbtNtries><NbOfNtries>{len(debits)}</NbOfNtries>"
        f"<Sum>{_amount(sum(debits))}</Sum></TtlDbtNtries>\n"
        "      </TxsSummry>\n",
    ]
    parts.extend(_camt_entry(e) for e in items)
    parts.append("    </Stmt>\n  </BkToCstmrStmt>\n</Document>\n")
    return "".join(parts).encode("utf-8"), _expected("camt", n, seed, "EUR", opening, closing)


# --- MT940 ---------------------------------------------------------------------------------

def _swift_x(text: str) -> str:
    """Reduce to the SWIFT x character set (letters, digits, / - ? : ( ) . , ' + space)."""
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/-?:().,'+ ")
    return "".join(c if c in allowed else " " if c in "&" else "" for c in ascii_text(text))


def _mt_amount(cents: int) -> str:
    return _amount(cents).replace(".", ",")


def _mt_balance(tag: str, cents: int, day: date) -> str:
    return f":{tag}:{'C' if cents >= 0 else 'D'}{day:%y%m%d}EUR{_mt_amount(cents)}"


def _wrap(chunks: list[str], width: int = 65, max_lines: int = 6) -> list[str]:
    """Lay ``chunks`` on lines of at most ``width`` characters, breaking only between chunks
    unless a chunk is longer than a line; at most ``max_lines`` lines (SWIFT 6*65x)."""
    lines = [""]
    for chunk in chunks:
        if len(lines[-1]) + len(chunk) <= width:
            lines[-1] += chunk
            continue
        rest = chunk
        if lines[-1]:
            lines.append("")
        while len(rest) > width:
            lines[-1] = rest[:width]
            lines.append("")
            rest = rest[width:]
        lines[-1] = rest
    if len(lines) > max_lines:
        raise ValueError(f"a :86: field would need {len(lines)} lines: {chunks}")
    return lines


def _mt86_swift(e: EntrySpec) -> list[str]:
    chunks = []
    if e.end_to_end_id:
        chunks.append(f"/EREF/{e.end_to_end_id}")
    chunks += [
        f"/IBAN/{e.counterparty_iban}",
        f"/BIC/{e.counterparty_bic}",
        f"/NAME/{_swift_x(e.counterparty_name).replace('/', ' ')[:70]}",
        f"/REMI/{_swift_x(e.remittance).replace('/', ' ')[:140]}",
    ]
    return _wrap(chunks)


def _mt86_german(e: EntrySpec) -> list[str]:
    text = ("SEPA-GUTSCHRIFT" if e.cents > 0 else "SEPA-LASTSCHRIFT" if e.swift_code == "NDDT"
            else "SEPA-UEBERWEISUNG")
    purpose = []
    if e.end_to_end_id:
        purpose.append(f"EREF+{e.end_to_end_id}")
    remittance = "SVWZ+" + _swift_x(e.remittance).replace("?", " ")
    purpose += [remittance[i:i + 27] for i in range(0, len(remittance), 27)]
    name = _swift_x(e.counterparty_name).replace("?", " ")
    chunks = [f"{e.gvc}?00{text}"]
    chunks += [f"?{20 + i}{p}" for i, p in enumerate(purpose[:10])]
    chunks += [f"?30{e.counterparty_bic}", f"?31{e.counterparty_iban}", f"?32{name[:27]}"]
    if len(name) > 27:
        chunks.append(f"?33{name[27:54]}")
    chunks.append("?34000")
    return _wrap(chunks)


def mt940(n: int, seed: int = DEFAULT_SEED, *, dialect: str = "swift") -> tuple[bytes, Expected]:
    """An MT940 file with one statement of ``n`` entries, CRLF line ends.

    ``dialect`` ``swift``: ``:86:/EREF/../IBAN/../BIC/../NAME/../REMI/..`` and an IBAN in
    ``:25:``; ``german``: ``:86:166?00..?20EREF+..?21SVWZ+..?30..?31..?32..`` and BLZ/account.
    """
    if dialect not in ("swift", "german"):
        raise ValueError(f"unknown :86: dialect {dialect!r}: expected swift or german")
    rng, items, opening, closing = _setup(n, seed)
    account = iban(rng)
    first = date(2025, 1, 1)
    last = items[-1].booking_date if items else first
    details = _mt86_swift if dialect == "swift" else _mt86_german
    lines = [
        f":20:STMT{seed % 10**8:08d}",
        f":25:{account if dialect == 'swift' else account[4:12] + '/' + account[12:]}",
        ":28C:00001/001",
        _mt_balance("60F", opening, first - timedelta(days=1)),
    ]
    for e in items:
        mark = "C" if e.cents > 0 else "D"
        customer = e.end_to_end_id[-16:] if e.end_to_end_id else "NONREF"
        lines.append(
            f":61:{e.value_date:%y%m%d}{e.booking_date:%m%d}{mark}{_mt_amount(e.cents)}"
            f"N{e.swift_code[1:]}{customer}//{e.bank_reference[-16:]}"
        )
        body = details(e)
        lines.append(":86:" + body[0])
        lines.extend(body[1:])
    lines += [_mt_balance("62F", closing, last), _mt_balance("64", closing, last), "-"]
    text = "\r\n".join(lines) + "\r\n"
    return text.encode("ascii"), _expected("mt940", n, seed, "EUR", opening, closing)


# --- OFX 1.02 SGML -------------------------------------------------------------------------

_OFX_HEADER = (
    "OFXHEADER:100\r\nDATA:OFXSGML\r\nVERSION:102\r\nSECURITY:NONE\r\nENCODING:USASCII\r\n"
    "CHARSET:1252\r\nCOMPRESSION:NONE\r\nOLDFILEUID:NONE\r\nNEWFILEUID:NONE\r\n\r\n"
)


def _ofx_time(day: date) -> str:
    return f"{day:%Y%m%d}120000.000[-5:EST]"


def _ofx_entry(e: EntrySpec) -> str:
    sign = "-" if e.cents < 0 else ""
    kind = "CREDIT" if e.cents > 0 else "DIRECTDEBIT" if e.swift_code == "NDDT" else (
        "POS" if e.swift_code == "NMSC" else "DEBIT")
    name = escape(ascii_text(e.counterparty_name)[:32])
    memo = escape(ascii_text(e.remittance))
    return (
        f"<STMTTRN>\r\n<TRNTYPE>{kind}\r\n<DTPOSTED>{_ofx_time(e.booking_date)}\r\n"
        f"<DTUSER>{_ofx_time(e.value_date)}\r\n<TRNAMT>{sign}{_amount(e.cents)}\r\n"
        f"<FITID>{e.bank_reference}\r\n<NAME>{name}\r\n<MEMO>{memo}\r\n</STMTTRN>\r\n"
    )


def ofx(n: int, seed: int = DEFAULT_SEED) -> tuple[bytes, Expected]:
    """An OFX 1.02 SGML bank statement of ``n`` transactions (USD checking account)."""
    rng, items, opening, closing = _setup(n, seed)
    first = date(2025, 1, 1)
    last = items[-1].booking_date if items else first
    account = f"{rng.randrange(10**9, 10**10)}"
    parts = [
        _OFX_HEADER,
        "<OFX>\r\n<SIGNONMSGSRSV1>\r\n<SONRS>\r\n<STATUS>\r\n<CODE>0\r\n<SEVERITY>INFO\r\n"
        "</STATUS>\r\n<DTSERVER>20260101060000.000[-5:EST]\r\n<LANGUAGE>ENG\r\n"
        "<FI>\r\n<ORG>BENCHBANK\r\n<FID>10898\r\n</FI>\r\n</SONRS>\r\n</SIGNONMSGSRSV1>\r\n"
        "<BANKMSGSRSV1>\r\n<STMTTRNRS>\r\n<TRNUID>1\r\n<STATUS>\r\n<CODE>0\r\n"
        "<SEVERITY>INFO\r\n</STATUS>\r\n<STMTRS>\r\n<CURDEF>USD\r\n<BANKACCTFROM>\r\n"
        f"<BANKID>021000021\r\n<ACCTID>{account}\r\n<ACCTTYPE>CHECKING\r\n</BANKACCTFROM>\r\n"
        f"<BANKTRANLIST>\r\n<DTSTART>{_ofx_time(first)}\r\n<DTEND>{_ofx_time(last)}\r\n",
    ]
    parts.extend(_ofx_entry(e) for e in items)
    sign = "-" if closing < 0 else ""
    parts.append(
        "</BANKTRANLIST>\r\n"
        f"<LEDGERBAL>\r\n<BALAMT>{sign}{_amount(closing)}\r\n<DTASOF>{_ofx_time(last)}\r\n"
        "</LEDGERBAL>\r\n"
        f"<AVAILBAL>\r\n<BALAMT>{sign}{_amount(closing)}\r\n<DTASOF>{_ofx_time(last)}\r\n"
        "</AVAILBAL>\r\n</STMTRS>\r\n</STMTTRNRS>\r\n</BANKMSGSRSV1>\r\n</OFX>\r\n"
    )
    return "".join(parts).encode("ascii"), _expected("ofx", n, seed, "USD", opening, closing)


# --- files ---------------------------------------------------------------------------------

def generate(fmt: str, n: int, seed: int = DEFAULT_SEED, *,
             dialect: str = "swift") -> tuple[bytes, Expected]:
    """The document and its expected figures for ``fmt`` (one of ``FORMATS``)."""
    if fmt == "camt":
        return camt053(n, seed)
    if fmt == "mt940":
        return mt940(n, seed, dialect=dialect)
    if fmt == "ofx":
        return ofx(n, seed)
    raise ValueError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")


def file_for(fmt: str, n: int, seed: int = DEFAULT_SEED, *, out: Path = OUT,
             dialect: str = "swift") -> tuple[Path, Expected]:
    """Path of the generated file in ``out`` (written unless already there) and its figures."""
    flavour = f"-{dialect}" if fmt == "mt940" else ""
    stem = f"{fmt}{flavour}-{n}-s{seed}-v{GENERATOR_VERSION}"
    path = out / f"{stem}.{EXTENSIONS[fmt]}"
    meta = out / f"{stem}.json"
    if path.exists() and meta.exists():
        return path, Expected(**json.loads(meta.read_text(encoding="utf-8")))
    data, expected = generate(fmt, n, seed, dialect=dialect)
    out.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    meta.write_text(json.dumps(asdict(expected), indent=1) + "\n", encoding="utf-8")
    return path, expected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--formats", default=",".join(FORMATS),
                        help="comma-separated: camt, mt940, ofx (default: all)")
    parser.add_argument("--sizes", default="100000", help="comma-separated entry counts")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--mt940-dialect", choices=("swift", "german"), default="swift")
    parser.add_argument("--out", type=Path, default=OUT, help="folder (default: bench/out)")
    args = parser.parse_args(argv)
    for fmt in args.formats.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            path, expected = file_for(fmt, size, args.seed, out=args.out,
                                      dialect=args.mt940_dialect)
            print(f"{path}  {path.stat().st_size / 2**20:.1f} MiB  {expected}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
