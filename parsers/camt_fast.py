"""The usual camt entry read by a plan made once for its shape.

``parsers.camt_entries.entry`` finds each value of an ``Ntry`` by its path in a map of
the entry's subtree. Entries of one file mostly share a few shapes (``camt_xml.Layout``),
so for an entry with one ``TxDtls`` or none (and no ``Btch``) this module works out once
per shape which nodes hold the texts the entry is made of (``Plan``), and then reads each
entry of that shape by taking those texts in one go, with no map and no path built.

It gives exactly what ``camt_entries.entry`` gives, or None where it would not: for a
shape it does not read (a batch, several ``TxDtls``, an entry without ``Amt`` or
``CdtDbtInd``, a date element with neither ``Dt`` nor ``DtTm``) and for any value that is
not in its plain form (an amount, date, code or indicator that ``camt_entries`` would
refuse or repair). The caller then reads the entry with ``camt_entries.entry``, which
says what is wrong. Typed values go through the same ``camt_xml`` readers; the rarer
parts (``AmtDtls``, ``Chrgs``, ``DtTm``) through ``camt_entries`` itself on the entry's
map, made only for them. Flags are added only once the entry is read, so an entry given up
half way adds none. A property test holds the two readers to the same results
(tests/parsers/test_camt_fast.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from operator import attrgetter, itemgetter
from typing import Any

from parsers.camt_entries import (
    NOT_PROVIDED,
    charges,
    details_and_batches,
    fx_details,
    merge_codes,
    transaction_code,
)
from parsers.camt_xml import (
    Element,
    Layout,
    Notes,
    Scope,
    iso_date,
    iso_datetime,
    signed_amount,
)
from parsers.errors import ParseError
from parsers.model import Entry, EntryStatus

_TEXT = attrgetter("text")

_CREDIT = {"CRDT": True, "DBIT": False}
_BOOLEAN = {"true": True, "1": True, "false": False, "0": False}
_STATUS = {"BOOK": EntryStatus.BOOKED, "PDNG": EntryStatus.PENDING, "INFO": EntryStatus.INFO,
           "FUTR": EntryStatus.PENDING}

_CODE = ("BkTxCd/Domn/Cd", "BkTxCd/Domn/Fmly/Cd", "BkTxCd/Domn/Fmly/SubFmlyCd",
         "BkTxCd/Prtry/Cd", "BkTxCd/Prtry/Issr")
# The texts of the entry itself, in the order ``Plan.spread`` gives them.
_ENTRY_TEXTS = ("CdtDbtInd", "RvslInd", "Sts", "Sts/Cd", "AcctSvcrRef", "NtryRef",
                "AddtlNtryInf", *_CODE)


def _party(side: str) -> tuple[str, ...]:
    """The texts of one side's party (``Dbtr`` or ``Cdtr``), in the order ``camt_entries``
    tries them: name (2), ultimate party's name (2), account (5), agent's BIC (2)."""
    return (f"RltdPties/{side}/Nm", f"RltdPties/{side}/Pty/Nm",
            f"RltdPties/Ultmt{side}/Nm", f"RltdPties/Ultmt{side}/Pty/Nm",
            f"RltdPties/{side}Acct/Id/IBAN", f"RltdPties/{side}Acct/Id/Othr/Id",
            f"RltdPties/{side}Acct/Id/BBAN", f"RltdPties/{side}Acct/Id/PrtryAcct/Id",
            f"RltdPties/{side}Acct/Id/UPIC",
            f"RltdAgts/{side}Agt/FinInstnId/BICFI", f"RltdAgts/{side}Agt/FinInstnId/BIC")


# The texts of the lone ``TxDtls``, below it, in the order ``Plan.tx_spread`` gives them.
_TX_TEXTS = ("CdtDbtInd", "Refs/AcctSvcrRef", "Refs/EndToEndId", "Refs/MndtId", "AddtlTxInf",
             *_CODE, *_party("Dbtr"), *_party("Cdtr"))


@dataclass(frozen=True, slots=True)
class Plan:
    """Where the texts and nodes of entries of one shape are.

    ``take`` picks the nodes whose texts are read; of their stripped texts, with None
    appended (for the texts the shape lacks), ``spread`` gives those of ``_ENTRY_TEXTS``
    and ``tx_spread`` those of ``_TX_TEXTS``, in order, and the slices the ``Ustrd`` lines
    and the creditor references. Nodes are numbered in document order (-1: none).
    """

    take: itemgetter[Any]
    spread: itemgetter[Any]
    tx_spread: itemgetter[Any]
    remittance: slice
    references: slice
    amount: int  # the entry's Amt
    booking: tuple[int, int]  # BookgDt/Dt and BookgDt/DtTm
    value: tuple[int, int]  # ValDt/Dt and ValDt/DtTm
    status: bool  # the entry has Sts
    status_code: bool  # the entry has Sts/Cd
    reversal: bool  # the entry has RvslInd
    tx: str  # path of the lone TxDtls ("": none)
    tx_credit: bool  # the TxDtls has CdtDbtInd
    tx_amount: int  # the TxDtls's Amt, else its AmtDtls/TxAmt/Amt
    rare: bool  # the entry has AmtDtls or Chrgs (read from its map)
    entry_fx: bool
    entry_charges: bool
    tx_fx: bool
    tx_charges: bool


def _date_nodes(index: dict[str, int], at: str) -> tuple[int, int] | None:
    """The ``Dt`` and ``DtTm`` of the date element ``at``; None when it is there with
    neither (``camt_entries`` refuses that)."""
    if at not in index:
        return -1, -1
    day, moment = index.get(at + "/Dt", -1), index.get(at + "/DtTm", -1)
    return None if day < 0 and moment < 0 else (day, moment)


def plan(nodes: list[Element], layout: Layout) -> Plan | None:
    """The plan of entries shaped as ``nodes`` (laid out as ``layout``); None for a shape
    that ``entry`` does not read."""
    tree = layout.subtree(nodes)
    details, batches = details_and_batches(tree)
    index = {path: number for number, path in enumerate(layout.paths)}
    if len(details) > 1 or batches or "Amt" not in index or "CdtDbtInd" not in index:
        return None
    booking, value = _date_nodes(index, "BookgDt"), _date_nodes(index, "ValDt")
    if booking is None or value is None:
        return None
    tx = details[0] if details else ""
    under = tx + "/"
    texts = [*_ENTRY_TEXTS, *(under + path for path in _TX_TEXTS)]
    remittance = list(tree.group(under + "RmtInf/Ustrd")) if tx else []
    references = [ref for strd in tree.group(under + "RmtInf/Strd")
                  if (ref := strd + "/CdtrRefInf/Ref") in index] if tx else []
    present = [path for path in texts if path in index]
    # The root's text first: ``take`` then picks two nodes or more, so gives a tuple.
    taken = [0, *(index[path] for path in (*present, *remittance, *references))]
    none = len(taken)  # where the None appended to the texts is
    where = {path: number for number, path in enumerate(present, start=1)}
    spread = [where.get(path, none) for path in texts]
    start = 1 + len(present)
    entry_fx, entry_charges = "AmtDtls" in index, bool(tree.group("Chrgs"))
    tx_fx = bool(tx) and under + "AmtDtls" in index
    tx_charges = bool(tx) and bool(tree.group(under + "Chrgs"))
    return Plan(
        take=itemgetter(*taken),
        spread=itemgetter(*spread[:len(_ENTRY_TEXTS)]),
        tx_spread=itemgetter(*spread[len(_ENTRY_TEXTS):]),
        remittance=slice(start, start + len(remittance)),
        references=slice(start + len(remittance), none),
        amount=index["Amt"],
        booking=booking,
        value=value,
        status="Sts" in index,
        status_code="Sts/Cd" in index,
        reversal="RvslInd" in index,
        tx=tx,
        tx_credit=under + "CdtDbtInd" in index,
        tx_amount=index.get(under + "Amt", index.get(under + "AmtDtls/TxAmt/Amt", -1)),
        rare=entry_fx or entry_charges or tx_fx or tx_charges,
        entry_fx=entry_fx,
        entry_charges=entry_charges,
        tx_fx=tx_fx,
        tx_charges=tx_charges,
    )


_NO_PLAN = "no plan"  # in a layout's memo: its shape is not read here


def _day(scope: Scope, nodes: list[Element], where: tuple[int, int]) -> date | None:
    """The date of a ``Dt``/``DtTm`` choice (``where`` as in ``Plan.booking``)."""
    day, moment = where
    if day >= 0:
        return iso_date(scope, nodes[day])
    if moment >= 0:
        return iso_datetime(scope, nodes[moment]).local_date
    return None


def entry(scope: Scope, nodes: list[Element], layout: Layout, notes: Notes) -> Entry | None:
    """The ``Ntry`` whose nodes (in document order) are ``nodes``, laid out as ``layout``,
    as ``camt_entries.entry`` reads it; None where this module does not read it."""
    found = layout.memo.get("fast")
    if found is None:
        found = layout.memo["fast"] = plan(nodes, layout) or _NO_PLAN
    if not isinstance(found, Plan):
        return None
    try:
        return _entry(scope, nodes, layout, found, notes)
    except ParseError:
        return None


_ASSUMED = ("entry_status_assumed", "an entry has no status (Sts): taken as booked")
_FUTURE = ("entry_status_future",
           "an entry has status FUTR (value in the future): taken as pending")


def _entry(scope: Scope, nodes: list[Element], layout: Layout, plan: Plan,
           notes: Notes) -> Entry | None:
    taken: list[str | None] = [
        (text.strip() or None) if text else None for text in map(_TEXT, plan.take(nodes))]
    taken.append(None)
    (credit_code, reversal_text, status_text, status_code, bank_reference, customer_reference,
     additional_info, *entry_code) = plan.spread(taken)
    credit = _CREDIT.get(credit_code)
    reversal = _BOOLEAN.get(reversal_text) if plan.reversal else False
    if credit is None or reversal is None:
        return None
    money = signed_amount(scope, nodes[plan.amount], credit)
    booking_date = _day(scope, nodes, plan.booking)
    value_date = _day(scope, nodes, plan.value)
    status = EntryStatus.BOOKED
    note: tuple[str, str] | None = _ASSUMED
    if plan.status:
        code = status_code if plan.status_code else status_text
        found = _STATUS.get(code) if code is not None else None
        if found is None:
            return None
        status, note = found, _FUTURE if code == "FUTR" else None
    bank_code = transaction_code(*entry_code)
    fx = entry_charges = tx_fx = tx_charges = None
    if plan.rare:  # the rarer parts, read from the entry's map
        tree = layout.subtree(nodes)
        fx = fx_details(scope, tree, "AmtDtls") if plan.entry_fx else None
        entry_charges = charges(scope, tree, "") if plan.entry_charges else ()
        tx_fx = fx_details(scope, tree, plan.tx + "/AmtDtls") if plan.tx_fx else None
        tx_charges = charges(scope, tree, plan.tx + "/") if plan.tx_charges else ()
    if not plan.tx:
        entry = Entry(
            amount=money, booking_date=booking_date, value_date=value_date, status=status,
            reversal=reversal, bank_reference=bank_reference,
            customer_reference=customer_reference, bank_transaction_code=bank_code, fx=fx,
            charges=entry_charges or (), additional_info=additional_info)
    else:
        (tx_credit_code, tx_reference, end_to_end_id, mandate_id, tx_info,
         *rest) = plan.tx_spread(taken)
        tx_credit = _CREDIT.get(tx_credit_code) if plan.tx_credit else credit
        if tx_credit is None:
            return None
        if plan.tx_amount >= 0:  # not kept (the entry's amount is), but it must be good
            signed_amount(scope, nodes[plan.tx_amount], tx_credit)
        tx_code, debtor, creditor = rest[:5], rest[5:16], rest[16:]
        party, other = (debtor, creditor) if tx_credit != reversal else (creditor, debtor)
        if reversal and not _has_party(party) and _has_party(other):
            party = other  # (camt_entries.transaction says why)
        name, pty_name, ultimate_name, ultimate_pty_name = party[:4]
        lines = [line for line in taken[plan.remittance] if line]
        reference = next((ref for ref in taken[plan.references] if ref), None)
        entry = Entry(
            amount=money, booking_date=booking_date, value_date=value_date, status=status,
            reversal=reversal,
            bank_reference=bank_reference or tx_reference,
            customer_reference=customer_reference,
            bank_transaction_code=merge_codes(bank_code, transaction_code(*tx_code)),
            counterparty_name=name or pty_name or ultimate_name or ultimate_pty_name,
            counterparty_account=party[4] or party[5] or party[6] or party[7] or party[8],
            counterparty_bic=party[9] or party[10],
            end_to_end_id=None if end_to_end_id == NOT_PROVIDED else end_to_end_id,
            mandate_id=mandate_id,
            remittance=" ".join(lines) or None,
            creditor_reference=reference,
            fx=tx_fx or fx,
            charges=entry_charges or tx_charges or (),
            additional_info=additional_info or tx_info,
        )
    if note is not None:
        notes.add(note[0], note[1], scope.root_path)
    return entry


def _has_party(party: tuple[str | None, ...]) -> bool:
    """True if the party (its texts as ``_party`` lists them) has a name or an account."""
    return bool(party[0] or party[1] or party[4] or party[5] or party[6] or party[7]
                or party[8])
