"""camt entries: one ``Ntry`` element (with its ``TxDtls``) into one ``Entry``.

Version differences handled here (ISO 20022 camt.05x.001.01 to .13):

- ``Sts`` is a plain code up to .07 and ``Sts/Cd`` from .08; FUTR (future) is read as
  pending, with a flag; an entry without any ``Sts`` is taken as booked, with a flag.
- ``TxDtls`` sit under ``NtryDtls`` from .02, directly under ``Ntry`` in .01; the amount of
  a transaction is ``TxDtls/Amt`` from .03, ``TxDtls/AmtDtls/TxAmt/Amt`` before.
- Related parties are ``Dbtr/Nm`` up to .07 and ``Dbtr/Pty/Nm`` from .08; agents are
  ``FinInstnId/BIC`` up to .03 and ``FinInstnId/BICFI`` from .04.
- Charges are a list of ``Chrgs`` records up to .03 (type ``Tp/PrtryCd`` in .01) and
  ``Chrgs/Rcrd`` from .04.

Decisions:

- One ``TxDtls`` (and no batch) puts its details on the entry; several, or a ``Btch`` whose
  ``NbOfTxs`` is not 1, make ``entry.transactions``.
- The counterparty of a credit is the debtor (``Dbtr``/``DbtrAcct``/``DbtrAgt``, else the
  ultimate debtor's name), of a debit the creditor. A reversal (``RvslInd``) reports the
  parties of the original payment, so for it the sides swap. The amount sign always
  follows ``CdtDbtInd`` as written: a reversed credit is a debit.
- Several ``Ustrd`` lines are joined with one space.
- ``AddtlTxInf`` of a lone ``TxDtls`` is the entry's ``additional_info`` when the entry has
  no ``AddtlNtryInf``.
- A charge is signed from the account holder's view like every amount: DBIT negative,
  CRDT positive; a charge record without ``CdtDbtInd`` (always so before .04) is a cost
  to the account holder, so negative.
- ``EndToEndId`` ``NOTPROVIDED`` is no reference: None.
- A proprietary code issued by ``DK`` (German banks: ``NMSC+201+...``) also gives the
  SWIFT code and the GVC.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from typing import cast

from parsers.camt_xml import (
    Notes,
    Scope,
    Subtree,
    amount,
    boolean,
    credit_debit,
    currency_code,
    decimal_value,
    iso_date,
    iso_datetime,
    signed_amount,
    stripped,
)
from parsers.model import (
    BankTransactionCode,
    Charge,
    Entry,
    EntryStatus,
    FxDetails,
    Transaction,
)

_STATUS = {"BOOK": EntryStatus.BOOKED, "PDNG": EntryStatus.PENDING, "INFO": EntryStatus.INFO,
           "FUTR": EntryStatus.PENDING}

NOT_PROVIDED = "NOTPROVIDED"

# German DK convention for BkTxCd/Prtry/Cd: SWIFT code + GVC (+ text key + ...).
DK_ISSUER = "DK"
_DK_CODE = re.compile(r"(N[A-Z0-9]{3})\+(\d{3})(?:\+.*)?")

# Below, ``at`` is the path of an element in the entry's ``Subtree`` ("" for the Ntry) and
# ``under`` the prefix of the paths below an element ("" for the Ntry, else ``at + "/"``).


def dk_codes(proprietary: str | None, issuer: str | None) -> tuple[str | None, str | None]:
    """The SWIFT code and GVC inside a DK proprietary code, else (None, None)."""
    if issuer != DK_ISSUER or proprietary is None:
        return None, None
    match = _DK_CODE.fullmatch(proprietary)
    return (match[1], match[2]) if match else (None, None)


def _status(scope: Scope, tree: Subtree, notes: Notes) -> EntryStatus:
    node = tree.nodes.get("Sts")
    if node is None:
        notes.add("entry_status_assumed", "an entry has no status (Sts): taken as booked",
                  scope.path(tree.root))
        return EntryStatus.BOOKED
    code_node = tree.nodes.get("Sts/Cd")
    code = stripped(code_node if code_node is not None else node)
    status = _STATUS.get(code or "")
    if status is None:
        raise scope.error(code_node if code_node is not None else node,
                          f"expected an entry status BOOK, PDNG, INFO or FUTR, found {code!r}",
                          field="Sts")
    if code == "FUTR":
        notes.add("entry_status_future", "an entry has status FUTR (value in the future): "
                  "taken as pending", scope.path(tree.root))
    return status


def _date_choice(scope: Scope, tree: Subtree, at: str) -> date | None:
    """The date of a ``Dt`` or ``DtTm`` choice at ``at`` (time dropped); None without one."""
    node = tree.nodes.get(at)
    if node is None:
        return None
    day = tree.nodes.get(at + "/Dt")
    if day is not None:
        return iso_date(scope, day)
    moment = tree.nodes.get(at + "/DtTm")
    if moment is not None:
        return iso_datetime(scope, moment).local_date
    raise scope.missing(node, "Dt", "a date (Dt or DtTm)")


def bank_transaction_code(tree: Subtree, at: str) -> BankTransactionCode | None:
    if at not in tree.nodes:
        return None
    get = tree.nodes.get
    return transaction_code(
        stripped(get(at + "/Domn/Cd")), stripped(get(at + "/Domn/Fmly/Cd")),
        stripped(get(at + "/Domn/Fmly/SubFmlyCd")), stripped(get(at + "/Prtry/Cd")),
        stripped(get(at + "/Prtry/Issr")))


def transaction_code(domain: str | None, family: str | None, subfamily: str | None,
                     proprietary: str | None, issuer: str | None,
                     ) -> BankTransactionCode | None:
    """The code of a ``BkTxCd`` from its stripped texts (``Domn/Cd``, ``Domn/Fmly/Cd``,
    ``Domn/Fmly/SubFmlyCd``, ``Prtry/Cd``, ``Prtry/Issr``); None if it says nothing."""
    if proprietary is None:  # an issuer of no code says nothing
        if domain is None and family is None and subfamily is None:
            return None
        return BankTransactionCode(domain=domain, family=family, subfamily=subfamily)
    key = (domain, family, subfamily, proprietary, issuer)
    code = _CODES.get(key)
    if code is None:
        swift, gvc = dk_codes(proprietary, issuer)
        code = BankTransactionCode(swift=swift, gvc=gvc, domain=domain, family=family,
                                   subfamily=subfamily, proprietary=proprietary,
                                   issuer=issuer)
        if len(_CODES) < _CODES_MAX:
            _CODES[key] = code
    return code


# Codes met so far (a file uses a few): the same immutable object for the same code.
_CODES: dict[tuple[str | None, ...], BankTransactionCode] = {}
_CODES_MAX = 4096


def merge_codes(entry: BankTransactionCode | None,
                 tx: BankTransactionCode | None) -> BankTransactionCode | None:
    """The entry's code, completed by the transaction's where the entry says nothing."""
    if entry is None or tx is None:
        return entry or tx
    if entry.domain is None and entry.family is None and entry.subfamily is None:
        entry = replace(entry, domain=tx.domain, family=tx.family, subfamily=tx.subfamily)
    if entry.proprietary is None:
        entry = replace(entry, proprietary=tx.proprietary, issuer=tx.issuer, swift=tx.swift,
                        gvc=tx.gvc)
    return entry


_EXCHANGE_HOLDERS = ("InstdAmt", "TxAmt", "CntrValAmt", "AnncdPstngAmt", "PrtryAmt")


def fx_details(scope: Scope, tree: Subtree, at: str) -> FxDetails | None:
    """``AmtDtls`` at ``at``: the instructed amount and the first currency exchange found."""
    nodes = tree.nodes
    if at not in nodes:
        return None
    instructed_node = nodes.get(at + "/InstdAmt/Amt")
    instructed = amount(scope, instructed_node) if instructed_node is not None else None
    rate = source = target = None
    for holder in _EXCHANGE_HOLDERS:
        xchg = f"{at}/{holder}/CcyXchg/"
        if xchg[:-1] not in nodes:
            continue
        rate_node = nodes.get(xchg + "XchgRate")
        rate = decimal_value(scope, rate_node) if rate_node is not None else None
        source_node, target_node = nodes.get(xchg + "SrcCcy"), nodes.get(xchg + "TrgtCcy")
        source = currency_code(scope, source_node) if source_node is not None else None
        target = currency_code(scope, target_node) if target_node is not None else None
        break
    if instructed is None and rate is None and source is None and target is None:
        return None
    return FxDetails(instructed_amount=instructed, rate=rate, source_currency=source,
                     target_currency=target)


def _charge(scope: Scope, tree: Subtree, under: str, total_only: bool) -> Charge | None:
    get = tree.nodes.get
    amount_node = get(under + ("TtlChrgsAndTaxAmt" if total_only else "Amt"))
    if amount_node is None:
        return None
    credit = credit_debit(scope, get(under + "CdtDbtInd"))
    included_node = get(under + "ChrgInclInd")
    code = (stripped(get(under + "Tp/Cd")) or stripped(get(under + "Tp/Prtry/Id"))
            or stripped(get(under + "Tp/PrtryCd")))
    return Charge(
        amount=signed_amount(scope, amount_node, bool(credit)),
        included=boolean(scope, included_node) if included_node is not None else None,
        code=code,
    )


def charges(scope: Scope, tree: Subtree, under: str) -> tuple[Charge, ...]:
    """The charges below ``under``: ``Chrgs/Rcrd`` (.04+) or ``Chrgs`` records (older).

    A ``Chrgs`` with only a total (``TtlChrgsAndTaxAmt``) becomes one charge of that total.
    """
    out: list[Charge] = []
    for chrgs in tree.group(under + "Chrgs"):
        records = tree.group(chrgs + "/Rcrd") or (chrgs,)
        found = [_charge(scope, tree, record + "/", total_only=False) for record in records]
        if not any(found):
            found = [_charge(scope, tree, chrgs + "/", total_only=True)]
        out.extend(c for c in found if c is not None)
    return tuple(out)


def _party_name(tree: Subtree, at: str) -> str | None:
    return stripped(tree.nodes.get(at + "/Nm")) or stripped(tree.nodes.get(at + "/Pty/Nm"))


def _account_id(tree: Subtree, at: str) -> str | None:
    get = tree.nodes.get
    return (stripped(get(at + "/Id/IBAN")) or stripped(get(at + "/Id/Othr/Id"))
            or stripped(get(at + "/Id/BBAN")) or stripped(get(at + "/Id/PrtryAcct/Id"))
            or stripped(get(at + "/Id/UPIC")))


def _agent_bic(tree: Subtree, at: str) -> str | None:
    get = tree.nodes.get
    return stripped(get(at + "/FinInstnId/BICFI")) or stripped(get(at + "/FinInstnId/BIC"))


def _remittance(tree: Subtree, at: str) -> tuple[str | None, str | None]:
    get = tree.nodes.get
    lines = []
    for path in tree.group(at + "/Ustrd"):
        line = stripped(get(path))
        if line:
            lines.append(line)
    reference = None
    for strd in tree.group(at + "/Strd"):
        reference = stripped(get(strd + "/CdtrRefInf/Ref"))
        if reference:
            break
    return (" ".join(lines) or None), reference


def transaction(scope: Scope, tree: Subtree, at: str, entry_credit: bool,
                reversal: bool) -> Transaction:
    """The ``TxDtls`` at ``at``; its direction defaults to the entry's."""
    get = tree.nodes.get
    under = at + "/"
    credit = credit_debit(scope, get(under + "CdtDbtInd"))
    credit = entry_credit if credit is None else credit
    amount_node = get(under + "Amt")
    if amount_node is None:
        amount_node = get(under + "AmtDtls/TxAmt/Amt")
    money = signed_amount(scope, amount_node, credit) if amount_node is not None else None
    end_to_end = stripped(get(under + "Refs/EndToEndId"))
    # The parties of a reversal are those of the payment reversed. Banks differ on which
    # side they report a returned payment's party under: where a reversal has nothing on
    # the expected side, the original debtor (or creditor) is on the other one.
    side, agent = ("Dbtr", "DbtrAgt") if credit != reversal else ("Cdtr", "CdtrAgt")
    parties = under + "RltdPties/"
    if reversal and not _has_party(tree, parties + side):
        other = "Cdtr" if side == "Dbtr" else "Dbtr"
        if _has_party(tree, parties + other):
            side, agent = other, other + "Agt"
    remittance, creditor_reference = _remittance(tree, under + "RmtInf")
    return Transaction(
        amount=money,
        bank_reference=stripped(get(under + "Refs/AcctSvcrRef")),
        end_to_end_id=None if end_to_end == NOT_PROVIDED else end_to_end,
        mandate_id=stripped(get(under + "Refs/MndtId")),
        counterparty_name=(_party_name(tree, parties + side)
                           or _party_name(tree, parties + "Ultmt" + side)),
        counterparty_account=_account_id(tree, parties + side + "Acct"),
        counterparty_bic=_agent_bic(tree, under + "RltdAgts/" + agent),
        remittance=remittance,
        creditor_reference=creditor_reference,
        bank_transaction_code=bank_transaction_code(tree, under + "BkTxCd"),
        fx=fx_details(scope, tree, under + "AmtDtls"),
        charges=charges(scope, tree, under),
    )


