"""Search keys: the form of names and addresses that search compares.

Romanian text arrives with comma-below (ș ț) or cedilla (ş ţ) letters, with or without
diacritics, in any case and spacing. The key folds all of that, so "Strada Memorandumului"
finds "str. memorandumului" and "Ştefan" finds "Stefan". Computed in Python at write time
and stored beside the text, so the database can index it (trigram GIN).
"""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")
_PUNCTUATION = re.compile(r"[^\w\s/-]")

# Street-type words and their abbreviations, folded to one spelling.
_STREET_TYPES = {
    "strada": "str",
    "str": "str",
    "bulevardul": "bd",
    "bulevard": "bd",
    "bdul": "bd",
    "b-dul": "bd",
    "blvd": "bd",
    "bd": "bd",
    "calea": "cal",
    "cal": "cal",
    "aleea": "al",
    "alee": "al",
    "al": "al",
    "piata": "pta",
    "pta": "pta",
    "splaiul": "spl",
    "spl": "spl",
    "soseaua": "sos",
    "sos": "sos",
    "intrarea": "intr",
    "intr": "intr",
    "pasajul": "pas",
}
# Words that carry no meaning for matching ("nr. 21" is "21").
_NOISE = frozenset({"nr", "numarul", "no"})


def fold(text: str) -> str:
    """Lower case, no diacritics (both ș/ş forms), single spaces."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    return _SPACES.sub(" ", plain).strip()


def search_key(text: str) -> str:
    """The key stored and compared for a street or address: folded, punctuation dropped,
    street-type words reduced to one abbreviation."""
    words = _PUNCTUATION.sub(" ", fold(text)).split()
    return " ".join(_STREET_TYPES.get(word, word) for word in words if word not in _NOISE)
