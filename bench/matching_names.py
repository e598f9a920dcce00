"""Names, accounts, invoice numbers and texts as banks and payers show them.

The realism of ``bench/matching_gen.py``: customers per country (companies with their legal
forms, people), how a bank renders a name (``ascii_text``: diacritics replaced or stripped),
valid IBANs and ISO 11649 creditor references, the invoice numbering schemes a run mixes
(each with the ways payers retype a number), and the remittance texts payers write.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

# -- what customers are called -----------------------------------------------------------


@dataclass(frozen=True)
class Country:
    banks: tuple[tuple[str, str], ...]  # (IBAN bank part, BIC)
    iban: str  # BBAN after the bank part: digits count, or "" for no IBAN
    stems: tuple[str, ...]
    sectors: tuple[str, ...]
    forms: tuple[str, ...]
    first: tuple[str, ...] = ()
    last: tuple[str, ...] = ()
    currency: tuple[tuple[str, int], ...] = (("EUR", 1),)
    language: str = "en"


DE_STEMS = ("Bergmann", "Hoffmann", "Nordlicht", "Alpenland", "Rheintal", "Schäfer", "Böhm",
             "Weißenfels", "Kühne", "Sonnenhof", "Falkenberg", "Lindenhof", "Eichwald",
             "Brückner", "Große", "Köhler", "Mühlbach", "Seeberg", "Wendt", "Zöllner")
DE_SECTORS = ("Maschinenbau", "Logistik", "Elektrotechnik", "Bauunternehmung",
               "Präzisionstechnik", "Handelsgesellschaft", "Gebäudereinigung", "Druckerei",
               "Metallbau", "Verpackungen", "Medizintechnik", "Software", "Getränkevertrieb")
DE_FIRST = ("Jürgen", "Björn", "Käthe", "Günther", "Sabine", "Lukas", "Anna", "Jörg",
             "Ursula", "Thomas", "Müge", "Stefan", "Renée", "Claudia", "Timo")
DE_LAST = ("Müller", "Weiß", "Schröder", "Köhler", "Groß", "Bäumer", "Schmidt", "Fischer",
            "Öztürk", "Krüger", "Hoffmann", "Wagner", "Schäfer", "Becker", "Lehmann")
COUNTRIES = {
    "DE": Country((("37040044", "COBADEFFXXX"), ("50010517", "INGDDEFFXXX"),
                   ("70020270", "HYVEDEMMXXX"), ("43060967", "GENODEM1GLS"),
                   ("10050000", "BELADEBEXXX"), ("76026000", "HYVEDEMM460")), "10",
                  DE_STEMS, DE_SECTORS, ("GmbH", "GmbH", "GmbH & Co. KG", "AG", "KG"),
                  DE_FIRST, DE_LAST, language="de"),
    "AT": Country((("12000", "BKAUATWWXXX"), ("20111", "GIBAATWWXXX")), "11", DE_STEMS,
                  DE_SECTORS, ("GmbH", "AG", "OG"), DE_FIRST, DE_LAST, language="de"),
    "NL": Country((("INGB", "INGBNL2AXXX"), ("ABNA", "ABNANL2AXXX"), ("RABO", "RABONL2UXXX")),
                  "10", ("Van der Berg", "De Vries", "Jansen", "Bakker", "Visser", "Smit",
                         "Dijkstra", "Mulder", "Van Dijk"),
                  ("Logistiek", "Bouw", "Installatietechniek", "Handelsonderneming",
                   "Transport", "Techniek"), ("B.V.", "B.V.", "N.V."),
                  ("Pieter", "Sanne", "Daan", "Eline", "Joost", "Marloes"),
                  ("de Jong", "van den Broek", "Jansen", "Visser", "de Wit", "Bos"),
                  language="nl"),
    "FR": Country((("3000400031", "BNPAFRPPXXX"), ("1027800001", "CMCIFR2AXXX")), "13",
                  ("Lumière", "Dubois", "Lefèvre", "Moreau", "Garnier", "Côte d'Azur",
                   "Bréguet", "Rivière"),
                  ("Distribution", "Industries", "Transports", "Services", "Électronique"),
                  ("SARL", "S.A.", "SAS"),
                  ("François", "Hélène", "Zoé", "Jérôme", "Amélie", "Loïc"),
                  ("Lefèvre", "Dubois", "Giraud", "Bézier", "Mercier", "Fontaine"),
                  language="fr"),
    "PL": Country((("10901014", "WBKPPLPPXXX"), ("10202892", "BPKOPLPWXXX")), "16",
                  ("Kowalczyk", "Wiśniewski", "Zieliński", "Łódzka", "Krakowska", "Gdańska"),
                  ("Handel", "Transport", "Budownictwo", "Technika"), ("Sp. z o.o.", "S.A."),
                  ("Łukasz", "Małgorzata", "Paweł", "Agnieszka", "Zbigniew"),
                  ("Wiśniewski", "Zając", "Wójcik", "Kamińska", "Dąbrowski"), language="pl"),
    "ES": Country((("21000418", "CAIXESBBXXX"), ("00491500", "BSCHESMMXXX")), "12",
                  ("Soluciones Ibéricas", "Peña", "Muñoz", "Castaño", "Núñez"),
                  ("Distribución", "Logística", "Comercial"), ("S.A.", "S.L."),
                  ("José", "María", "Íñigo", "Begoña"), ("Muñoz", "Peña", "Ibáñez", "García"),
                  language="es"),
    "GB": Country((("NWBK601613", "NWBKGB2LXXX"), ("BARC200000", "BARCGB22XXX"),
                   ("LOYD309634", "LOYDGB2LXXX")), "8",
                  ("Thornbury", "Ashford", "Whitmore", "Kensington", "Harrow", "Blackwood",
                   "Pembroke"), ("Supplies", "Engineering", "Trading", "Logistics",
                                 "Consulting"), ("Ltd", "Limited", "PLC"),
                  ("Oliver", "Amelia", "Harry", "Siobhan", "George"),
                  ("Smith", "O'Brien", "Taylor", "Davies", "Wright"),
                  (("GBP", 7), ("EUR", 3))),
    "CH": Country((("00762", "BCGECHGGXXX"), ("00230", "UBSWCHZH80A")), "12",
                  ("Alpenblick", "Zürcher", "Bernina", "Jungfrau", "Rütli", "Säntis"),
                  ("Tourismus", "Uhren", "Treuhand", "Präzisionsmechanik"),
                  ("AG", "GmbH", "SA"), currency=(("CHF", 7), ("EUR", 3)), language="de"),
    "US": Country((("", "CHASUS33XXX"), ("", "BOFAUS3NXXX")), "", ("Redwood", "Hudson",
                  "Lakeshore", "Summit", "Pioneer", "Cascade"),
                  ("Industries", "Technologies", "Supply", "Holdings"), ("Inc.", "LLC", "Corp."),
                  currency=(("USD", 1),)),
    "JP": Country((("", "MHCBJPJTXXX"), ("", "BOTKJPJTXXX")), "", ("Sakura", "Fujimoto",
                  "Hoshino", "Takeda", "Kobayashi"), ("Trading", "Seiki", "Shoji"),
                  ("K.K.", "Co., Ltd."), currency=(("JPY", 1),)),
}
COUNTRY_WEIGHTS = {"DE": 44, "AT": 6, "NL": 8, "FR": 7, "PL": 5, "ES": 4, "GB": 9, "CH": 6,
                    "US": 6, "JP": 5}
BRANDS = ("Express", "Shop", "Direct", "Solutions", "Partner", "Service", "Online")
OTHERS = ("Lindner", "Kessler", "Okafor", "Nguyen", "Horvath", "Ferreira", "Rossi", "Novak")
_TRANSLIT = str.maketrans({"ß": "ss", "ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "æ": "ae",
                           "Æ": "AE", "œ": "oe", "đ": "d", "\u2019": "'"})
_UMLAUT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue",
                         "å": "aa", "ø": "oe"})


def ascii_text(text: str, *, umlauts: bool) -> str:
    """``text`` as banks show it in SEPA's Latin set: Müller -> Mueller or Muller."""
    if umlauts:
        text = text.translate(_UMLAUT)
    decomposed = unicodedata.normalize("NFKD", text.translate(_TRANSLIT))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def iban(country: str, bank: str, rng: random.Random) -> str:
    """A valid (mod-97) IBAN of ``country`` at ``bank`` with a random account number."""
    bban = bank + "".join(rng.choice("0123456789") for _ in range(int(COUNTRIES[country].iban)))
    number = int("".join(str(int(c, 36)) for c in bban + country + "00"))
    return f"{country}{98 - number % 97:02d}{bban}"


