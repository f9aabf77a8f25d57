"""Buildings on the imobile: footprints set back inside each lot, heights by zone.

A house stands near the street with a garden behind it and perhaps an annex further
back; in the historic centre buildings fill the street front; blocks of flats are long
bars on large plots. Footprints are rectangles of the lot's own frame, shrunk to fit the
skewed lot, then clipped to the lot where the block was clipped; so every building is
inside its parcel by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from importers.demo.city import City
from importers.demo.geometry import largest_part, polygonal, quads, to_world
from importers.demo.lots import Lots
from importers.demo.parcels import Parcels

_MIN_SIDE = 3.0
_MIN_FOOTPRINT = 9.0
# Levels (low, high) of the main building by UTR prefix; the first match wins.
_LEVELS = (
    ("ZCP_C1", (2, 6)),
    ("CB1", (4, 14)),
    ("CB", (2, 6)),
    ("ZCP", (1, 4)),
    ("Lc", (4, 10)),
    ("S_Lc", (4, 10)),
    ("M", (3, 8)),
    ("RiM", (3, 9)),
    ("UM", (2, 5)),
    ("IS", (2, 6)),
    ("L3a", (2, 4)),
    ("A", (1, 2)),
    ("UI", (1, 2)),
    ("T_", (1, 2)),
    ("ET", (1, 2)),
    ("TA", (1, 3)),
)
_DESTINATION = {"industrial": "CIE", "public": "CA"}


@dataclass(frozen=True)
class Buildings:
    """Columnar buildings; ``parcel`` indexes the parcels."""

    geom: np.ndarray
    parcel: np.ndarray
    building_number: np.ndarray
    e2_identifier: np.ndarray
    footprint_area: np.ndarray
    floor_area: np.ndarray
    levels: np.ndarray
    height_m: np.ndarray
    destination: np.ndarray
    is_legal: np.ndarray

    def __len__(self) -> int:
        return int(self.geom.size)


def build(city: City, lots: Lots, parcels: Parcels, seed: int) -> Buildings:
    """Most built-up parcels get a main building (C1); some an annex (C2) and a garage (C3)."""
    rng = np.random.default_rng([seed, len(lots), 75])
    utr = parcels.utr_code.astype(str)
    style = _style(utr)
    built = parcels.intravilan & (parcels.use_category == "CC")
    built &= rng.random(len(lots)) < np.where(np.char.startswith(utr, "V"), 0.05, 0.9)
    main = _footprints(city, lots, np.flatnonzero(built), style, rng, rank=1)
    extra_share = np.where(style == "house", 0.45, 0.12)
    annex_lots = main.parcel[rng.random(main.parcel.size) < extra_share[main.parcel]]
    annex = _footprints(city, lots, annex_lots, style, rng, rank=2)
    garage_lots = annex.parcel[rng.random(annex.parcel.size) < 0.3]
    garage = _footprints(city, lots, garage_lots, style, rng, rank=3)
    parts = [main, annex, garage]
    geom = np.concatenate([p.geom for p in parts])
    parcel = np.concatenate([p.parcel for p in parts])
    rank = np.concatenate([np.full(p.parcel.size, r) for r, p in enumerate(parts, start=1)])
    order = np.lexsort((rank, parcel))
    geom, parcel, rank = geom[order], parcel[order], rank[order]
    levels = _levels(utr[parcel], rank, rng)
    footprint = np.round(shapely.area(geom), 2)
    count = geom.size
    return Buildings(
        geom=geom,
        parcel=parcel,
        building_number=np.char.add("C", rank.astype(str)).astype(object),
        e2_identifier=(rng.choice(10 * count + 100_000, count, replace=False) + 5_000_000)
        .astype(str)
        .astype(object),
        footprint_area=footprint,
        floor_area=np.round(footprint * levels, 2),
        levels=levels,
        height_m=np.round(3.0 * levels + 1.0 + rng.uniform(-0.4, 0.6, count), 2),
        destination=_destinations(utr[parcel], rank, rng),
        is_legal=rng.random(count) < 0.95,
    )


@dataclass(frozen=True)
class _Placed:
    geom: np.ndarray
    parcel: np.ndarray


def _style(utr: np.ndarray) -> np.ndarray:
    """How buildings sit on the lot: continuous front, blocks of flats, sheds, houses."""
    style = np.full(utr.size, "house", dtype=object)
    style[np.char.startswith(utr, "ZCP_C") | np.char.startswith(utr, "M1")] = "front"
    collective = np.isin(utr, ["Lc", "S_Lc", "M3", "CB2", "UM1", "S_M"])
    style[collective] = "flats"
    shed = np.isin(utr, ["A", "UI", "RiM", "ET", "T_ID", "T_SP", "T_ET", "TA"])
    style[shed] = "shed"
    return style


def _footprints(
    city: City,
    lots: Lots,
    chosen: np.ndarray,
    style: np.ndarray,
    rng: np.random.Generator,
    rank: int,
) -> _Placed:
    """Rectangles in the lot frame: the main building near the street, annexes behind."""
    lot = lots.take(chosen)
    kind = style[chosen]
    front = lot.faces_front
    depth = lot.v1 - lot.v0
    width = np.minimum(lot.ub1 - lot.ub0, lot.ut1 - lot.ut0)
    setback = np.where(kind == "front", 0.05, np.clip(0.12 * depth, 0.3, 6.0))
    share_of_depth = {1: (0.3, 0.5), 2: (0.12, 0.2), 3: (0.12, 0.2)}[rank]
    cap = np.where(kind == "flats", 16.0, 30.0)
    size = np.clip(depth * rng.uniform(*share_of_depth, chosen.size), 3.0, cap)
    # Annexes start behind the deepest main building (half the lot) and a yard.
    start = setback + (0.5 * depth + 1.5 if rank > 1 else 0.0)
    near = np.where(front, lot.v0 + start, lot.v1 - start - size)
    far = near + size
    inside = (near >= lot.v0 + 0.3) & (far <= lot.v1 - 0.3)
    side = np.where(kind == "front", 0.05, np.clip(0.1 * width, 0.3, 4.0))
    left = np.maximum(_edge(lot.ub0, lot.ut0, lot, near), _edge(lot.ub0, lot.ut0, lot, far)) + side
    right = np.minimum(_edge(lot.ub1, lot.ut1, lot, near), _edge(lot.ub1, lot.ut1, lot, far)) - side
    if rank > 1:
        share = rng.uniform(0.25, 0.45, chosen.size)
        right = np.where(rank == 2, left + (right - left) * share, right)
        left = np.where(rank == 3, right - (right - left) * share, left)
    fits = inside & (right - left >= _MIN_SIDE) & (far - near >= _MIN_SIDE)
    b = city.blocks
    ids = lot.block[fits]
    u = np.stack([left[fits], right[fits], right[fits], left[fits]], axis=1)
    v = np.stack([near[fits], near[fits], far[fits], far[fits]], axis=1)
    x, y = to_world(b.ox[ids][:, None], b.oy[ids][:, None], b.angle[ids][:, None], u, v)
    geom = quads(x, y) if ids.size else np.empty(0, dtype=object)
    clip = np.flatnonzero(~lot.exact[fits])
    if clip.size:
        geom[clip] = largest_part(polygonal(shapely.intersection(geom[clip], lot.geom[fits][clip])))
    keep = (
        (shapely.area(geom) >= _MIN_FOOTPRINT) & (shapely.get_type_id(geom) == 3)
        if ids.size
        else np.empty(0, bool)
    )
    return _Placed(geom[keep], chosen[fits][keep])


def _edge(bottom: np.ndarray, top: np.ndarray, lot: Lots, v: np.ndarray) -> np.ndarray:
    """u of a skewed cut line at depth ``v`` (linear between the row's edges)."""
    return bottom + (top - bottom) * (v - lot.v0) / (lot.v1 - lot.v0)


def _levels(utr: np.ndarray, rank: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Storeys: by zone for main buildings (a few towers downtown), one for annexes."""
    low = np.ones(utr.size, dtype=np.int64)
    high = np.full(utr.size, 3, dtype=np.int64)
    assigned = np.zeros(utr.size, dtype=bool)
    for prefix, (lo, hi) in _LEVELS:
        match = ~assigned & np.char.startswith(utr, prefix)
        low[match], high[match] = lo, hi
        assigned |= match
    levels = rng.integers(low, high + 1)
    return np.where(rank == 1, levels, 1).astype(np.int64)


def _destinations(utr: np.ndarray, rank: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """CL dwelling, CAS annex, CIE industrial, CA administrative/social (ANCPI codes)."""
    draw = rng.random(utr.size)
    result = np.full(utr.size, "CL", dtype=object)
    mixed = (
        np.char.startswith(utr, "M")
        | np.char.startswith(utr, "CB")
        | np.char.startswith(utr, "ZCP_C")
    )
    result[mixed & (draw < 0.3)] = "CA"
    result[np.char.startswith(utr, "IS")] = "CA"
    industrial = np.isin(utr, ["A", "UI", "ET", "T_ID", "T_ET", "TA"]) | (
        np.char.startswith(utr, "RiM") & (draw < 0.5)
    )
    result[industrial] = "CIE"
    result[rank > 1] = "CAS"
    return result
