"""Which staged features may overlap another, found without comparing every neighbour pair.

A cadastre is a coverage: neighbouring parcels share their boundary, vertex for vertex.
With every shell turned counter-clockwise and every hole clockwise, a shared stretch of
boundary is one edge walked once in each direction, by the two neighbours. So an edge
that appears exactly once in its direction and once in the other cannot be where two
interiors overlap; only features with some other edge (unmatched: a street gap, the
edge of the file, a neighbour drawn differently; or repeated in the same direction: a
copy) are *candidates*. Edges are matched by a hash of their two end points taken in
either order (each edge hashed once) and the direction they are walked in; a match is
confirmed on the coordinates, so a hash collision cannot hide an edge.

Staging only keeps each batch's rings (``EdgeSketch.add``); matching runs when the
candidates are asked for, after the load, on the thread that overlaps the database's
index builds, so the busy staging loop does not pay for it. It goes batch by batch: a
batch of a file is mostly one piece of the map, so most edges find their twin in it;
those that do not are kept in a pool and matched once all batches are done. A directed
edge seen again in a later batch finds no twin left in the pool, so copies are caught
across batches too.

Candidates and every feature whose box meets one go to GEOS coverage validation
(``shapely.coverage_invalid_edges``), in tiles that take every feature whose box meets
them: it flags the features having an edge inside another (an unmatched edge along a
street gap is valid). Matched edges are valid in GEOS's validation too, so the edge test
only removes work it would not flag. On a clean coverage the candidates are the
features at its rim, and GEOS sees a thin ring of them instead of everything. Flagged
features get the exact shared-area test with each neighbour (``overlaps``).

The rings are kept from staging (16 bytes a vertex: ~150 MB for a million eight-sided
parcels) to rebuild the few features GEOS must see; it all runs on its own core while
PostgreSQL stores the rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd
import shapely

from importers.geometry import Rings

TILE_FEATURES = 20_000  # features per coverage-validation tile (bounds GEOS memory)
_MAX_CELLS = 64  # boxes covering more grid cells are always checked
_GRID_STRIDE = np.int64(1 << 31)
_MIX = np.uint64(0x9E3779B97F4A7C15)
_MIX2 = np.uint64(0xC2B2AE3D27D4EB4F)


class _Edges(NamedTuple):
    """Directed ring edges: the hash of their end points, direction, end points, owner."""

    key: np.ndarray  # hash of the two end points, the same both ways
    up: np.ndarray  # walked from the end point of lower hash to the other
    tail: np.ndarray  # coordinates as complex numbers (x + iy): one value a point
    head: np.ndarray
    row: np.ndarray

    def take(self, picked: np.ndarray) -> _Edges:
        return _Edges(*(values[picked] for values in self))

    @staticmethod
    def join(parts: Sequence[_Edges]) -> _Edges:
        return _Edges(*(np.concatenate(values) for values in zip(*parts, strict=True)))


@dataclass
class _Chunk:
    """The rings of one staged batch."""

    coords: np.ndarray  # (vertices, 2)
    sizes: np.ndarray  # vertices per ring (closed: the last repeats the first)
    shells: np.ndarray  # the first ring of each polygon
    rows: np.ndarray  # row number of each ring (rings of a row are consecutive)

    @property
    def starts(self) -> np.ndarray:
        starts = np.zeros(self.sizes.shape[0], dtype=np.int64)
        np.cumsum(self.sizes[:-1], out=starts[1:])
        return starts

    def edges(self) -> _Edges:
        """Every non-degenerate edge, shells turned counter-clockwise, holes clockwise.

        Edge i runs from vertex i to vertex i + 1 (the last vertex of a ring starts
        none): shifted views of the vertex arrays, no index gathers.
        """
        coords, sizes, starts = self.coords, self.sizes, self.starts
        x, y = coords[:, 0], coords[:, 1]
        origin_x = np.repeat(x[starts], sizes)[:-1]
        origin_y = np.repeat(y[starts], sizes)[:-1]
        real = np.ones(coords.shape[0] - 1, dtype=bool)
        real[(starts + sizes - 1)[:-1]] = False  # from a ring's last vertex to the next ring
        cross = (x[:-1] - origin_x) * (y[1:] - origin_y) - (x[1:] - origin_x) * (y[:-1] - origin_y)
        cross[~real] = 0.0
        twice_area = np.add.reduceat(np.r_[cross, 0.0], starts)
        flip = np.repeat((twice_area < 0) == self.shells, sizes)[:-1]
        real &= (x[:-1] != x[1:]) | (y[:-1] != y[1:])
        vertex = _vertex_hash(coords)
        start, end = vertex[:-1][real], vertex[1:][real]
        points = np.ascontiguousarray(coords, dtype=np.float64).view(np.complex128)[:, 0]
        here, there = points[:-1][real], points[1:][real]
        flip = flip[real]
        return _Edges(
            _edge_hash(np.minimum(start, end), np.maximum(start, end)),
            (start < end) != flip,
            np.where(flip, there, here),
            np.where(flip, here, there),
            np.repeat(self.rows, sizes)[:-1][real],
        )

    def polygons(self, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The MultiPolygons of the rows ``wanted`` that this chunk holds."""
        ring_mask = np.isin(self.rows, wanted)
        if not ring_mask.any():
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=object)
        sizes = self.sizes[ring_mask]
        vertex_mask = np.repeat(ring_mask, self.sizes)
        rings = np.asarray(
            shapely.linearrings(
                self.coords[vertex_mask], indices=np.repeat(np.arange(sizes.shape[0]), sizes)
            ),
            dtype=object,
        )
        shells = self.shells[ring_mask]
        polygons = np.asarray(shapely.polygons(rings, indices=np.cumsum(shells) - 1), dtype=object)
        part_rows = self.rows[ring_mask][shells]
        new_row = np.r_[True, part_rows[1:] != part_rows[:-1]]
        geoms = shapely.multipolygons(polygons, indices=np.cumsum(new_row) - 1)
        return part_rows[new_row], np.asarray(geoms, dtype=object)


