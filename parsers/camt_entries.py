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

from parsers.camt_xml import (
    Element,
    Notes,
    Scope,
    amount,
    boolean,
    child,
    children,
    credit_debit,
    currency_code,
    date_choice,
    decimal_value,
    signed,
    text,
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


def dk_codes(proprietary: str | None, issuer: str | None) -> tuple[str | None, str | None]:
    """The SWIFT code and GVC inside a DK proprietary code, else (None, None)."""
    if issuer != DK_ISSUER or proprietary is None:
        return None, None
    match = _DK_CODE.fullmatch(proprietary)
    return (match[1], match[2]) if match else (None, None)


def _status(scope: Scope, ntry: Element, notes: Notes) -> EntryStatus:
    node = child(ntry, "Sts")
    if node is None:
        notes.add("entry_status_assumed", "an entry has no status (Sts): taken as booked",
                  scope.path(ntry))
        return EntryStatus.BOOKED
    code_node = child(node, "Cd")
    code = text(code_node) if code_node is not None else text(node)
    status = _STATUS.get(code or "")
    if status is None:
        raise scope.error(code_node if code_node is not None else node,
                          f"expected an entry status BOOK, PDNG, INFO or FUTR, found {code!r}",
                          field="Sts")
    if code == "FUTR":
        notes.add("entry_status_future", "an entry has status FUTR (value in the future): "
                  "taken as pending", scope.path(ntry))
    return status


def bank_transaction_code(scope: Scope, node: Element | None) -> BankTransactionCode | None:
    if node is None:
        return None
    domain = family = subfamily = proprietary = issuer = None
    domn = child(node, "Domn")
    if domn is not None:
        domain = text(domn, "Cd")
        family = text(domn, "Fmly", "Cd")
        subfamily = text(domn, "Fmly", "SubFmlyCd")
    prtry = child(node, "Prtry")
    proprietary = text(prtry, "Cd")
    if proprietary is not None:  # an issuer of no code says nothing
        issuer = text(prtry, "Issr")
    swift, gvc = dk_codes(proprietary, issuer)
    code = BankTransactionCode(swift=swift, gvc=gvc, domain=domain, family=family,
                               subfamily=subfamily, proprietary=proprietary, issuer=issuer)
    return None if code == BankTransactionCode() else code


def _merge_codes(entry: BankTransactionCode | None,
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


def fx_details(scope: Scope, node: Element | None) -> FxDetails | None:
    """``AmtDtls``: the instructed amount and the first currency exchange found."""
    if node is None:
        return None
    instructed_node = child(node, "InstdAmt", "Amt")
    instructed = amount(scope, instructed_node) if instructed_node is not None else None
    rate = source = target = None
    for holder in ("InstdAmt", "TxAmt", "CntrValAmt", "AnncdPstngAmt", "PrtryAmt"):
        xchg = child(node, holder, "CcyXchg")
        if xchg is None:
            continue
        rate_node = child(xchg, "XchgRate")
        rate = decimal_value(scope, rate_node) if rate_node is not None else None
        source_node, target_node = child(xchg, "SrcCcy"), child(xchg, "TrgtCcy")
        source = currency_code(scope, source_node) if source_node is not None else None
        target = currency_code(scope, target_node) if target_node is not None else None
        break
    fx = FxDetails(instructed_amount=instructed, rate=rate, source_currency=source,
                   target_currency=target)
    return None if fx == FxDetails() else fx


def _charge(scope: Scope, record: Element, total_only: bool) -> Charge | None:
    amount_node = child(record, "TtlChrgsAndTaxAmt" if total_only else "Amt")
    if amount_node is None:
        return None
    credit = credit_debit(scope, record)
    included_node = child(record, "ChrgInclInd")
    code = (text(record, "Tp", "Cd") or text(record, "Tp", "Prtry", "Id")
            or text(record, "Tp", "PrtryCd"))
    return Charge(
        amount=signed(amount(scope, amount_node), bool(credit)),
        included=boolean(scope, included_node) if included_node is not None else None,
        code=code,
    )


def charges(scope: Scope, parent: Element) -> tuple[Charge, ...]:
    """The charges under ``parent``: ``Chrgs/Rcrd`` (.04+) or ``Chrgs`` records (older).

    A ``Chrgs`` with only a total (``TtlChrgsAndTaxAmt``) becomes one charge of that total.
    """
    out: list[Charge] = []
    for chrgs in children(parent, "Chrgs"):
        records = list(children(chrgs, "Rcrd"))
        found = [_charge(scope, r, total_only=False) for r in records or [chrgs]]
        if not any(found):
            found = [_charge(scope, chrgs, total_only=True)]
        out.extend(c for c in found if c is not None)
    return tuple(out)


def _party_name(party: Element | None) -> str | None:
    return text(party, "Nm") or text(party, "Pty", "Nm")


def _account_id(account: Element | None) -> str | None:
    ident = child(account, "Id")
    if ident is None:
        return None
    return (text(ident, "IBAN") or text(ident, "Othr", "Id") or text(ident, "BBAN")
            or text(ident, "PrtryAcct", "Id") or text(ident, "UPIC"))


def _agent_bic(agent: Element | None) -> str | None:
    institution = child(agent, "FinInstnId")
    return text(institution, "BICFI") or text(institution, "BIC")


def _remittance(rmt: Element | None) -> tuple[str | None, str | None]:
    if rmt is None:
        return None, None
    lines = [line for line in (text(u) for u in children(rmt, "Ustrd")) if line]
    reference = None
    for strd in children(rmt, "Strd"):
        reference = text(strd, "CdtrRefInf", "Ref")
        if reference:
            break
    return (" ".join(lines) or None), reference


def transaction(scope: Scope, tx: Element, entry_credit: bool, reversal: bool) -> Transaction:
    """One ``TxDtls``; its direction defaults to the entry's."""
    credit = credit_debit(scope, tx)
    credit = entry_credit if credit is None else credit
    amount_node = child(tx, "Amt")
    if amount_node is None:
        amount_node = child(tx, "AmtDtls", "TxAmt", "Amt")
    money = signed(amount(scope, amount_node), credit) if amount_node is not None else None
    refs = child(tx, "Refs")
    end_to_end = text(refs, "EndToEndId")
    # The parties of a reversal are those of the payment reversed.
    side, agent = ("Dbtr", "DbtrAgt") if credit != reversal else ("Cdtr", "CdtrAgt")
    parties = child(tx, "RltdPties")
    remittance, creditor_reference = _remittance(child(tx, "RmtInf"))
    return Transaction(
        amount=money,
        bank_reference=text(refs, "AcctSvcrRef"),
        end_to_end_id=None if end_to_end == NOT_PROVIDED else end_to_end,
        mandate_id=text(refs, "MndtId"),
        counterparty_name=(_party_name(child(parties, side))
                           or _party_name(child(parties, f"Ultmt{side}"))),
        counterparty_account=_account_id(child(parties, f"{side}Acct")),
        counterparty_bic=_agent_bic(child(tx, "RltdAgts", agent)),
        remittance=remittance,
        creditor_reference=creditor_reference,
        bank_transaction_code=bank_transaction_code(scope, child(tx, "BkTxCd")),
        fx=fx_details(scope, child(tx, "AmtDtls")),
        charges=charges(scope, tx),
    )


def _batch_size(scope: Scope, batch: Element) -> int | None:
    node = child(batch, "NbOfTxs")
    if node is None:
        return None
    raw = text(node) or ""
    if not raw.isdigit():
        raise scope.error(node, f"expected a number of transactions, found {raw!r}")
    return int(raw)


def entry(scope: Scope, ntry: Element, notes: Notes) -> Entry:
    """One ``Ntry`` element (complete, with its subtree) as an ``Entry``."""
    amount_node = child(ntry, "Amt")
    if amount_node is None:
        raise scope.missing(ntry, "Amt", "the entry amount")
    credit = credit_debit(scope, ntry)
    if credit is None:
        raise scope.missing(ntry, "CdtDbtInd", "CRDT or DBIT")
    reversal_node = child(ntry, "RvslInd")
    reversal = boolean(scope, reversal_node) if reversal_node is not None else False
    booking, value = child(ntry, "BookgDt"), child(ntry, "ValDt")
    details: list[Element] = []
    batches: list[Element] = []
    for holder in [ntry, *children(ntry, "NtryDtls")]:
        details.extend(children(holder, "TxDtls"))
        batches.extend(children(holder, "Btch"))
    base = Entry(
        amount=signed(amount(scope, amount_node), credit),
        booking_date=date_choice(scope, booking) if booking is not None else None,
        value_date=date_choice(scope, value) if value is not None else None,
        status=_status(scope, ntry, notes),
        reversal=reversal,
        bank_reference=text(ntry, "AcctSvcrRef"),
        customer_reference=text(ntry, "NtryRef"),
        bank_transaction_code=bank_transaction_code(scope, child(ntry, "BkTxCd")),
        fx=fx_details(scope, child(ntry, "AmtDtls")),
        charges=charges(scope, ntry),
        additional_info=text(ntry, "AddtlNtryInf"),
    )
    is_batch = len(details) > 1 or any(_batch_size(scope, b) != 1 for b in batches)
    txs = tuple(transaction(scope, tx, credit, reversal) for tx in details)
    if is_batch:
        return replace(base, transactions=txs)
    if not txs:
        return base
    tx = txs[0]
    return replace(
        base,
        bank_reference=base.bank_reference or tx.bank_reference,
        bank_transaction_code=_merge_codes(base.bank_transaction_code,
                                           tx.bank_transaction_code),
        counterparty_name=tx.counterparty_name,
        counterparty_account=tx.counterparty_account,
        counterparty_bic=tx.counterparty_bic,
        end_to_end_id=tx.end_to_end_id,
        mandate_id=tx.mandate_id,
        remittance=tx.remittance,
        creditor_reference=tx.creditor_reference,
        fx=tx.fx or base.fx,
        charges=base.charges or tx.charges,
        additional_info=base.additional_info or text(details[0], "AddtlTxInf"),
    )
