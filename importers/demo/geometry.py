"""Small vectorised geometry builders shared by the generator modules.

Everything the generator draws (blobs, rotated rectangles, buffered lines) goes through
these helpers, so shapes are built from numpy arrays in one call instead of one shapely
object at a time; that is what keeps a million-parcel city in seconds.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

# Polygon type ids of shapely.get_type_id.
POLYGON = 3
MULTIPOLYGON = 6


def to_world(
    ox: np.ndarray | float,
    oy: np.ndarray | float,
    angle: np.ndarray | float,
    u: np.ndarray,
    v: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Local frame (u along the street, v across it) to map coordinates."""
    cos, sin = np.cos(angle), np.sin(angle)
    return ox + u * cos - v * sin, oy + u * sin + v * cos


def to_local(
    ox: float, oy: float, angle: float, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Map coordinates into a rotated local frame (the inverse of ``to_world``)."""
    dx, dy = x - ox, y - oy
    cos, sin = np.cos(angle), np.sin(angle)
    return dx * cos + dy * sin, -dx * sin + dy * cos


def quads(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Polygons from corner arrays of shape (n, 4), corners in ring order.

    Built through the ragged-array constructor: several times faster than
    ``shapely.polygons`` on millions of rings.
    """
    count = x.shape[0]
    ring_x = np.concatenate([x, x[:, :1]], axis=1)
    ring_y = np.concatenate([y, y[:, :1]], axis=1)
    coords = np.column_stack([ring_x.ravel(), ring_y.ravel()])
    ring_offsets = np.arange(0, 5 * count + 1, 5, dtype=np.int64)
    polygon_offsets = np.arange(count + 1, dtype=np.int64)
    return np.asarray(
        shapely.from_ragged_array(
            shapely.GeometryType.POLYGON, coords, (ring_offsets, polygon_offsets)
        ),
        dtype=object,
    )


def rectangles(
    ox: np.ndarray | float,
    oy: np.ndarray | float,
    angle: np.ndarray | float,
    u0: np.ndarray,
    v0: np.ndarray,
    u1: np.ndarray,
    v1: np.ndarray,
) -> np.ndarray:
    """Rotated rectangles [u0, u1] x [v0, v1] of local frames, as polygons."""
    u = np.stack([u0, u1, u1, u0], axis=1)
    v = np.stack([v0, v0, v1, v1], axis=1)
    x, y = to_world(
        np.asarray(ox)[..., None], np.asarray(oy)[..., None], np.asarray(angle)[..., None], u, v
    )
    return quads(x, y)


def blob(
    centre: tuple[float, float],
    radius: float,
    rng: np.random.Generator,
    *,
    stretch: tuple[float, float] = (1.0, 1.0),
    rotation: float = 0.0,
    roughness: float = 0.18,
    vertices: int = 96,
) -> BaseGeometry:
    """An irregular, smooth closed shape: a circle whose radius wobbles with a few harmonics.

    Real neighbourhood outlines, parks and protection zones are roundish but never
    circles; four random harmonics give that look while staying star-shaped (valid).
    """
    phi = np.linspace(0.0, 2.0 * np.pi, vertices, endpoint=False)
    wobble = np.ones_like(phi)
    for order in range(2, 6):
        amplitude = roughness * rng.uniform(0.3, 1.0) / order
        wobble += amplitude * np.cos(order * phi + rng.uniform(0.0, 2.0 * np.pi))
    u = radius * stretch[0] * wobble * np.cos(phi)
    v = radius * stretch[1] * wobble * np.sin(phi)
    x, y = to_world(centre[0], centre[1], rotation, u, v)
    return shapely.Polygon(np.column_stack([x, y]))


def polygonal(geoms: np.ndarray) -> np.ndarray:
    """The polygonal part of each geometry (lines and points of collections dropped)."""
    types = shapely.get_type_id(geoms)
    clean = np.asarray(geoms, dtype=object).copy()
    odd = np.flatnonzero((types != POLYGON) & (types != MULTIPOLYGON))
    if odd.size:
        parts, owner = shapely.get_parts(clean[odd], return_index=True)
        keep = np.isin(shapely.get_type_id(parts), (POLYGON, MULTIPOLYGON))
        merged = np.full(odd.size, None, dtype=object)
        for index in range(odd.size):
            mine = parts[keep & (owner == index)]
            merged[index] = shapely.union_all(mine) if mine.size else shapely.Polygon()
        clean[odd] = merged
    return clean


def largest_part(geoms: np.ndarray) -> np.ndarray:
    """Each geometry reduced to its largest polygon (parcels are one ring in CGXML)."""
    result = np.asarray(geoms, dtype=object).copy()
    multi = np.flatnonzero(shapely.get_num_geometries(result) > 1)
    if multi.size:
        parts, owner = shapely.get_parts(result[multi], return_index=True)
        areas = shapely.area(parts)
        order = np.lexsort((-areas, owner))
        first = np.ones(order.size, dtype=bool)
        first[1:] = owner[order][1:] != owner[order][:-1]
        result[multi[owner[order][first]]] = parts[order][first]
    return result


def multipolygons(geoms: np.ndarray) -> np.ndarray:
    """Every polygon as a one-part MultiPolygon (the storage type of the tables)."""
    geoms = np.asarray(geoms, dtype=object)
    single = shapely.get_type_id(geoms) == POLYGON
    result = geoms.copy()
    result[single] = shapely.multipolygons(geoms[single][:, None])
    return result


def group_index(counts: np.ndarray) -> np.ndarray:
    """0..k-1 within each group of a repeated array (``np.repeat(ids, counts)``)."""
    counts = np.asarray(counts, dtype=np.int64)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(int(counts.sum()), dtype=np.int64) - starts
