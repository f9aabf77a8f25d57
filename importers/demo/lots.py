"""Parcellation: blocks cut into rows of lots, sized so that the city holds N imobile.

Every lot is a quadrilateral of its block's rotated frame: rows across the block depth,
cut lines across each row whose two ends are jittered separately (so lots are slightly
skewed, as real ones are). Blocks clipped by a district edge, park or river clip their
lots too. All of it is array arithmetic over every lot at once, then one vectorised
shapely call per step, which is what lets a million lots be drawn in seconds.

Lot size follows the city: small plots in the centre, bigger ones outwards, large
plots for blocks of flats and industry. One scale factor, found by bisection, makes the
lots add up to the requested count; when even the largest plausible plots would give
too many (a small demo), only the blocks nearest the centre are parcelled - the rest
is land that has not been registered yet, as in any Romanian town.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from gis_core.errors import InvalidParameter
from importers.demo.city import City
from importers.demo.geometry import group_index, largest_part, polygonal, quads, to_world

EXTRAVILAN_SHARE = 0.05
_OVERSHOOT = 1.07
_MIN_LOT_SHARE = 0.3
_MIN_LOT_AREA = 25.0
# Largest mean plot (m2) before the demo stops covering the whole area.
_MAX_BASE = {True: 2600.0, False: 30000.0}
# Relative plot size and depth/width ratio by district character.
_KIND_SIZE = {"central": 0.55, "houses": 1.0, "collective": 2.6, "industrial": 4.0}
_KIND_ASPECT = {"central": 1.7, "houses": 2.3, "collective": 1.1, "industrial": 1.3}
_FIELD_ASPECT = 9.0


@dataclass(frozen=True)
class Lots:
    """The lots (future parcels) in their block frames.

    ``ub0/ub1`` are the u of the left/right cut at the row's front edge ``v0``,
    ``ut0/ut1`` at its back edge ``v1`` (block-frame coordinates, metres); ``faces_front``
    says whether the lot is addressed on the block's front street or its back street.
    """

    geom: np.ndarray
    block: np.ndarray
    exact: np.ndarray
    faces_front: np.ndarray
    ub0: np.ndarray
    ub1: np.ndarray
    ut0: np.ndarray
    ut1: np.ndarray
    v0: np.ndarray
    v1: np.ndarray

    def __len__(self) -> int:
        return int(self.block.size)

    def take(self, index: np.ndarray) -> Lots:
        """The lots at ``index`` (in that order)."""
        return Lots(**{name: getattr(self, name)[index] for name in self.__dataclass_fields__})

    @staticmethod
    def concat(parts: list[Lots]) -> Lots:
        names = Lots.__dataclass_fields__
        return Lots(**{n: np.concatenate([getattr(p, n) for p in parts]) for n in names})


def parcellate(city: City, parcels: int, seed: int) -> Lots:
    """Exactly ``parcels`` lots: about 95 % inside the intravilan, the rest fields outside."""
    rng = np.random.default_rng([seed, parcels, 71])
    outside = max(1, round(parcels * EXTRAVILAN_SHARE)) if parcels >= 20 else 0
    inside = _fill(city, np.flatnonzero(city.blocks.intravilan), parcels - outside, rng)
    fields = _fill(city, np.flatnonzero(~city.blocks.intravilan), outside, rng)
    return Lots.concat([inside, fields])


def _fill(city: City, candidates: np.ndarray, wanted: int, rng: np.random.Generator) -> Lots:
    """``wanted`` lots on the candidate blocks, shrinking plots until enough are drawn."""
    if wanted == 0:
        return _draw(city, candidates[:0], np.empty(0), np.empty(0), rng)
    size, aspect, priority = _block_character(city, candidates, rng)
    coverage = shapely.area(city.blocks.geom[candidates]) / (
        city.blocks.width[candidates] * city.blocks.depth[candidates]
    )
    target = wanted * _OVERSHOOT
    for _ in range(8):
        base, chosen = _scale(city, candidates, size, aspect, coverage, priority, target)
        lots = _draw(city, candidates[chosen], base * size[chosen], aspect[chosen], rng)
        if len(lots) >= wanted:
            drop = rng.choice(len(lots), len(lots) - wanted, replace=False)
            keep = np.setdiff1d(np.arange(len(lots)), drop)
            return lots.take(keep)
        target *= 1.05 * wanted / max(len(lots), 1)
    raise InvalidParameter(f"cannot fit {wanted} parcels in the demo city", locator="parcels")


def _block_character(
    city: City, candidates: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Relative plot size, plot aspect and parcelling priority of each candidate block."""
    blocks = city.blocks
    centroids = shapely.get_coordinates(shapely.centroid(blocks.geom[candidates]))
    distance = np.hypot(centroids[:, 0] - city.centre[0], centroids[:, 1] - city.centre[1])
    noise = rng.lognormal(0.0, 0.35, candidates.size)
    if blocks.intravilan[candidates].all():
        kinds = [city.districts[d].kind for d in blocks.district[candidates]]
        size = np.asarray([_KIND_SIZE[k] for k in kinds]) * (
            0.45 + 0.55 * np.minimum(distance / 4000.0, 2.0)
        )
        aspect = np.asarray([_KIND_ASPECT[k] for k in kinds])
        return size * noise**0.5, aspect, distance * noise
    edge = shapely.distance(city.intravilan.boundary, shapely.points(centroids))
    size = 1.0 + np.minimum(edge / 2000.0, 2.0)
    return size * noise**0.5, np.full(candidates.size, _FIELD_ASPECT), edge * noise


