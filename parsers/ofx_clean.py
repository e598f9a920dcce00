"""OFX layer 3: repairs of the element tree, so that every reader sees a regular document.

Each repair is one that real bank files need (see the corpus README) and each is
reported: ``clean_document`` through the file's ``Repairs``, ``clean_statement`` as flags
of that statement. No amount, date or reference is ever changed, only where or how it
is written.
"""

from __future__ import annotations

from collections.abc import Callable

from parsers.model import Flag
from parsers.ofx_tree import Element, Repairs
from parsers.ofx_values import decimal_comma

_AMOUNTS = frozenset({"TRNAMT", "BALAMT", "CURRATE"})
_BALANCES = ("LEDGERBAL", "AVAILBAL")
_ACCOUNT_FROM = {"STMTRS": "BANKACCTFROM", "CCSTMTRS": "CCACCTFROM"}


def clean_document(root: Element, repairs: Repairs) -> None:
    """Drop empty leaves, read decimal commas, upper-case TRNTYPE; everywhere in ``root``."""
    for element in root.iter():
        clean_element(element, repairs.add)


def clean_element(element: Element, add: Callable[[str, str, int | None], None]) -> None:
    """``clean_document`` for the children of one element; each repair told to ``add``
    (``Repairs.add``: what was done, an example, the line)."""
    kept = []
    for child in element.children:
        if child.text == "":
            add("empty elements ignored", f"<{child.tag}>", child.line)
            continue
        if child.tag in _AMOUNTS and child.text is not None:
            fixed = decimal_comma(child.text)
            if fixed is not None:
                add("amounts with a decimal comma read with a decimal point",
                    f"{child.tag} {child.text}", child.line)
                child.text = fixed
        if child.tag == "TRNTYPE" and child.text and child.text != child.text.upper():
            add("TRNTYPE values upper-cased", child.text, child.line)
            child.text = child.text.upper()
        kept.append(child)
    element.children = kept


def clean_statement(statement: Element) -> tuple[Flag, ...]:
    """Repairs inside one STMTRS/CCSTMTRS: misplaced account and balances, empty balances,
    split transaction lists."""
    repairs = Repairs()
    tranlists = statement.all("BANKTRANLIST")
    account = statement.first(_ACCOUNT_FROM.get(statement.tag, ""))
    if account is not None and tranlists:
        first_list = statement.children.index(tranlists[0])
        if statement.children.index(account) > first_list:
            # A reader looking for the first ACCTID would take a BANKACCTTO's (ofxparse does).
            statement.children.remove(account)
            statement.children.insert(first_list, account)
            repairs.note(f"{account.tag} came after BANKTRANLIST; read as if before it, where "
                         "OFX puts it", account.line)
    for tranlist in tranlists:
        for tag in _BALANCES:
            for misplaced in tranlist.all(tag):
                tranlist.children.remove(misplaced)
                statement.children.append(misplaced)
                repairs.note(f"{tag} found inside BANKTRANLIST; read as the statement's "
                             f"{tag}", misplaced.line)
    if len(tranlists) > 1:
        repairs.note(f"{len(tranlists)} BANKTRANLIST aggregates in one statement read as one "
                     "list, the period spanning all of them", tranlists[1].line)
    for tag in _BALANCES:
        for balance in statement.all(tag):
            if balance.value("BALAMT") is None:
                statement.children.remove(balance)
                repairs.note(f"{tag} without an amount (empty BALAMT) ignored: no "
                             f"{'closing' if tag == 'LEDGERBAL' else 'available'} balance",
                             balance.line)
    return repairs.flags()
