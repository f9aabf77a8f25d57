"""The skeleton of the synthetic Cluj-Napoca: outline, intravilan, districts, river, streets.

The real UAT outline (OpenStreetMap) is the only real geometry. Inside it the city is
laid out the way Cluj actually grew, so maps look plausible: a historic core at Piața
Unirii, the Someșul Mic flowing west to east just north of it, collective-housing
districts (Mănăștur, Gheorgheni, Mărăști) and house districts on the hills, industry to
the north-east, the airport at the eastern edge, fields and forest outside the built-up
area. Each district gets its own rotated street grid; radial avenues cut across them.
Nothing here depends on the number of parcels, so every size of the demo shares a city.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from importers.demo import sources
from importers.demo.geometry import blob, polygonal, rectangles, to_local, to_world

# Piața Unirii, the historic centre (WGS84).
CENTRE_LONLAT = (23.5899, 46.7693)
INTRAVILAN_SHARE = (0.56, 0.63)
_MIN_BLOCK_SHARE = 0.22
_STREET_CLEARANCE = 0.5

# name, offset east and north of the centre (m), character of the district.
DISTRICTS: tuple[tuple[str, float, float, str], ...] = (
    ("Centru", 0, 0, "central"),
    ("Gruia", -1700, 1300, "houses"),
    ("Grigorescu", -3100, 300, "collective"),
    ("Mănăștur", -3300, -1500, "collective"),
    ("Zorilor", -400, -2000, "collective"),
    ("Andrei Mureșanu", 1700, -1300, "houses"),
    ("Gheorgheni", 3100, -700, "collective"),
    ("Mărăști", 2200, 900, "collective"),
    ("Între Lacuri", 4300, 400, "collective"),
    ("Iris", 300, 2700, "industrial"),
    ("Bulgaria", 2700, 2500, "industrial"),
    ("Dâmbul Rotund", -2300, 2900, "houses"),
    ("Bună Ziua", 1500, -3300, "houses"),
    ("Borhanci", 3900, -2700, "houses"),
    ("Europa", -1400, -3700, "houses"),
    ("Becaș", -5600, -2700, "houses"),
    ("Sopor", 4300, 3300, "houses"),
    ("Someșeni", 6800, 1200, "houses"),
    ("Zona Industrială Est", 7200, 3600, "industrial"),
    ("Făget", 600, -5600, "houses"),
    ("Bordanc", -6000, 1400, "houses"),
)
# Block size ranges (length along the street, depth) and street width per character.
BLOCK_SIZES: dict[str, tuple[tuple[float, float], tuple[float, float], float]] = {
    "central": ((70, 115), (55, 85), 10.0),
    "collective": ((160, 260), (110, 170), 14.0),
    "houses": ((120, 210), (70, 110), 10.0),
    "industrial": ((210, 330), (140, 230), 14.0),
    "extravilan": ((300, 520), (180, 320), 0.0),
}
# Radial avenues: real names, bearing (degrees counter-clockwise from east).
AVENUES: tuple[tuple[str, float], ...] = (
    ("Bulevardul 21 Decembrie 1989", 8),
    ("Calea Dorobanților", 32),
    ("Bulevardul Muncii", 52),
    ("Calea Baciului", 148),
    ("Calea Moților", 172),
    ("Calea Florești", 192),
    ("Calea Mănăștur", 214),
    ("Calea Turzii", 276),
    ("Bulevardul Nicolae Titulescu", 312),
    ("Calea Dezmirului", 338),
)
# The Someșul Mic, west to east (offsets from the centre, m), before meandering.
RIVER_COURSE = (
    (-9500, -700),
    (-6500, -350),
    (-3800, 150),
    (-1300, 250),
    (0, 550),
    (1500, 950),
    (3500, 1450),
    (6000, 1900),
    (8500, 2350),
    (12000, 2900),
)
# name, offset of the centre (m), radius (m), stretch.
PARKS = (
    ("Parcul Central Simion Bărnuțiu", (-750, 180), 330.0, (1.9, 0.7)),
    ("Grădina Botanică Alexandru Borza", (-250, -750), 230.0, (1.2, 1.0)),
    ("Parcul Iuliu Hațieganu", (-1750, -250), 230.0, (1.4, 0.9)),
    ("Parcul Rozelor", (2500, 1250), 190.0, (1.6, 0.8)),
    ("Cetățuia", (150, 780), 200.0, (1.3, 0.9)),
    ("Parcul Între Lacuri", (4300, 300), 260.0, (1.5, 0.8)),
)
AIRPORT = ((8700, 1500), 3600.0, 650.0, 12.0)  # centre offset, length, width, bearing


@dataclass(frozen=True)
class District:
    """A Voronoi cell of the intravilan around a real neighbourhood's position."""

    name: str
    kind: str
    seed_x: float
    seed_y: float
    geom: BaseGeometry


