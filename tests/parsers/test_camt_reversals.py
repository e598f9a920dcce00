"""camt reversals (``RvslInd``): the counterparty is the party of the payment reversed.

The expected side is the debtor for a reversed credit (money goes back to who sent it) and
the creditor for a reversed debit; banks that report the returned payment's party on the
other side (a Finnish returned direct debit names its Dbtr on a CRDT reversal) still give
the counterparty, name and account.
"""

from __future__ import annotations

import pytest

from parsers import camt
from tests.corpus import CORPUS
from tests.parsers.test_camt import ACCT, document


def reversal(mark: str, parties: str) -> bytes:
    entry = (f'<Ntry><Amt Ccy="EUR">40.00</Amt><CdtDbtInd>{mark}</CdtDbtInd>'
             "<RvslInd>true</RvslInd><Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>2024-03-14</Dt>"
             "</BookgDt><BkTxCd/><NtryDtls><TxDtls><Refs><EndToEndId>E2E-1</EndToEndId>"
             f"</Refs><RltdPties>{parties}</RltdPties></TxDtls></NtryDtls></Ntry>")
    return document(ACCT + entry)


def party(role: str, name: str, iban: str) -> str:
    return (f"<{role}><Pty><Nm>{name}</Nm></Pty></{role}>"
            f"<{role}Acct><Id><IBAN>{iban}</IBAN></Id></{role}Acct>")


PAYER = party("Dbtr", "Zhang Wei 张伟", "NL91ABNA0417164300")
PAYEE = party("Cdtr", "Muster GmbH", "DE89370400440532013000")


@pytest.mark.parametrize(("mark", "parties", "name", "account"), [
    # A returned incoming payment (DBIT reversal): the original debtor gets it back.
    ("DBIT", PAYER + PAYEE, "Zhang Wei 张伟", "NL91ABNA0417164300"),
    # A returned outgoing payment (CRDT reversal): the original creditor sends it back.
    ("CRDT", PAYER + PAYEE, "Muster GmbH", "DE89370400440532013000"),
    # Only the other side reported: that party is the counterparty, not nobody.
    ("CRDT", PAYER, "Zhang Wei 张伟", "NL91ABNA0417164300"),
    ("DBIT", PAYEE, "Muster GmbH", "DE89370400440532013000"),
])
def test_a_reversal_keeps_its_counterparty(mark: str, parties: str, name: str,
                                           account: str) -> None:
    (statement,) = camt.parse(reversal(mark, parties), source="rvsl.xml")
    (entry,) = statement.entries
    assert entry.reversal
    assert (entry.counterparty_name, entry.counterparty_account) == (name, account)


def test_corpus_finnish_returned_direct_debits_name_their_payers() -> None:
    name = "camt/moov-iso20022__FI_camt_054_sample.xml.xml"
    if not (CORPUS / name).exists():
        pytest.skip("the shared corpus is not here")
    statements = camt.parse((CORPUS / name).read_bytes(), source=name)
    (returned,) = [e for s in statements for e in s.entries if e.reversal]
    assert [t.counterparty_name for t in returned.transactions] == [
        "PAYERS NAME3", "PAYERS NAME4"]
