"""Who paid: the customer behind a payer's IBAN or name.

Known IBANs identify a customer outright. Names are compared after normalisation (case,
diacritics, legal forms, word order: see ``normalize.name_tokens``) with ``rapidfuzz``;
candidates come from an index of the first four letters of each name word, so a name is
compared only with customers that share a word (or the start of one, for names the bank
cut short), never with all of them.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from rapidfuzz import fuzz

from matching.invoices import Customer
from matching.normalize import compact, name_tokens

NAME_PREFIX = 4
_MAX_POSTING = 250      # a word shared by more customers than this says nothing
_MIN_SCORE = 70.0
_COMPARED = 8           # customers compared in full with one payer name
_SEEN_MAX = 200_000     # payers remembered


@dataclass(frozen=True, slots=True)
class PayerMatch:
    customer_id: str
    score: float        # 0..100
    how: str            # "iban", "name" or "alias"
    detail: str


class PayerIndex:
    def __init__(self, customers: Iterable[Customer]) -> None:
        self._by_iban: dict[str, set[str]] = defaultdict(set)
        self._names: dict[str, list[tuple[tuple[str, ...], str]]] = defaultdict(list)
        self._by_prefix: dict[str, set[str]] = defaultdict(set)
        self._customers: dict[str, Customer] = {}
        # Payers pay more than once: what a (name, IBAN) was found to be, until a change.
        self._seen: dict[tuple[str | None, str | None], list[PayerMatch]] = {}
        for customer in customers:
            self.put(customer)

    def put(self, customer: Customer) -> None:
        """Index a customer, in place of what was indexed under its id before."""
        self.remove(customer.customer_id)
        self._seen = {}
        self._customers[customer.customer_id] = customer
        for iban in customer.ibans:
            self._by_iban[compact(iban)].add(customer.customer_id)
        for how, name in [("name", customer.name)] + [("alias", a) for a in customer.aliases]:
            tokens = name_tokens(name)
            if not tokens:
                continue
            self._names[customer.customer_id].append((tokens, how))
            for token in tokens:
                self._by_prefix[token[:NAME_PREFIX]].add(customer.customer_id)

    def remove(self, customer_id: str) -> None:
        """Forget a customer (nothing if it is not indexed): the time its names take."""
        customer = self._customers.pop(customer_id, None)
        if customer is None:
            return
        self._seen = {}
        for iban in customer.ibans:
            _discard(self._by_iban, compact(iban), customer_id)
        for tokens, _ in self._names.pop(customer_id, ()):
            for token in tokens:
                _discard(self._by_prefix, token[:NAME_PREFIX], customer_id)

    def customers_of_iban(self, iban: str | None) -> set[str]:
        return set(self._by_iban.get(compact(iban), ())) if iban else set()

    def match(self, *, name: str | None, iban: str | None) -> list[PayerMatch]:
        """Customers the payer may be, best first (at most a handful)."""
        key = (name, iban)
        known = self._seen.get(key)
        if known is None:
            known = self._match(name, iban)
            if len(self._seen) < _SEEN_MAX:
                self._seen[key] = known
        return list(known)

    def _match(self, name: str | None, iban: str | None) -> list[PayerMatch]:
        found: dict[str, PayerMatch] = {}
        for customer_id in self.customers_of_iban(iban):
            found[customer_id] = PayerMatch(customer_id, 100.0, "iban", "known IBAN")
        # A known IBAN says who paid better than any name could: names are compared only
        # for payers whose account nobody knows.
        tokens = name_tokens(name) if name and not found else ()
        if tokens:
            # Customers sharing the most words (by their first letters) with the payer,
            # rarest words counting most: only those are compared in full.
            shared: dict[str, float] = {}
            get = shared.get
            for token in set(tokens):
                posting = self._by_prefix.get(token[:NAME_PREFIX])
                if posting and len(posting) <= _MAX_POSTING:
                    step = 1.0 + 1.0 / len(posting)
                    for customer_id in posting:
                        shared[customer_id] = get(customer_id, 0.0) + step
            ranked = heapq.nsmallest(_COMPARED, [(-s, c) for c, s in shared.items()])
            for _, customer_id in ranked:
                if customer_id in found:
                    continue
                score, how = max(((_similarity(tokens, known), how)
                                  for known, how in self._names.get(customer_id, ())),
                                 default=(0.0, "name"))
                if score >= _MIN_SCORE:
                    found[customer_id] = PayerMatch(customer_id, score, how,
                                                    f"payer name {name!r} ~ {score:.0f}%")
        return sorted(found.values(), key=lambda m: (-m.score, m.customer_id))[:8]


def _discard(index: dict[str, set[str]], key: str, customer_id: str) -> None:
    owners = index.get(key)
    if owners is not None:
        owners.discard(customer_id)
        if not owners:
            del index[key]


def _similarity(payer: tuple[str, ...], known: tuple[str, ...]) -> float:
    """How alike two normalised names are, 0..100, forgiving word order and truncation."""
    a, b = " ".join(payer), " ".join(known)
    score = fuzz.token_sort_ratio(a, b)
    if len(payer) >= 2 and len(known) >= 2:
        score = max(score, fuzz.token_set_ratio(a, b) * 0.96)
    # A name the bank cut short: every word is the customer's but one, which starts one.
    unmatched = [t for t in payer if t not in known]
    if len(payer) >= 2 and len(unmatched) == 1 and len(unmatched[0]) >= 3 and any(
            k.startswith(unmatched[0]) for k in known):
        score = max(score, 95.0)
    return float(score)