@dataclass(frozen=True)
class Blocks:
    """City blocks (and extravilan fields) with the local frame of their parcellation.

    A block is the rectangle ``[u0, u0+width] x [v0, v0+depth]`` of a rotated frame
    (origin ``ox, oy``, angle ``angle``), possibly clipped (``full`` false) by the
    district edge, a park, the river or an avenue; ``geom`` is what remains.
    ``line_*`` are the street lines on its four sides (-1: no named street).
    """

    geom: np.ndarray
    full: np.ndarray
    ox: np.ndarray
    oy: np.ndarray
    angle: np.ndarray
    u0: np.ndarray
    v0: np.ndarray
    width: np.ndarray
    depth: np.ndarray
    district: np.ndarray
    intravilan: np.ndarray
    sector: np.ndarray
    line_front: np.ndarray
    line_back: np.ndarray
    line_left: np.ndarray
    line_right: np.ndarray

    def __len__(self) -> int:
        return int(self.geom.size)


@dataclass(frozen=True)
class StreetLines:
    """Street centre lines before naming: one per grid line or avenue (clipped)."""

    geom: np.ndarray
    district: np.ndarray
    avenue_name: tuple[str | None, ...]


@dataclass(frozen=True)
class City:
    """The whole skeleton; parcels, zones and restrictions are laid on it."""

    boundary: BaseGeometry
    intravilan: BaseGeometry
    centre: tuple[float, float]
    districts: tuple[District, ...]
    river: BaseGeometry
    river_corridor: BaseGeometry
    parks: tuple[tuple[str, BaseGeometry], ...]
    airport: BaseGeometry
    avenues: tuple[tuple[str, BaseGeometry], ...]
    extravilan_sectors: tuple[BaseGeometry, ...]
    lines: StreetLines
    blocks: Blocks

    def offset(self, dx: float, dy: float) -> tuple[float, float]:
        """A point given as metres east and north of Piața Unirii."""
        return self.centre[0] + dx, self.centre[1] + dy


def build_city(seed: int) -> City:
    """Lay out the city for one seed (every random choice comes from this generator)."""
    rng = np.random.default_rng([seed, 70])
    boundary = sources.boundary_stereo70()
    centre = sources.lonlat_to_stereo70(*CENTRE_LONLAT)
    intravilan = _intravilan(boundary, centre, rng)
    river = _river(boundary, centre, rng)
    river_corridor = river.buffer(35.0)
    parks = tuple(
        (name, blob((centre[0] + dx, centre[1] + dy), r, rng, stretch=s, rotation=0.3))
        for name, (dx, dy), r, s in PARKS
    )
    airport = _airport(boundary, centre)
    districts = _districts(intravilan, centre)
    avenues = _avenues(intravilan, centre, rng)
    blocked = shapely.union_all(
        np.asarray(
            [
                river_corridor,
                airport,
                *(geom for _, geom in parks),
                *(line.buffer(15.0) for _, line in avenues),
            ],
            dtype=object,
        )
    )
    grids = [_district_grid(d, intravilan, blocked, rng) for d in districts]
    sectors = _extravilan_sectors(boundary, intravilan, centre)
    extravilan = shapely.difference(boundary.buffer(-2.0), intravilan.buffer(2.0))
    extravilan = shapely.difference(extravilan, shapely.union(river_corridor, airport))
    fields = [
        _field_grid(index, sector, extravilan, rng, len(districts))
        for index, sector in enumerate(sectors)
    ]
    lines = _merge_lines(grids, avenues)
    blocks = _merge_blocks([*grids, *fields])
    return City(
        boundary=boundary,
        intravilan=intravilan,
        centre=centre,
        districts=districts,
        river=river,
        river_corridor=river_corridor,
        parks=parks,
        airport=airport,
        avenues=avenues,
        extravilan_sectors=sectors,
        lines=lines,
        blocks=blocks,
    )