def _has_party(tree: Subtree, at: str) -> bool:
    """True if the related party at ``at`` (``.../Dbtr``) has a name or an account."""
    return bool(_party_name(tree, at) or _account_id(tree, at + "Acct"))


def _batch_size(scope: Scope, tree: Subtree, at: str) -> int | None:
    node = tree.nodes.get(at + "/NbOfTxs")
    if node is None:
        return None
    raw = stripped(node) or ""
    if not (raw.isascii() and raw.isdigit()):
        raise scope.error(node, f"expected a number of transactions, found {raw!r}")
    return int(raw)


def details_and_batches(tree: Subtree) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The paths of the entry's ``TxDtls`` and ``Btch``: the same for every entry of one
    shape, so worked out once a shape."""
    known = tree.memo.get("details")
    if known is not None:
        return cast(tuple[tuple[str, ...], tuple[str, ...]], known)
    details = list(tree.group("TxDtls"))  # directly in the Ntry in .01
    batches = list(tree.group("Btch"))
    for holder in tree.group("NtryDtls"):
        details.extend(tree.group(holder + "/TxDtls"))
        batches.extend(tree.group(holder + "/Btch"))
    found = (tuple(details), tuple(batches))
    tree.memo["details"] = found
    return found


def entry(scope: Scope, tree: Subtree, notes: Notes) -> Entry:
    """One ``Ntry`` element (complete, with its subtree) as an ``Entry``."""
    get = tree.nodes.get
    amount_node = get("Amt")
    if amount_node is None:
        raise scope.missing(tree.root, "Amt", "the entry amount")
    credit = credit_debit(scope, get("CdtDbtInd"))
    if credit is None:
        raise scope.missing(tree.root, "CdtDbtInd", "CRDT or DBIT")
    reversal_node = get("RvslInd")
    reversal = boolean(scope, reversal_node) if reversal_node is not None else False
    details, batches = details_and_batches(tree)
    money = signed_amount(scope, amount_node, credit)
    booking_date = _date_choice(scope, tree, "BookgDt")
    value_date = _date_choice(scope, tree, "ValDt")
    status = _status(scope, tree, notes)
    bank_reference = stripped(get("AcctSvcrRef"))
    customer_reference = stripped(get("NtryRef"))
    code = bank_transaction_code(tree, "BkTxCd")
    fx = fx_details(scope, tree, "AmtDtls")
    entry_charges = charges(scope, tree, "")
    additional_info = stripped(get("AddtlNtryInf"))
    is_batch = len(details) > 1
    if batches and not is_batch:
        is_batch = any(_batch_size(scope, tree, at) != 1 for at in batches)
    txs = tuple([transaction(scope, tree, at, credit, reversal) for at in details])
    if is_batch or not txs:
        return Entry(
            amount=money, booking_date=booking_date, value_date=value_date, status=status,
            reversal=reversal, bank_reference=bank_reference,
            customer_reference=customer_reference, bank_transaction_code=code, fx=fx,
            charges=entry_charges, transactions=txs if is_batch else (),
            additional_info=additional_info,
        )
    tx = txs[0]  # a lone transaction: its details go on the entry
    return Entry(
        amount=money, booking_date=booking_date, value_date=value_date, status=status,
        reversal=reversal,
        bank_reference=bank_reference or tx.bank_reference,
        customer_reference=customer_reference,
        bank_transaction_code=merge_codes(code, tx.bank_transaction_code),
        counterparty_name=tx.counterparty_name,
        counterparty_account=tx.counterparty_account,
        counterparty_bic=tx.counterparty_bic,
        end_to_end_id=tx.end_to_end_id,
        mandate_id=tx.mandate_id,
        remittance=tx.remittance,
        creditor_reference=tx.creditor_reference,
        fx=tx.fx or fx,
        charges=entry_charges or tx.charges,
        additional_info=additional_info or stripped(get(details[0] + "/AddtlTxInf")),
    )
