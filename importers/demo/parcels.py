"""Imobile: cadastral identifiers, areas, use categories and postal addresses of the lots.

Identifiers look like the real ones: six-digit cadastral numbers handed out block by
block (neighbours get close numbers, as after a systematic registration campaign),
land-book numbers equal to them except for older imobile still on a paper land book,
unique eTerra (E2) ids, cadastral sectors by district. Addresses are numbered along
each street, odd on one side and even on the other, from the start of the street.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from gis_core.search_keys import search_key
from importers.demo.city import City
from importers.demo.lots import Lots
from importers.demo.plans import Plans
from importers.demo.streets import CITY_NAME, Streets, full_street_name

FIRST_CADASTRAL_NUMBER = 250_000
PAPER_LAND_BOOK_SHARE = 0.15
LEGAL_AREA_DIFFERS_SHARE = 0.30
NO_ADDRESS_SHARE = 0.01
_EDGE_UTRS = frozenset({"Liu", "UM1", "UM2", "UI"})
_FOREST_SECTORS = frozenset({4, 5, 6})


@dataclass(frozen=True)
class Parcels:
    """Columnar parcels (index = position in the load); ``address`` indexes ``Addresses``."""

    geom: np.ndarray
    cadastral_number: np.ndarray
    land_book_number: np.ndarray
    e2_identifier: np.ndarray
    cad_sector: np.ndarray
    topo_number: np.ndarray
    measured_area: np.ndarray
    legal_area: np.ndarray
    use_category: np.ndarray
    intravilan: np.ndarray
    address: np.ndarray
    address_text: np.ndarray
    utr_code: np.ndarray
    tarla: np.ndarray
    parcel_no: np.ndarray

    def __len__(self) -> int:
        return int(self.geom.size)


@dataclass(frozen=True)
class Addresses:
    """Postal addresses of the parcels (rows of cadastre.address)."""

    street: np.ndarray
    street_type: np.ndarray
    street_name: np.ndarray
    number: np.ndarray
    postal_code: np.ndarray
    full_text: np.ndarray
    search_text: np.ndarray
    geom: np.ndarray

    def __len__(self) -> int:
        return int(self.geom.size)


def describe_parcels(
    city: City, lots: Lots, streets: Streets, plans: Plans, seed: int
) -> tuple[Parcels, Addresses]:
    """Attributes of every lot, and the address of each one that has a street."""
    count = len(lots)
    rng = np.random.default_rng([seed, count, 74])
    intravilan = city.blocks.intravilan[lots.block]
    area = np.round(shapely.area(lots.geom), 2)
    cadastral = _cadastral_numbers(lots, rng)
    land_book, topo = _land_books(cadastral, rng)
    utr = pug_utr(plans, shapely.point_on_surface(lots.geom), intravilan)
    addresses, address_of = _addresses(city, lots, streets, rng)
    tarla, parcel_no = _field_numbers(lots, intravilan)
    address_text = np.full(count, None, dtype=object)
    has_address = address_of >= 0
    address_text[has_address] = addresses.full_text[address_of[has_address]]
    outside = np.flatnonzero(~intravilan)
    address_text[outside] = [
        f"Extravilan, tarla {t}, parcela {p}"
        for t, p in zip(tarla[outside], parcel_no[outside], strict=True)
    ]
    parcels = Parcels(
        geom=lots.geom,
        cadastral_number=cadastral,
        land_book_number=land_book,
        e2_identifier=_unique_numbers(rng, count, 10 * count + 100_000, 100_000),
        cad_sector=city.blocks.sector[lots.block].astype(str).astype(object),
        topo_number=topo,
        measured_area=area,
        legal_area=_legal_areas(area, rng),
        use_category=_use_categories(city, lots, utr, intravilan, rng),
        intravilan=intravilan,
        address=address_of,
        address_text=address_text,
        utr_code=utr,
        tarla=tarla,
        parcel_no=parcel_no,
    )
    return parcels, addresses


def _unique_numbers(rng: np.random.Generator, count: int, span: int, first: int) -> np.ndarray:
    """``count`` distinct numbers from ``first .. first+span`` as strings, random order."""
    numbers = rng.choice(span, size=count, replace=False) + first
    return numbers.astype(str).astype(object)


def _cadastral_numbers(lots: Lots, rng: np.random.Generator) -> np.ndarray:
    """Distinct six-digit numbers, consecutive-ish within a block (registered together)."""
    count = len(lots)
    span = max(100_000, 4 * count)
    numbers = np.sort(rng.choice(span, size=count, replace=False)) + FIRST_CADASTRAL_NUMBER
    block_rank = rng.permutation(int(lots.block.max()) + 1 if count else 0)[lots.block]
    order = np.lexsort((np.arange(count), block_rank))
    result = np.empty(count, dtype=np.int64)
    result[order] = numbers
    return result.astype(str).astype(object)


def _land_books(cadastral: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Land-book numbers (mostly = cadastral number) and old topographic numbers.

    Imobile still on a paper land book keep its number (below the cadastral range) and
    the topographic number of the old survey, "2145/12" style.
    """
    count = cadastral.size
    paper = rng.random(count) < PAPER_LAND_BOOK_SHARE
    land_book = cadastral.copy()
    land_book[paper] = _unique_numbers(rng, int(paper.sum()), max(200_000, 2 * count), 1000)
    topo = np.full(count, None, dtype=object)
    lots_topo = rng.integers(100, 30_000, int(paper.sum()))
    subdivision = rng.integers(1, 40, int(paper.sum()))
    topo[paper] = [f"{t}/{s}" for t, s in zip(lots_topo, subdivision, strict=True)]
    return land_book, topo