def _expected(
    city: City, blocks: np.ndarray, area: np.ndarray, aspect: np.ndarray, coverage: np.ndarray
) -> np.ndarray:
    """Lots each block will hold at the given plot areas (before clipping losses)."""
    rows, cols = _grid_counts(city.blocks.width[blocks], city.blocks.depth[blocks], area, aspect)
    return rows * cols * coverage


def _grid_counts(
    width: np.ndarray, depth: np.ndarray, area: np.ndarray, aspect: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    lot_depth = np.sqrt(area * aspect)
    rows = np.maximum(1, np.rint(depth / lot_depth)).astype(np.int64)
    lot_width = area * rows / depth
    cols = np.maximum(1, np.rint(width / lot_width)).astype(np.int64)
    return rows, cols


def _scale(
    city: City,
    candidates: np.ndarray,
    size: np.ndarray,
    aspect: np.ndarray,
    coverage: np.ndarray,
    priority: np.ndarray,
    target: float,
) -> tuple[float, np.ndarray]:
    """The plot-size scale giving ``target`` lots, and which blocks to parcel.

    All blocks if the scale stays plausible, otherwise the highest-priority blocks
    (nearest the centre, or nearest the built-up area for fields) at the largest scale.
    """
    largest = _MAX_BASE[bool(city.blocks.intravilan[candidates[0]])]
    at_largest = _expected(city, candidates, largest * size, aspect, coverage)
    if at_largest.sum() > target:
        order = np.argsort(priority, kind="stable")
        enough = int(np.searchsorted(np.cumsum(at_largest[order]), target)) + 1
        return largest, np.sort(order[:enough])
    low, high = 1.0, largest
    for _ in range(50):
        middle = np.sqrt(low * high)
        count = _expected(city, candidates, middle * size, aspect, coverage).sum()
        low, high = (middle, high) if count > target else (low, middle)
    return low, np.arange(candidates.size)


def _draw(
    city: City, blocks: np.ndarray, area: np.ndarray, aspect: np.ndarray, rng: np.random.Generator
) -> Lots:
    """Cut the given blocks into lots of about ``area`` m2 (vectorised over all lots)."""
    b = city.blocks
    width, depth = b.width[blocks], b.depth[blocks]
    n_rows, n_cols = _grid_counts(width, depth, area, aspect)
    # Row edges: n_rows + 1 per block, inner ones jittered.
    edge_block = np.repeat(np.arange(blocks.size), n_rows + 1)
    edge_k = group_index(n_rows + 1)
    inner = (edge_k > 0) & (edge_k < n_rows[edge_block])
    edge_v = depth[edge_block] * (edge_k + inner * rng.uniform(-0.12, 0.12, edge_k.size))
    edge_v /= n_rows[edge_block]
    edge_start = np.cumsum(n_rows + 1) - (n_rows + 1)
    row_block = np.repeat(np.arange(blocks.size), n_rows)
    row_k = group_index(n_rows)
    row_v0 = edge_v[edge_start[row_block] + row_k]
    row_v1 = edge_v[edge_start[row_block] + row_k + 1]
    # Cuts: each row gets its own count and skewed cut lines.
    row_cols = np.maximum(
        1, np.rint(n_cols[row_block] * rng.uniform(0.85, 1.15, row_block.size))
    ).astype(np.int64)
    cut_row = np.repeat(np.arange(row_block.size), row_cols + 1)
    cut_k = group_index(row_cols + 1)
    cut_inner = (cut_k > 0) & (cut_k < row_cols[cut_row])
    span = width[row_block[cut_row]] / row_cols[cut_row]
    cut_bottom = span * (cut_k + cut_inner * rng.uniform(-0.28, 0.28, cut_k.size))
    cut_top = span * (cut_k + cut_inner * rng.uniform(-0.28, 0.28, cut_k.size))
    cut_start = np.cumsum(row_cols + 1) - (row_cols + 1)
    lot_row = np.repeat(np.arange(row_block.size), row_cols)
    left = cut_start[lot_row] + group_index(row_cols)
    lot_block = row_block[lot_row]
    block_id = blocks[lot_block]
    u_base, v_base = b.u0[block_id], b.v0[block_id]
    lots = Lots(
        geom=np.empty(0),
        block=block_id,
        exact=b.full[block_id],
        faces_front=row_k[lot_row] < np.maximum(n_rows[lot_block], 2) / 2.0,
        ub0=u_base + cut_bottom[left],
        ub1=u_base + cut_bottom[left + 1],
        ut0=u_base + cut_top[left],
        ut1=u_base + cut_top[left + 1],
        v0=v_base + row_v0[lot_row],
        v1=v_base + row_v1[lot_row],
    )
    return _shape(city, lots, area[lot_block])


def _shape(city: City, lots: Lots, nominal: np.ndarray) -> Lots:
    """Lot polygons: exact quads in whole blocks, clipped ones elsewhere; slivers dropped."""
    b = city.blocks
    u = np.stack([lots.ub0, lots.ub1, lots.ut1, lots.ut0], axis=1)
    v = np.stack([lots.v0, lots.v0, lots.v1, lots.v1], axis=1)
    x, y = to_world(
        b.ox[lots.block][:, None], b.oy[lots.block][:, None], b.angle[lots.block][:, None], u, v
    )
    geom = quads(x, y) if len(lots) else np.empty(0, dtype=object)
    clip = np.flatnonzero(~lots.exact)
    if clip.size:
        clipped = polygonal(shapely.intersection(geom[clip], b.geom[lots.block[clip]]))
        geom[clip] = largest_part(clipped)
    area = shapely.area(geom) if len(lots) else np.empty(0)
    keep = (area >= _MIN_LOT_SHARE * nominal) & (area >= _MIN_LOT_AREA)
    keep &= shapely.get_type_id(geom) == 3
    shaped = Lots(**{**{n: getattr(lots, n) for n in Lots.__dataclass_fields__}, "geom": geom})
    return shaped.take(np.flatnonzero(keep))
