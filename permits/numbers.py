"""Reading the cadastral numbers registers cite, as clerks actually write them.

A register cell may hold ``228603``, ``224784-C1-U72`` (building C1, unit U72 of imobil
224784), several numbers (``240315; 240316``, ``240315, 240316``), prefixes (``CF``,
``CF nr.``, ``nr. cad.``, ``NC``), stray spaces (`` 258311``, ``258 311``) and
"unknown" markers (blank, ``0``, ``00``, ``-``). Foreign registers use other shapes of
key (Cambridge MA map-lots ``123A-435``, ``267.4-291``), which pass through as they are.

Only characters that can belong to a number are accepted; anything else (``25#123``)
is a malformed cell, reported with the field it came from rather than guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gis_core.errors import InvalidInput

_SEPARATORS = re.compile(r"\s*(?:[;,|]|\bși\b|\bsi\b|\band\b|&)\s*", re.IGNORECASE)
# Words clerks put before the number; longest first so "cf nr." wins over "cf".
_PREFIXES = re.compile(
    r"^(?:(?:nr\.?\s*cad(?:astral)?\.?|n\.?\s*c\.?|c\.?\s*f\.?|cf|carte\s+funciara|"
    r"cad(?:astral)?\.?|nr\.?|num[aă]r|no\.?)\s*:?\s*)+",
    re.IGNORECASE,
)
_TOKEN = re.compile(r"^[0-9A-Za-z][0-9A-Za-z./-]*$")
_UNKNOWN = re.compile(r"^[0\-–—/.?x]*$", re.IGNORECASE)
_BUILDING = re.compile(r"^C\d+$", re.IGNORECASE)
_UNIT = re.compile(r"^U\d+$", re.IGNORECASE)
# "258 311": a number split by a stray space; parts this short are never whole numbers.
_SHORT_PART = 4


@dataclass(frozen=True)
class CitedNumber:
    """One imobil cited: the cadastral number, and the building/unit when given."""

    number: str
    building: str | None = None
    unit: str | None = None
    written: str = ""


def parse_cited_numbers(cell: object, *, field: str = "cadastral_numbers") -> list[CitedNumber]:
    """The imobile a register cell cites, in the order written (the first is primary).

    An empty list means the register does not know (blank, ``0``, ``00``). A cell with
    characters no number contains raises ``InvalidInput`` naming ``field``.
    """
    text = "" if cell is None else str(cell).strip()
    if not text or _UNKNOWN.match(text.replace(" ", "")):
        return []
    cited: list[CitedNumber] = []
    for part in _SEPARATORS.split(text):
        written = part.strip()
        bare = _PREFIXES.sub("", written).strip()
        if not bare or _UNKNOWN.match(bare.replace(" ", "")):
            continue
        for piece in _join_split_digits(bare):
            number = _parse_piece(piece, written, field)
            if number.number not in {c.number for c in cited}:
                cited.append(number)
    return cited


def _parse_piece(bare: str, written: str, field: str) -> CitedNumber:
    if not _TOKEN.match(bare):
        raise InvalidInput(
            f"{field}: {written!r} is not a cadastral number (unexpected characters)",
            locator=field,
        )
    pieces = bare.split("-")
    building = unit = None
    while len(pieces) > 1 and (_UNIT.match(pieces[-1]) or _BUILDING.match(pieces[-1])):
        tail = pieces.pop().upper()
        if tail.startswith("U"):
            unit = tail
        else:
            building = tail
    return CitedNumber("-".join(pieces), building, unit, written)


def _join_split_digits(text: str) -> list[str]:
    """Glue digit groups split by stray spaces ("258 311" -> "258311").

    Groups are glued only when one of them is too short to be a number of its own;
    "240315 240316" (long groups) are two numbers separated by a space.
    """
    groups = text.split()
    if len(groups) == 1 or not all(g.isdigit() for g in groups):
        return [text]
    if min(len(g) for g in groups) < _SHORT_PART:
        return ["".join(groups)]
    return groups


def parse_act_number(cell: object, *, field: str = "number") -> tuple[str, str | None]:
    """Split ``"123/15.03.2024"`` into the number and the date text after the slash.

    The number is kept as written (``"123"``, ``"PB-001"``); the date part, when
    present, is returned for the caller to parse and compare with the date column.
    """
    text = "" if cell is None else str(cell).strip()
    if not text:
        raise InvalidInput(f"{field}: the act number is missing", locator=field)
    number, _, rest = text.partition("/")
    number = _PREFIXES.sub("", number.strip()).strip()
    if number.endswith(".0") and number[:-2].isdigit():
        number = number[:-2]  # a spreadsheet turned 123 into 123.0
    if not number or not _TOKEN.match(number):
        raise InvalidInput(f"{field}: {text!r} is not an act number", locator=field)
    return number, (rest.strip() or None)