@dataclass
class EdgeSketch:
    """The staged features' rings, boxes, and the outcome of edge matching so far."""

    chunks: list[_Chunk] = field(default_factory=list)
    box_rows: list[np.ndarray] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    matched: int = 0  # chunks whose edges are matched
    pool: list[_Edges] = field(default_factory=list)  # edges still without their twin
    flagged: list[np.ndarray] = field(default_factory=list)  # rows with a bad edge

    def add(self, rows: np.ndarray, geoms: np.ndarray, rings: Rings | None = None) -> None:
        """Keep the rings of ``geoms`` (valid 2D Polygons/MultiPolygons, or None) of
        ``rows``; their edges are matched later (module docstring). ``rings``: the
        one-ring Polygons' coordinates when the caller has them."""
        rows = np.asarray(rows, dtype=np.int64)
        drawn = ~shapely.is_missing(geoms)
        if not drawn.any():
            return
        self.box_rows.append(rows[drawn])
        self.boxes.append(shapely.bounds(geoms[drawn]))
        # Most parcels are one ring: their vertices are read without making ring objects.
        rings = rings if rings is not None else Rings.of(geoms)
        simple = rings.simple
        chunks = []
        if simple.any():
            shells = np.ones(rings.sizes.shape[0], dtype=bool)
            chunks.append(_Chunk(rings.coords, rings.sizes, shells, rows[simple]))
        rest = drawn & ~simple
        if rest.any():
            chunks.append(_complex_chunk(rows[rest], geoms[rest]))
        self.chunks.extend(chunks)

    def candidates(self) -> np.ndarray:
        """Rows with an edge not walked exactly once each way, across all batches."""
        for chunk in self.chunks[self.matched :]:
            pooled, bad = _match(chunk.edges(), final=False)
            self.pool.append(pooled)
            self.flagged.append(bad)
        self.matched = len(self.chunks)
        if not self.pool:
            return np.empty(0, dtype=np.int64)
        _, bad = _match(_Edges.join(self.pool), final=True)
        return np.unique(np.concatenate([*self.flagged, bad]))

    def suspects(self, tile_features: int | None = None) -> list[int]:
        """Row numbers of features GEOS coverage validation flags (module docstring)."""
        tile_features = tile_features or TILE_FEATURES
        candidates = self.candidates()
        if candidates.size == 0:
            return []
        return sorted(self._validate(self._meeting(candidates), tile_features))

    def overlaps(
        self, flagged: Sequence[int], tolerance_m2: float, folded: Mapping[int, int]
    ) -> list[tuple[int, int, float]]:
        """Pairs (row, row, m²) of features sharing at least ``tolerance_m2`` of interior,
        each involving a ``flagged`` row, largest first.

        Rows folded into another (parts of one feature, ``folded``: row → its first row)
        count as that row: their shared areas with a neighbour add up, and parts of one
        feature never overlap "each other".
        """
        if not self.chunks or not flagged:
            return []
        wanted = np.asarray(flagged, dtype=np.int64)
        numbers, geoms = self._polygons(self._meeting(wanted))
        shapely.prepare(geoms)
        mine = np.flatnonzero(np.isin(numbers, wanted))
        left, right = shapely.STRtree(geoms).query(geoms[mine], predicate="intersects")
        left = mine[left]
        first = np.vectorize(lambda row: folded.get(int(row), int(row)), otypes=[np.int64])
        owner_left, owner_right = first(numbers[left]), first(numbers[right])
        keep = owner_left != owner_right
        left, right = left[keep], right[keep]
        owner_left, owner_right = owner_left[keep], owner_right[keep]
        areas = shapely.area(shapely.intersection(geoms[left], geoms[right]))
        directed: dict[tuple[int, int], float] = {}
        for a, b, area in zip(
            owner_left.tolist(), owner_right.tolist(), areas.tolist(), strict=True
        ):
            directed[(a, b)] = directed.get((a, b), 0.0) + area
        pairs: dict[tuple[int, int], float] = {}
        for (a, b), area in directed.items():
            key = (min(a, b), max(a, b))
            pairs[key] = max(pairs.get(key, 0.0), area)
        found = [(a, b, area) for (a, b), area in pairs.items() if area >= tolerance_m2]
        return sorted(found, key=lambda pair: (-pair[2], pair[0], pair[1]))

    def _all_boxes(self) -> tuple[np.ndarray, np.ndarray]:
        return np.concatenate(self.box_rows), np.concatenate(self.boxes)

    def _meeting(self, candidates: np.ndarray) -> np.ndarray:
        """The candidates and (at least) every row whose box meets a candidate's box.

        Boxes are binned on a grid of cells twice a typical candidate's size; a row
        sharing a cell with a candidate is taken (a few more than strictly needed).
        """
        rows, box = self._all_boxes()
        chosen = np.isin(rows, candidates)
        size = np.maximum(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1])
        cell = 2.0 * float(np.median(size[chosen])) or 1.0
        origin = box[:, :2].min(axis=0)
        first = np.floor((box[:, :2] - origin) / cell).astype(np.int64)
        last = np.floor((box[:, 2:] - origin) / cell).astype(np.int64)
        spans = last - first + 1
        count = spans[:, 0] * spans[:, 1]
        large = count > _MAX_CELLS  # rare huge boxes: checked anyway
        taken = _cells(first[chosen], spans[chosen], count[chosen])
        small = np.flatnonzero(~large)
        owner = np.repeat(small, count[small])
        near = _member(_cells(first[small], spans[small], count[small]), taken)
        meets = large | chosen
        meets[np.unique(owner[near])] = True
        return rows[meets]

    def _validate(self, chosen: np.ndarray, tile_features: int) -> set[int]:
        """Rows of ``chosen`` that GEOS coverage validation flags, tile by tile."""
        numbers, geoms = self._polygons(chosen)
        box = shapely.bounds(geoms)
        xmin, ymin = box[:, 0].min(), box[:, 1].min()
        xmax, ymax = box[:, 2].max(), box[:, 3].max()
        side = max(1, math.ceil(math.sqrt(numbers.shape[0] / tile_features)))
        width, height = (xmax - xmin) / side or 1.0, (ymax - ymin) / side or 1.0
        flagged: set[int] = set()
        for column in range(side):
            for row in range(side):
                x0, y0 = xmin + column * width, ymin + row * height
                meets = (box[:, 0] <= x0 + width) & (box[:, 2] >= x0)
                meets &= (box[:, 1] <= y0 + height) & (box[:, 3] >= y0)
                if np.count_nonzero(meets) < 2:
                    continue
                edges = shapely.coverage_invalid_edges(geoms[meets])
                flagged.update(numbers[meets][~shapely.is_empty(edges)].tolist())
        return flagged

    def _polygons(self, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The MultiPolygons of rows ``wanted``, rebuilt from the kept rings."""
        parts = [chunk.polygons(wanted) for chunk in self.chunks]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _complex_chunk(rows: np.ndarray, geoms: np.ndarray) -> _Chunk:
    """Rings of MultiPolygons and Polygons with holes (shells first, part by part)."""
    _, coords, offsets = shapely.to_ragged_array(geoms)
    if len(offsets) == 2:  # Polygons only: one part each
        ring_offsets, part_offsets = offsets
        geom_offsets: np.ndarray = np.arange(part_offsets.shape[0])
    else:
        ring_offsets, part_offsets, geom_offsets = offsets
    sizes = np.diff(ring_offsets).astype(np.int32)
    shells = np.zeros(sizes.shape[0], dtype=bool)
    shells[part_offsets[:-1][np.diff(part_offsets) > 0]] = True
    part_geom = np.repeat(np.arange(geom_offsets.shape[0] - 1), np.diff(geom_offsets))
    ring_part = np.repeat(np.arange(part_offsets.shape[0] - 1), np.diff(part_offsets))
    return _Chunk(
        np.ascontiguousarray(coords, dtype=np.float64), sizes, shells, rows[part_geom[ring_part]]
    )


def _match(edges: _Edges, *, final: bool) -> tuple[_Edges, np.ndarray]:
    """Match ``edges`` among themselves: returns the edges left for later (no twin yet;
    none when ``final``) and the rows of edges that are bad (a copy in the same
    direction, two twins, or, when ``final``, no twin at all)."""
    # An edge and its twin share a key: a key found twice, walked both ways, on the same
    # coordinates, is a match; found once, the edge waits; anything else is bad.
    codes, _ = pd.factorize(edges.key, sort=False)
    count = codes.shape[0]
    counts = np.bincount(codes)
    first = np.empty(counts.shape[0], dtype=np.int64)
    first[codes[::-1]] = np.arange(count - 1, -1, -1)
    last = np.empty(counts.shape[0], dtype=np.int64)
    last[codes] = np.arange(count)
    pair = np.flatnonzero(counts[codes] == 2)
    pair_first = first[codes[pair]]
    twin = np.where(pair_first == pair, last[codes[pair]], pair_first)
    matched = np.zeros(count, dtype=bool)
    matched[pair] = (
        (edges.up[pair] != edges.up[twin])
        & (edges.tail[pair] == edges.head[twin])
        & (edges.head[pair] == edges.tail[twin])
    )
    waiting = counts[codes] == 1
    if final:
        return edges.take(np.empty(0, dtype=np.int64)), edges.row[~matched]
    return edges.take(waiting), edges.row[~matched & ~waiting]


def _member(values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """``np.isin`` by hashing: millions of cell ids span too wide a range for its table
    method, and its sort costs twenty times more."""
    return np.asarray(pd.Series(values, copy=False).isin(wanted).to_numpy(), dtype=bool)


def _cells(first: np.ndarray, spans: np.ndarray, count: np.ndarray) -> np.ndarray:
    """The ids of the grid cells each box covers (``count`` of them), box after box."""
    owner = np.repeat(np.arange(count.shape[0]), count)
    local = np.arange(owner.shape[0]) - np.repeat(np.cumsum(count) - count, count)
    column = first[owner, 0] + local // spans[owner, 1]
    row = first[owner, 1] + local % spans[owner, 1]
    return column * _GRID_STRIDE + row


def _vertex_hash(coords: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each vertex's exact coordinates (their bit patterns)."""
    bits = np.ascontiguousarray(coords).view(np.uint64)
    with np.errstate(over="ignore"):
        mixed = (bits[:, 0] * _MIX) ^ (bits[:, 1] * _MIX2 + (bits[:, 1] >> np.uint64(29)))
        return mixed ^ (mixed >> np.uint64(31))


def _edge_hash(tail: np.ndarray, head: np.ndarray) -> np.ndarray:
    """A 64-bit hash of an ordered pair of vertex hashes (tail, head differs from head, tail)."""
    with np.errstate(over="ignore"):
        mixed = tail * _MIX2 + (head ^ (head >> np.uint64(27))) * _MIX
        return mixed ^ (mixed >> np.uint64(33))