def _intravilan(
    boundary: BaseGeometry, centre: tuple[float, float], rng: np.random.Generator
) -> BaseGeometry:
    """A smooth, lobed built-up area sized to 56-63 % of the UAT.

    It is the union of irregular blobs around the neighbourhoods (so it grows along the
    valley and up the hills the way the real city did); one common scale, found by
    bisection, makes it cover the share of the UAT this seed asked for.
    """
    inner = boundary.buffer(-300.0)
    target = rng.uniform(*INTRAVILAN_SHARE) * boundary.area
    lobes = [
        blob(
            (centre[0] + dx, centre[1] + dy),
            (1.35 if kind == "central" else rng.uniform(0.75, 1.15)),
            rng,
            stretch=(rng.uniform(1.0, 1.5), rng.uniform(0.7, 1.0)),
            rotation=rng.uniform(-0.4, 0.4),
            roughness=0.35,
        )
        for _, dx, dy, kind in DISTRICTS
    ]
    low, high = 500.0, 6000.0
    for _ in range(30):
        scale = (low + high) / 2.0
        area = _lobes(lobes, scale, inner).area
        low, high = (scale, high) if area < target else (low, scale)
    core = _lobes(lobes, (low + high) / 2.0, inner)
    parts = [part for part in shapely.get_parts(core) if part.area > 1_000_000.0]
    return shapely.union_all(np.asarray(parts, dtype=object))


def _scale_about_centroid(shape: BaseGeometry, scale: float) -> BaseGeometry:
    anchor = np.asarray(shape.centroid.coords[0])

    def scaled(xy: np.ndarray) -> np.ndarray:
        return (xy - anchor) * scale + anchor

    return shapely.transform(shape, scaled)


def _lobes(lobes: list[BaseGeometry], scale: float, inner: BaseGeometry) -> BaseGeometry:
    """The lobes at one scale (about their own centres), merged, smoothed and clipped."""
    scaled = [_scale_about_centroid(lobe, scale) for lobe in lobes]
    merged = shapely.union_all(np.asarray(scaled, dtype=object))
    smooth = merged.buffer(400.0, quad_segs=4).buffer(-400.0, quad_segs=4)
    return shapely.intersection(smooth, inner)


def _river(
    boundary: BaseGeometry, centre: tuple[float, float], rng: np.random.Generator
) -> BaseGeometry:
    """The Someșul Mic: the real course's shape, with seeded meanders, clipped to the UAT."""
    course = np.asarray(RIVER_COURSE, dtype=float) + np.asarray(centre)
    line = shapely.LineString(course)
    distances = np.arange(0.0, line.length, 20.0)
    points = shapely.line_interpolate_point(line, distances)
    xy = shapely.get_coordinates(points)
    tangent = np.gradient(xy, axis=0)
    normal = np.column_stack([-tangent[:, 1], tangent[:, 0]])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    wobble = np.zeros_like(distances)
    for wavelength in (700.0, 1300.0, 2900.0):
        amplitude = rng.uniform(40.0, 110.0) * (wavelength / 1300.0) ** 0.5
        wobble += amplitude * np.sin(2 * np.pi * distances / wavelength + rng.uniform(0, 6.3))
    meandering = shapely.LineString(xy + normal * wobble[:, None])
    return shapely.intersection(meandering, boundary)


def _airport(boundary: BaseGeometry, centre: tuple[float, float]) -> BaseGeometry:
    """The airfield: a rotated rectangle at the eastern edge, clipped to the UAT."""
    (dx, dy), length, width, bearing = AIRPORT
    field = rectangles(
        centre[0] + dx,
        centre[1] + dy,
        np.radians(bearing),
        np.asarray([-length / 2]),
        np.asarray([-width / 2]),
        np.asarray([length / 2]),
        np.asarray([width / 2]),
    )[0]
    return shapely.intersection(field, boundary.buffer(-300.0))