def creditor_reference(ref: str) -> str:
    """An ISO 11649 creditor reference (``RF`` + check digits + ``ref``)."""
    body = re.sub(r"[^0-9A-Z]", "", ref.upper())[:21]
    number = int("".join(str(int(c, 36)) for c in body + "RF00"))
    return f"RF{98 - number % 97:02d}{body}"




# -- invoice numbers ---------------------------------------------------------------------

_Fmt = Callable[[int, int, str], str]
SCHEMES: dict[str, tuple[_Fmt, tuple[_Fmt, ...]]] = {
    "inv": (lambda y, n, x: f"INV-{y}-{n:06d}", (
        lambda y, n, x: f"INV{y}{n:06d}", lambda y, n, x: f"inv{y}{n:06d}",
        lambda y, n, x: f"INV {y} {n:06d}", lambda y, n, x: f"INV-{y}-{n}",
        lambda y, n, x: f"{y}{n:06d}", lambda y, n, x: f"inv-{y}-{n:06d}",
        lambda y, n, x: f"INV/{y}/{n:06d}", lambda y, n, x: f"Inv.{y}.{n:06d}")),
    "re": (lambda y, n, x: f"RE{n}", (
        lambda y, n, x: f"RE {n}", lambda y, n, x: f"Re-{n}", lambda y, n, x: f"re{n}",
        lambda y, n, x: f"{n}", lambda y, n, x: f"RE-{n}", lambda y, n, x: f"RE.{n}")),
    "slash": (lambda y, n, x: f"{y}/{n:04d}", (
        lambda y, n, x: f"{y}-{n:04d}", lambda y, n, x: f"{y} {n:04d}",
        lambda y, n, x: f"{y}{n:04d}", lambda y, n, x: f"{n:04d}/{y}",
        lambda y, n, x: f"{y} / {n:04d}")),
    "letter": (lambda y, n, x: f"F-{n:05d}-{x}", (
        lambda y, n, x: f"F{n:05d}{x}", lambda y, n, x: f"F-{n}-{x}",
        lambda y, n, x: f"f-{n:05d}-{x.lower()}", lambda y, n, x: f"F {n:05d} {x}",
        lambda y, n, x: f"F{n:05d}-{x}", lambda y, n, x: f"F-{n:05d}{x}")),
    "plain": (lambda y, n, x: f"{n:07d}", (
        lambda y, n, x: f"{n:07d}"[:3] + " " + f"{n:07d}"[3:],
        lambda y, n, x: f"{n:07d}"[:3] + "." + f"{n:07d}"[3:],
        lambda y, n, x: f"{n:07d}"[:4] + "-" + f"{n:07d}"[4:], lambda y, n, x: f"0{n:07d}")),
}