def _legal_areas(area: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The area in the deeds: whole square metres a little off the measured area for ~30 %."""
    differs = rng.random(area.size) < LEGAL_AREA_DIFFERS_SHARE
    noisy = np.rint(area * (1.0 + rng.normal(0.0, 0.015, area.size)))
    return np.where(differs, np.maximum(noisy, 1.0), area)


def pug_utr(plans: Plans, points: np.ndarray, intravilan: np.ndarray) -> np.ndarray:
    """The PUG UTR code at each point (a point on a zone edge takes the first zone found)."""
    pug = np.flatnonzero(plans.zones.plan == 0)
    tree = shapely.STRtree(plans.zones.geom[pug])
    point_index, zone_index = tree.query(points, predicate="intersects")
    first = np.unique(point_index, return_index=True)[1]
    codes = np.asarray(plans.zones.utr_code, dtype=object)[pug]
    result = np.where(intravilan, "L1a", "AGR").astype(object)
    result[point_index[first]] = codes[zone_index[first]]
    return result


def _use_categories(
    city: City, lots: Lots, utr: np.ndarray, intravilan: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """CC inside the intravilan (some fields left at its edge), A/F/P/L outside."""
    draw = rng.random(len(lots))
    result = np.full(len(lots), "CC", dtype=object)
    edge_field = intravilan & np.isin(utr, list(_EDGE_UTRS)) & (draw < 0.2)
    result[edge_field] = np.where(draw[edge_field] < 0.13, "A", "F")
    sector = city.blocks.district[lots.block] - len(city.districts)
    forest = ~intravilan & np.isin(sector, list(_FOREST_SECTORS))
    fields = ~intravilan & ~forest
    result[forest] = np.select([draw[forest] < 0.55, draw[forest] < 0.8], ["L", "P"], "F")
    result[fields] = np.select(
        [draw[fields] < 0.6, draw[fields] < 0.8, draw[fields] < 0.95], ["A", "F", "P"], "L"
    )
    return result


def _field_numbers(lots: Lots, intravilan: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tarla (field block) and parcel numbers of the extravilan lots, as in old land books."""
    tarla = np.zeros(len(lots), dtype=np.int64)
    parcel = np.zeros(len(lots), dtype=np.int64)
    outside = np.flatnonzero(~intravilan)
    blocks, tarla_index = np.unique(lots.block[outside], return_inverse=True)
    tarla[outside] = tarla_index + 1
    order = np.lexsort((outside, tarla_index))
    counts = np.bincount(tarla_index, minlength=blocks.size)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    parcel[outside[order]] = np.arange(outside.size) - starts + 1
    return tarla, parcel


def _addresses(
    city: City, lots: Lots, streets: Streets, rng: np.random.Generator
) -> tuple[Addresses, np.ndarray]:
    """Number the lots along their streets: odd numbers on one side, even on the other."""
    b = city.blocks
    front, back = b.line_front[lots.block], b.line_back[lots.block]
    left, right = b.line_left[lots.block], b.line_right[lots.block]
    along = (lots.ub0 + lots.ub1 + lots.ut0 + lots.ut1) / 4.0
    across = (lots.v0 + lots.v1) / 2.0
    choices = [
        (np.where(lots.faces_front, front, back), along, np.where(lots.faces_front, 0, 1)),
        (np.where(lots.faces_front, back, front), along, np.where(lots.faces_front, 1, 0)),
        (left, across, np.zeros(len(lots), dtype=np.int64)),
        (right, across, np.ones(len(lots), dtype=np.int64)),
    ]
    line = np.full(len(lots), -1, dtype=np.int64)
    position = np.zeros(len(lots))
    side = np.zeros(len(lots), dtype=np.int64)
    for candidate, where, odd in choices:
        usable = (line < 0) & (candidate >= 0)
        usable[usable] &= streets.of_line[candidate[usable]] >= 0
        line[usable], position[usable], side[usable] = candidate[usable], where[usable], odd[usable]
    addressed = (line >= 0) & b.intravilan[lots.block] & (rng.random(len(lots)) >= NO_ADDRESS_SHARE)
    lot_ids = np.flatnonzero(addressed)
    street = streets.of_line[line[lot_ids]]
    odd = side[lot_ids]
    order = np.lexsort((position[lot_ids], streets.line_rank[line[lot_ids]], odd, street))
    group = street[order] * 2 + odd[order]
    new_group = np.ones(order.size, dtype=bool)
    new_group[1:] = group[1:] != group[:-1]
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(order.size), 0))
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size) - group_start
    number = 2 * rank + np.where(odd == 1, 1, 2)
    address_of = np.full(len(lots), -1, dtype=np.int64)
    address_of[lot_ids] = np.arange(lot_ids.size)
    return _address_rows(
        streets, street, number, shapely.point_on_surface(lots.geom[lot_ids])
    ), address_of


def _address_rows(
    streets: Streets, street: np.ndarray, number: np.ndarray, points: np.ndarray
) -> Addresses:
    """Text forms of the addresses; search keys composed from per-street keys (same result
    as ``search_key`` of the full text, a thousand times fewer calls)."""
    types = np.asarray(streets.street_type, dtype=object)
    bare = np.asarray(streets.bare_name, dtype=object)
    full_street = np.asarray(
        [full_street_name(t, n) for t, n in zip(types, bare, strict=True)], dtype=object
    )
    street_keys = np.asarray([search_key(name) for name in full_street], dtype=object)
    city_key = search_key(CITY_NAME)
    numbers = number.astype(str).astype(object)
    full_text = full_street[street] + " nr. " + numbers + f", {CITY_NAME}"
    search_text = street_keys[street] + " " + numbers + f" {city_key}"
    return Addresses(
        street=street,
        street_type=types[street],
        street_name=bare[street],
        number=numbers,
        postal_code=np.asarray(streets.postal_code, dtype=object)[street],
        full_text=full_text,
        search_text=search_text,
        geom=points,
    )
