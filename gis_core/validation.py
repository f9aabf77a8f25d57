"""Geometry validation and repair for polygon layers (parcels, zones, restrictions).

Every polygon the platform stores is a valid 2D MultiPolygon with an area: overlays,
POT/CUT and the OGC services rely on it. Files from the field break that in a handful
of known ways, and each gets one answer here, vectorised over a whole batch:

- no geometry, an empty one, or one without any polygonal part: rejected;
- Z (or M) values: dropped, the plan view is what the cadastre records;
- invalid rings (self-intersections, bow-ties, spikes): repaired with GEOS make-valid
  ("structure" method: rings are re-noded, collapsed parts dropped) and flagged;
- collections mixing polygons with stray lines or points: the polygons are kept;
- a result whose area is (almost) zero: rejected, a parcel without area is no parcel.

Curved geometries never reach here: readers linearise them first (shapely has no curves).
The caller decides what a repair means for its data (the cadastre compares the repaired
area with the measured one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

MISSING = "missing_geometry"
EMPTY = "empty_geometry"
NOT_POLYGONAL = "not_polygonal"
ZERO_AREA = "zero_area"
REJECTIONS = {
    MISSING: "the feature has no geometry",
    EMPTY: "the geometry is empty",
    NOT_POLYGONAL: "the geometry has no polygon (points or lines only)",
    ZERO_AREA: "the polygon has no area (all its points lie on a line)",
}
# m² below which a repaired polygon counts as no polygon.
MIN_AREA = 0.0001

_POLYGON = 3
_MULTIPOLYGON = 6


@dataclass
class PolygonalResult:
    """Per input geometry: the clean MultiPolygon (None when rejected) and what was done."""

    geoms: np.ndarray  # object array of Polygon / MultiPolygon, or None when rejected
    rejected: np.ndarray  # object array: rejection code (see REJECTIONS) or None
    repaired: np.ndarray  # bool: make-valid changed the geometry
    dropped_z: np.ndarray  # bool: Z/M values were removed
    reasons: np.ndarray  # object array: why it was invalid (GEOS), for repaired ones

    @property
    def accepted(self) -> np.ndarray:
        return np.asarray(self.rejected == None)  # noqa: E711 (element-wise on object array)


def to_polygonal(geoms: np.ndarray, *, min_area: float = MIN_AREA) -> PolygonalResult:
    """Validate and repair an array of shapely geometries (see the module docstring).

    Single Polygons are left single (wrapping a million of them in GEOS costs seconds);
    whoever writes them into a MultiPolygon column wraps them.
    """
    geoms = np.asarray(geoms, dtype=object)
    count = geoms.shape[0]
    rejected = np.full(count, None, dtype=object)
    repaired = np.zeros(count, dtype=bool)
    reasons = np.full(count, None, dtype=object)
    missing = shapely.is_missing(geoms)
    rejected[missing] = MISSING
    present = ~missing
    empty = np.zeros(count, dtype=bool)
    empty[present] = shapely.is_empty(geoms[present])
    rejected[empty] = EMPTY
    work = present & ~empty
    dropped_z = np.zeros(count, dtype=bool)
    dropped_z[work] = shapely.has_z(geoms[work])
    out = np.full(count, None, dtype=object)
    out[work] = geoms[work]
    if dropped_z.any():
        out[dropped_z] = shapely.force_2d(out[dropped_z])
    invalid = np.zeros(count, dtype=bool)
    invalid[work] = ~shapely.is_valid(out[work])
    if invalid.any():
        reasons[invalid] = shapely.is_valid_reason(out[invalid])
        out[invalid] = shapely.make_valid(out[invalid], method="structure", keep_collapsed=False)
        repaired[invalid] = True
    polygons = _polygonal_parts(out, work)
    no_polygon = work & shapely.is_missing(polygons)
    rejected[no_polygon] = NOT_POLYGONAL
    has_polygon = work & ~no_polygon
    area = np.zeros(count)
    area[has_polygon] = shapely.area(polygons[has_polygon])
    flat = has_polygon & (area <= min_area)
    rejected[flat] = ZERO_AREA
    polygons[flat] = None
    repaired &= rejected == None  # noqa: E711
    return PolygonalResult(polygons, rejected, repaired, dropped_z & (rejected == None), reasons)  # noqa: E711


def _polygonal_parts(geoms: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The polygon parts of each geometry (None when it has none)."""
    result = np.full(geoms.shape[0], None, dtype=object)
    indices = np.flatnonzero(mask)
    if indices.size == 0:
        return result
    selected = geoms[indices]
    types = shapely.get_type_id(selected)
    simple = types == _MULTIPOLYGON
    result[indices[simple]] = selected[simple]
    single = types == _POLYGON
    result[indices[single]] = selected[single]  # writers wrap them (see importers.geometry)
    other = ~(simple | single)
    if other.any():
        _collect_polygons(selected[other], indices[other], result)
    return result


def _collect_polygons(geoms: np.ndarray, positions: np.ndarray, result: np.ndarray) -> None:
    """Polygons out of collections (make-valid output, GeometryCollections, lines)."""
    parts, owner = shapely.get_parts(geoms, return_index=True)
    # A collection may nest MultiPolygons: one more level flattens every polygon.
    nested = shapely.get_type_id(parts) == _MULTIPOLYGON
    if nested.any():
        sub, sub_owner = shapely.get_parts(parts[nested], return_index=True)
        parts = np.concatenate([parts[~nested], sub])
        owner = np.concatenate([owner[~nested], owner[nested][sub_owner]])
    keep = shapely.get_type_id(parts) == _POLYGON
    keep &= ~shapely.is_empty(parts)
    if not keep.any():
        return
    present, compact = np.unique(owner[keep], return_inverse=True)
    built = shapely.multipolygons(parts[keep], indices=compact)
    result[positions[present]] = np.asarray(built)


def thinness(geoms: np.ndarray, area: np.ndarray | None = None) -> np.ndarray:
    """Isoperimetric ratio 4πA/P² (1 for a disc, → 0 for a sliver); 0 for no geometry.
    ``area``: the geometries' areas, when the caller has them already."""
    if area is None:
        area = shapely.area(geoms)
    perimeter = shapely.length(geoms)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(perimeter > 0, 4 * np.pi * area / (perimeter * perimeter), 0.0)
    return np.nan_to_num(np.asarray(ratio, dtype=np.float64))
