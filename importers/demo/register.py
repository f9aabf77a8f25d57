"""A sample municipal register of urbanism certificates (CU) and permits (AC, AD).

It imitates the spreadsheets town halls keep: one row per act, semicolon-separated,
numbers restarting every year, and the cadastral-number column written by hand - with
typos, several numbers in one cell, building/unit suffixes, "CF"/"nr. cad." prefixes,
stray spaces, blanks and zeros. That noise is the point: the permit linker must cope with
it. Applicants are fictitious (invented surnames), and every date comes from the seed.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from importers.demo.generate import DemoCity

COLUMNS = (
    "nr_act",
    "data_act",
    "tip",
    "solicitant",
    "adresa_imobil",
    "nr_cadastral",
    "nr_cf",
    "scop",
    "durata_valabilitate_luni",
    "stare",
)
FIRST_DAY = date(2019, 1, 3)
LAST_DAY = date(2025, 12, 19)
_FIRST = (
    "Ion",
    "Maria",
    "Andrei",
    "Elena",
    "Mihai",
    "Ioana",
    "Vasile",
    "Ana",
    "Gheorghe",
    "Cristina",
    "Alexandru",
    "Daniela",
    "Florin",
    "Adriana",
    "Radu",
    "Simona",
)
_LAST = (
    "Exemplescu",
    "Testeanu",
    "Fictivu",
    "Probescu",
    "Demoiu",
    "Mostrescu",
    "Inventatu",
    "Sinteticu",
    "Modelescu",
    "Imaginaru",
    "Fantezie",
    "Anonimescu",
)
_COMPANY = (
    "Exemplu Construct",
    "Demo Invest",
    "Fictiv Imobiliare",
    "Test Residence",
    "Model Development",
    "Proba Build",
)
_CU_PURPOSES = (
    "Construire locuință unifamilială P+1E",
    "Construire locuință unifamilială P+M",
    "Extindere și mansardare locuință",
    "Construire imobil de locuințe colective S+P+4E+R",
    "Alipire imobile",
    "Dezmembrare imobil în 2 loturi",
    "Vânzare-cumpărare",
    "Intabulare construcție existentă",
    "Împrejmuire teren",
    "Schimbare de destinație spațiu locativ în spațiu comercial",
    "Racord la rețeaua de gaze naturale",
    "Desființare construcție anexă C2",
)
_AC_PURPOSES = (
    "Construire locuință unifamilială P+1E, împrejmuire și racorduri",
    "Extindere, supraetajare și mansardare locuință",
    "Construire imobil de locuințe colective S+P+4E+R",
    "Împrejmuire teren",
    "Construire anexă gospodărească",
    "Reabilitare termică imobil",
)
_AD_PURPOSES = ("Desființare construcție anexă C2", "Desființare locuință C1 și anexe")


@dataclass
class _Act:
    kind: str
    day: date
    parcel: int
    purpose: str
    months: int
    state: str


def register_csv(demo: DemoCity, acts: int = 2000) -> bytes:
    """The register as UTF-8 CSV bytes, acts in order of issue."""
    rng = np.random.default_rng([demo.parameters.seed, 78])
    rows = _acts(demo, acts, rng)
    rows.sort(key=lambda act: (act.day, act.kind, act.parcel))
    numbers = _numbers(rows, rng)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\n")
    writer.writerow(COLUMNS)
    for act, number in zip(rows, numbers, strict=True):
        stamp = act.day.strftime("%d.%m.%Y")
        writer.writerow(
            (
                f"{number}/{stamp}",
                stamp,
                act.kind,
                _applicant(rng),
                _address(demo, act.parcel, rng),
                _cadastral_cell(demo, act.parcel, rng),
                _land_book_cell(demo, act.parcel, rng),
                act.purpose,
                act.months,
                act.state,
            )
        )
    return buffer.getvalue().encode("utf-8")


def _acts(demo: DemoCity, total: int, rng: np.random.Generator) -> list[_Act]:
    """CUs first; most ACs and ADs then follow a CU for the same imobil 2-12 months later."""
    candidates = np.flatnonzero(demo.parcels.intravilan)
    extra = np.flatnonzero(~demo.parcels.intravilan)
    span = (LAST_DAY - FIRST_DAY).days
    cu_count = int(total * 0.62)
    acts: list[_Act] = []
    for _ in range(cu_count):
        pool = extra if extra.size and rng.random() < 0.05 else candidates
        acts.append(
            _Act(
                "CU",
                FIRST_DAY + timedelta(days=int(rng.integers(0, span))),
                int(pool[rng.integers(0, pool.size)]),
                _CU_PURPOSES[int(rng.integers(0, len(_CU_PURPOSES)))],
                int(rng.choice([12, 24, 12, 24, 6, 18])),
                str(rng.choice(["emis"] * 17 + ["prelungit"] * 2 + ["anulat"])),
            )
        )
    for index in range(total - cu_count):
        kind = "AD" if index % 12 == 0 else "AC"
        purposes = _AD_PURPOSES if kind == "AD" else _AC_PURPOSES
        basis = acts[int(rng.integers(0, cu_count))]
        day = basis.day + timedelta(days=int(rng.integers(60, 366)))
        parcel = basis.parcel
        if rng.random() < 0.15 or day > LAST_DAY:
            day = FIRST_DAY + timedelta(days=int(rng.integers(0, span)))
            parcel = int(candidates[rng.integers(0, candidates.size)])
        acts.append(
            _Act(
                kind,
                day,
                parcel,
                purposes[int(rng.integers(0, len(purposes)))],
                int(rng.choice([12, 24, 24, 36])),
                str(rng.choice(["emis"] * 15 + ["prelungit"] * 3 + ["finalizat"] * 2 + ["anulat"])),
            )
        )
    return acts


def _numbers(acts: list[_Act], rng: np.random.Generator) -> list[int]:
    """Numbers per type per year in order of issue, with the gaps a partial list has."""
    last: dict[tuple[str, int], int] = {}
    numbers = []
    for act in acts:
        key = (act.kind, act.day.year)
        last[key] = last.get(key, 0) + int(rng.integers(1, 6))
        numbers.append(last[key])
    return numbers


def _applicant(rng: np.random.Generator) -> str:
    if rng.random() < 0.25:
        return f"SC {_COMPANY[int(rng.integers(0, len(_COMPANY)))]} SRL"
    return f"{_LAST[int(rng.integers(0, len(_LAST)))]} {_FIRST[int(rng.integers(0, len(_FIRST)))]}"


def _address(demo: DemoCity, parcel: int, rng: np.random.Generator) -> str:
    text = str(demo.parcels.address_text[parcel] or "")
    text = text.removesuffix(", Cluj-Napoca")
    if text.startswith("Strada ") and rng.random() < 0.35:
        text = "Str. " + text.removeprefix("Strada ")
    return text


def _cadastral_cell(demo: DemoCity, parcel: int, rng: np.random.Generator) -> str:
    """The hand-written cadastral number with the kinds of noise real registers show."""
    number = str(demo.parcels.cadastral_number[parcel])
    draw = rng.random()
    if draw < 0.03:
        return _typo(number, rng)
    if draw < 0.08:
        others = [
            str(demo.parcels.cadastral_number[(parcel + k) % len(demo.parcels)]) for k in (1, 2)
        ]
        separator = str(rng.choice(["; ", ", ", ";", " ; "]))
        return separator.join([number, *others[: int(rng.integers(1, 3))]])
    if draw < 0.12:
        return str(rng.choice(["", "0", "00", " "]))
    if draw < 0.16:
        return f"{number}-C1" if rng.random() < 0.5 else f"{number}-C1-U{int(rng.integers(1, 90))}"
    if draw < 0.20:
        return f"{rng.choice(['CF ', 'CF nr. ', 'nr. cad. ', 'NC '])}{number}"
    if draw < 0.24:
        return str(rng.choice([f" {number}", f"{number} ", f"{number[:3]} {number[3:]}"]))
    return number


def _typo(number: str, rng: np.random.Generator) -> str:
    """Two neighbouring digits swapped, or one digit missing."""
    position = int(rng.integers(0, len(number) - 1))
    if rng.random() < 0.5:
        return number[:position] + number[position + 1] + number[position] + number[position + 2 :]
    return number[:position] + number[position + 1 :]


def _land_book_cell(demo: DemoCity, parcel: int, rng: np.random.Generator) -> str:
    if rng.random() < 0.1:
        return ""
    number = str(demo.parcels.land_book_number[parcel])
    return f"CF nr. {number}" if rng.random() < 0.2 else number