def norm(ref: str) -> str:
    return re.sub(r"[^0-9A-Z]", "", ref.upper())


# -- what payers type -----------------------------------------------------------------

GENERIC = ("Zahlung", "Payment", "Ueberweisung", "Danke", "Betrag", "SEPA Ueberweisung",
            "payment", "Gutschrift")
TEXTS = {
    "de": ("Rechnung {r}", "Rechnung Nr. {r}", "RE {r}", "Re.-Nr. {r}", "{r}",
           "Zahlung zu {r}", "Ihre Rechnung {r} vom {d}", "Rechnungsnr {r} Kundennr {c}"),
    "en": ("Invoice {r}", "Inv {r}", "invoice no {r}", "Payment for invoice {r}", "{r}",
           "INVOICE {r} CUSTOMER {c}"),
    "nl": ("Factuur {r}", "factuurnummer {r}", "{r}", "Betaling factuur {r}"),
    "fr": ("Facture {r}", "FACT {r}", "Reglement facture {r}", "{r}"),
    "pl": ("Faktura {r}", "FV {r}", "Zaplata za fakture {r}", "{r}"),
    "es": ("Factura {r}", "Pago factura {r}", "{r}"),
}
JOIN = {"de": " und ", "en": " and ", "nl": " en ", "fr": " et ", "pl": " i ", "es": " y "}
INSTALMENT = ("{i}. Rate {r}", "Teilzahlung {r}", "instalment {i}/{k} {r}",
               "Rate {i} von {k} zu Rechnung {r}", "partial payment {r}", "{r} Rate {i}")