def _districts(intravilan: BaseGeometry, centre: tuple[float, float]) -> tuple[District, ...]:
    """Voronoi cells of the district positions, cut to the intravilan."""
    seeds = np.asarray([(centre[0] + dx, centre[1] + dy) for _, dx, dy, _ in DISTRICTS])
    cells = _voronoi(seeds, intravilan.envelope.buffer(5000.0))
    districts = []
    for (name, _, _, kind), (x, y), cell in zip(DISTRICTS, seeds, cells, strict=True):
        geom = shapely.intersection(cell, intravilan)
        districts.append(District(name, kind, float(x), float(y), geom))
    return tuple(districts)


def _voronoi(seeds: np.ndarray, extent: BaseGeometry) -> list[BaseGeometry]:
    """Voronoi cells in the order of ``seeds`` (shapely returns them unordered)."""
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=extent)
    )
    ordered = []
    for x, y in seeds:
        point = shapely.Point(x, y)
        hits = cells[shapely.contains(cells, point)]
        ordered.append(shapely.intersection(hits[0], extent))
    return ordered


def _avenues(
    intravilan: BaseGeometry, centre: tuple[float, float], rng: np.random.Generator
) -> tuple[tuple[str, BaseGeometry], ...]:
    """Radial avenues from the centre to the edge of the built-up area, gently bent."""
    avenues = []
    for name, bearing in AVENUES:
        radii = np.asarray([250.0, 2000.0, 4500.0, 8000.0, 13000.0])
        angles = np.radians(bearing + rng.normal(0.0, 3.0, radii.size))
        x = centre[0] + radii * np.cos(angles)
        y = centre[1] + radii * np.sin(angles)
        line = shapely.intersection(shapely.LineString(np.column_stack([x, y])), intravilan)
        avenues.append((name, shapely.line_merge(line) if line.geom_type != "LineString" else line))
    return tuple(avenues)


def _extravilan_sectors(
    boundary: BaseGeometry, intravilan: BaseGeometry, centre: tuple[float, float]
) -> tuple[BaseGeometry, ...]:
    """Eight wedges of the land outside the intravilan, each with its own field pattern."""
    angles = np.radians(np.arange(8) * 45.0 + 22.5)
    seeds = np.column_stack(
        [centre[0] + 8000.0 * np.cos(angles), centre[1] + 8000.0 * np.sin(angles)]
    )
    cells = _voronoi(seeds, boundary.envelope.buffer(5000.0))
    outside = shapely.difference(boundary, intravilan)
    return tuple(shapely.intersection(cell, outside) for cell in cells)


@dataclass(frozen=True)
class _Grid:
    """Blocks and street lines of one district (or extravilan sector) frame."""

    blocks: dict[str, np.ndarray]
    lines: np.ndarray
    line_district: int


def _district_grid(
    district: District, intravilan: BaseGeometry, blocked: BaseGeometry, rng: np.random.Generator
) -> _Grid:
    """A rotated street grid over one district; blocks are its cells minus the streets."""
    index = [d[0] for d in DISTRICTS].index(district.name)
    (w_low, w_high), (h_low, h_high), street = BLOCK_SIZES[district.kind]
    angle = np.radians(rng.uniform(-35.0, 35.0))
    region = shapely.difference(district.geom, blocked)
    frame = (district.seed_x, district.seed_y, angle)
    u_lines, v_lines = _grid_lines(district.geom, frame, (w_low, w_high), (h_low, h_high), rng)
    blocks = _cells(region, frame, u_lines, v_lines, street)
    blocks["district"] = np.full(blocks["geom"].size, index, dtype=np.int32)
    blocks["intravilan"] = np.ones(blocks["geom"].size, dtype=bool)
    lines = _street_lines(
        district.geom, shapely.difference(district.geom, blocked), frame, u_lines, v_lines
    )
    return _Grid(blocks, lines, index)


def _field_grid(
    index: int,
    sector: BaseGeometry,
    extravilan: BaseGeometry,
    rng: np.random.Generator,
    first_district: int,
) -> _Grid:
    """Fields (tarlale) of one extravilan wedge: a coarse rotated grid, no named streets."""
    (w_low, w_high), (h_low, h_high), _ = BLOCK_SIZES["extravilan"]
    angle = np.radians(rng.uniform(-40.0, 40.0))
    centroid = sector.centroid if not sector.is_empty else shapely.Point(0, 0)
    frame = (float(centroid.x), float(centroid.y), angle)
    region = shapely.intersection(sector, extravilan)
    u_lines, v_lines = _grid_lines(region, frame, (w_low, w_high), (h_low, h_high), rng)
    blocks = _cells(region, frame, u_lines, v_lines, 6.0)
    count = blocks["geom"].size
    blocks["district"] = np.full(count, first_district + index, dtype=np.int32)
    blocks["intravilan"] = np.zeros(count, dtype=bool)
    for side in ("line_front", "line_back", "line_left", "line_right"):
        blocks[side] = np.full(count, -1, dtype=np.int64)
    return _Grid(blocks, np.empty(0, dtype=object), -1)


def _grid_lines(
    area: BaseGeometry,
    frame: tuple[float, float, float],
    widths: tuple[float, float],
    depths: tuple[float, float],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the grid's cross lines (u) and long lines (v), irregularly spaced."""
    xy = shapely.get_coordinates(area)
    u, v = to_local(*frame, xy[:, 0], xy[:, 1])
    return _spaced(u.min(), u.max(), widths, rng), _spaced(v.min(), v.max(), depths, rng)


def _spaced(
    low: float, high: float, spacing: tuple[float, float], rng: np.random.Generator
) -> np.ndarray:
    count = int(np.ceil((high - low) / spacing[0])) + 2
    steps = rng.uniform(spacing[0], spacing[1], count)
    positions = low - steps[0] / 2 + np.concatenate([[0.0], np.cumsum(steps)])
    return positions[: int(np.searchsorted(positions, high)) + 1]


def _cells(
    region: BaseGeometry,
    frame: tuple[float, float, float],
    u_lines: np.ndarray,
    v_lines: np.ndarray,
    street: float,
) -> dict[str, np.ndarray]:
    """Grid cells shrunk by half a street on each side, clipped to ``region``.

    Cells wholly inside stay exact rectangles (``full``): their lots need no clipping.
    Clipped cells are split into their parts; slivers under a fifth of a cell are dropped.
    """
    nu, nv = u_lines.size - 1, v_lines.size - 1
    grid_u, grid_v = np.meshgrid(np.arange(nu), np.arange(nv), indexing="ij")
    iu, iv = grid_u.ravel(), grid_v.ravel()
    half = street / 2.0
    u0, u1 = u_lines[iu] + half, u_lines[iu + 1] - half
    v0, v1 = v_lines[iv] + half, v_lines[iv + 1] - half
    ox, oy, angle = frame
    cells = rectangles(ox, oy, angle, u0, v0, u1, v1)
    shapely.prepare(region)
    inside = shapely.contains_properly(region, cells)
    touching = ~inside & shapely.intersects(region, cells)
    clipped = polygonal(shapely.intersection(cells[touching], region))
    parts, owner = shapely.get_parts(clipped, return_index=True)
    cell_of_part = np.flatnonzero(touching)[owner]
    big = shapely.area(parts) >= _MIN_BLOCK_SHARE * shapely.area(cells[cell_of_part])
    parts, cell_of_part = parts[big], cell_of_part[big]
    chosen = np.concatenate([np.flatnonzero(inside), cell_of_part])
    geom = np.concatenate([cells[inside], parts])
    order = np.argsort(chosen, kind="stable")
    chosen, geom = chosen[order], geom[order]
    full = np.concatenate([np.ones(int(inside.sum()), bool), np.zeros(parts.size, bool)])[order]
    line_ids = {
        "line_front": iv[chosen],
        "line_back": iv[chosen] + 1,
        "line_left": nv + 1 + iu[chosen],
        "line_right": nv + 1 + iu[chosen] + 1,
    }
    return {
        "geom": geom,
        "full": full,
        "ox": np.full(chosen.size, ox),
        "oy": np.full(chosen.size, oy),
        "angle": np.full(chosen.size, angle),
        "u0": u0[chosen],
        "v0": v0[chosen],
        "width": (u1 - u0)[chosen],
        "depth": (v1 - v0)[chosen],
        **{name: ids.astype(np.int64) for name, ids in line_ids.items()},
    }


def _street_lines(
    district: BaseGeometry,
    open_land: BaseGeometry,
    frame: tuple[float, float, float],
    u_lines: np.ndarray,
    v_lines: np.ndarray,
) -> np.ndarray:
    """The grid's centre lines clipped to the district (long lines first, then cross lines).

    Lines are numbered like the cells' ``line_*`` ids: long line j is id j, cross line i
    is id ``len(v_lines) + i``. A line with nothing left inside the open land is empty.
    """
    xy = shapely.get_coordinates(district)
    u, v = to_local(*frame, xy[:, 0], xy[:, 1])
    ox, oy, angle = frame
    u_ends = np.asarray([u.min() - 10.0, u.max() + 10.0])
    v_ends = np.asarray([v.min() - 10.0, v.max() + 10.0])
    long_x, long_y = to_world(
        ox, oy, angle, np.tile(u_ends, (v_lines.size, 1)), v_lines[:, None] + 0 * u_ends
    )
    cross_x, cross_y = to_world(
        ox, oy, angle, u_lines[:, None] + 0 * v_ends, np.tile(v_ends, (u_lines.size, 1))
    )
    coords = np.concatenate(
        [np.stack([long_x, long_y], axis=-1), np.stack([cross_x, cross_y], axis=-1)]
    )
    lines = shapely.linestrings(coords)
    shapely.prepare(open_land)
    clipped = shapely.intersection(lines, open_land.buffer(_STREET_CLEARANCE))
    result = np.asarray(clipped, dtype=object).copy()
    result[shapely.length(clipped) <= 30.0] = None
    return result


def _merge_lines(grids: list[_Grid], avenues: tuple[tuple[str, BaseGeometry], ...]) -> StreetLines:
    """All street lines of the city; block line ids are rebased onto this numbering."""
    geoms: list[object] = []
    district: list[int] = []
    names: list[str | None] = []
    for grid in grids:
        offset = len(geoms)
        for side in ("line_front", "line_back", "line_left", "line_right"):
            ids = grid.blocks[side]
            valid = ids >= 0
            rebased = np.where(valid, ids + offset, -1)
            present = np.zeros(ids.size, dtype=bool)
            present[valid] = np.asarray([grid.lines[i] is not None for i in ids[valid]])
            grid.blocks[side] = np.where(present, rebased, -1)
        geoms.extend(grid.lines.tolist())
        district.extend([grid.line_district] * grid.lines.size)
        names.extend([None] * grid.lines.size)
    for name, line in avenues:
        geoms.append(line)
        district.append(-1)
        names.append(name)
    return StreetLines(
        geom=np.asarray(geoms, dtype=object),
        district=np.asarray(district, dtype=np.int32),
        avenue_name=tuple(names),
    )


def _merge_blocks(grids: list[_Grid]) -> Blocks:
    """One columnar block table, with each block's cadastral sector number."""
    columns = {
        name: np.concatenate([grid.blocks[name] for grid in grids]) for name in grids[0].blocks
    }
    columns["sector"] = _sectors(columns["district"], columns["geom"])
    return Blocks(**columns)


def _sectors(district: np.ndarray, geoms: np.ndarray) -> np.ndarray:
    """Cadastral sectors 1..~60: districts split by a 5.5 km grid, numbered district-wise."""
    centroids = shapely.get_coordinates(shapely.centroid(geoms))
    cell = np.floor(centroids / 5500.0).astype(np.int64)
    key = district.astype(np.int64) * 1_000_000 + (cell[:, 0] % 1000) * 1000 + cell[:, 1] % 1000
    _, sector = np.unique(key, return_inverse=True)
    return (sector + 1).astype(np.int32)
