"""CRS handling for the services: parsing CRS URIs, axis order, and moving query
geometries into the storage CRS so the GiST index on ``geom`` is used.

Input geometries (bbox, CQL2 literals) are transformed in Python with the platform's
one transformation entry point (``gis_core.crs``: TransDatRO for Stereo 70), after
being clipped to the layer's extent, because a world-wide box has no meaning in Stereo
70 and lies outside the official grid. Output geometries come from the ETRS89 twin,
which was written with the same official transformation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import shapely
import sqlalchemy as sa
from pyproj import CRS
from pyproj.exceptions import CRSError
from shapely.geometry.base import BaseGeometry
from sqlalchemy.sql.elements import ColumnElement

from gis_core.crs import transform_coords, transform_geometry
from gis_core.errors import InvalidParameter
from layers.catalog import CRS84, ETRS89, WEB_MERCATOR, WGS84, LayerDefinition

CRS84_SRID = 0  # our code for OGC CRS84 (lon/lat WGS84)
_EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{}"
# Degrees around a layer's extent kept when clipping query geometries (about 1 km).
EXTENT_MARGIN = 0.01
_DENSIFY = 16
# Coordinate decimals in GeoJSON: about a centimetre.
DEGREE_DECIMALS = 7
METRE_DECIMALS = 2


def crs_uri(srid: int) -> str:
    """The OGC http URI of a CRS (CRS84 for ``CRS84_SRID``)."""
    return CRS84 if srid == CRS84_SRID else _EPSG_URI.format(srid)


def parse_crs_uri(text: str, offered: tuple[int, ...], *, parameter: str) -> int:
    """An OGC CRS URI (or EPSG:N, CRS84) the layer offers, as our SRID code; else a 400."""
    value = text.strip()
    if not value:
        raise InvalidParameter(f"{parameter} must not be empty", locator=parameter)
    lowered = value.lower()
    if lowered.endswith("crs84") and ("ogc" in lowered or lowered in ("crs84", "crs:84")):
        return CRS84_SRID
    srid = _epsg_code(value)
    if srid is None or srid not in offered:
        raise InvalidParameter(
            f"{parameter} {value!r} is not one of the CRSs offered: "
            + ", ".join(crs_uri(s) for s in (CRS84_SRID, *offered)),
            locator=parameter,
        )
    return srid


def _epsg_code(value: str) -> int | None:
    for prefix in (
        "http://www.opengis.net/def/crs/EPSG/0/",
        "https://www.opengis.net/def/crs/EPSG/0/",
        "urn:ogc:def:crs:EPSG::",
        "EPSG:",
    ):
        if value.upper().startswith(prefix.upper()):
            digits = value[len(prefix) :]
            return int(digits) if digits.isdigit() else None
    return None


@cache
def north_first(srid: int) -> bool:
    """True when the CRS's first axis is north/latitude (EPSG:4326, 4258, 3844 ...)."""
    if srid == CRS84_SRID:
        return False
    try:
        axes = CRS.from_epsg(srid).axis_info
    except CRSError:
        return False
    return bool(axes) and axes[0].direction.lower() in ("north", "south")


def is_degrees(srid: int) -> bool:
    return srid in (CRS84_SRID, WGS84, ETRS89) or bool(CRS.from_epsg(srid).is_geographic)


def geographic_source(layer: LayerDefinition) -> ColumnElement[object]:
    """Lon/lat geometry: the TransDatRO twin when the layer has one, else PostGIS's."""
    if layer.etrs89 is not None:
        return layer.etrs89
    return sa.func.ST_Transform(layer.geom, WGS84)


def output_geometry(layer: LayerDefinition, srid: int) -> ColumnElement[object]:
    """The geometry expression for an output CRS, axes in that CRS's order."""
    if srid == layer.storage_srid:
        expr: ColumnElement[object] = layer.geom
    elif srid in (CRS84_SRID, WGS84, ETRS89):
        expr = geographic_source(layer)
    elif srid == WEB_MERCATOR:
        expr = sa.func.ST_Transform(geographic_source(layer), WEB_MERCATOR)
    elif layer.etrs89 is not None:
        expr = sa.func.ST_Transform(layer.etrs89, srid)
    else:
        expr = sa.func.ST_Transform(layer.geom, srid)
    if north_first(srid):
        expr = sa.func.ST_FlipCoordinates(expr)
    return expr


def decimals(srid: int) -> int:
    return DEGREE_DECIMALS if is_degrees(srid) else METRE_DECIMALS


@dataclass(frozen=True)
class StorageBox:
    """A query box in the storage CRS; ``empty`` when it cannot touch the layer.

    With ``geographic`` the bounds are lon/lat and filter the layer's ETRS89 twin,
    which has its own GiST index (see ``query_box``).
    """

    bounds: tuple[float, float, float, float] | None
    geographic: bool = False

    @property
    def empty(self) -> bool:
        return self.bounds is None


def _ordered(srid: int, values: tuple[float, ...]) -> tuple[float, float, float, float]:
    """A 2D box as minx, miny, maxx, maxy in x/y (east/north) order."""
    if len(values) == 6:
        values = (values[0], values[1], values[3], values[4])
    x1, y1, x2, y2 = values
    if north_first(srid):
        x1, y1, x2, y2 = y1, x1, y2, x2
    return (x1, y1, x2, y2)


def parse_bbox(text: str) -> tuple[float, ...]:
    """Four or six finite numbers, comma separated; anything else is a 400."""
    parts = text.split(",")
    if len(parts) not in (4, 6):
        raise InvalidParameter("bbox needs 4 or 6 comma-separated numbers", locator="bbox")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise InvalidParameter("bbox values must be numbers", locator="bbox") from None
    if not all(np.isfinite(values)):
        raise InvalidParameter("bbox values must be finite numbers", locator="bbox")
    return values


def box_to_storage(
    values: tuple[float, ...],
    srid: int,
    layer: LayerDefinition,
    extent: tuple[float, float, float, float] | None,
) -> StorageBox:
    """A bbox given in ``srid`` (its own axis order) as a storage-CRS box.

    Geographic boxes are clipped to the layer extent first; the box's edges are
    densified so the transformed box contains the whole curved outline.
    """
    minx, miny, maxx, maxy = _ordered(srid, values)
    if srid == layer.storage_srid:
        return StorageBox((minx, miny, maxx, maxy))
    geom = shapely.box(minx, miny, maxx, maxy)
    clipped = clip_to_extent(geom, srid, extent)
    if clipped is None:
        return StorageBox(None)
    xs, ys = _densified_outline(clipped)
    sx, sy = transform_coords(WGS84, layer.storage_srid, xs, ys)
    return StorageBox((float(sx.min()), float(sy.min()), float(sx.max()), float(sy.max())))


def query_box(
    values: tuple[float, ...],
    srid: int,
    layer: LayerDefinition,
    extent: tuple[float, float, float, float] | None,
) -> StorageBox:
    """A bbox as the cheapest exact filter for ``layer``.

    A lon/lat box (CRS84, EPSG:4326 or 4258) on a layer with an ETRS89 twin filters the
    twin, the geometry the client is shown, so "intersects the bbox" holds exactly in
    the client's CRS and nothing is transformed (the twin has its own GiST index). Any
    other box moves into the storage CRS (``box_to_storage``).
    """
    if layer.etrs89 is not None and srid in (CRS84_SRID, WGS84, ETRS89):
        return StorageBox(_ordered(srid, values), geographic=True)
    return box_to_storage(values, srid, layer, extent)


def _pivot(srid: int) -> int:
    return WGS84 if srid == CRS84_SRID else srid


def clip_to_extent(
    geom: BaseGeometry, srid: int, extent: tuple[float, float, float, float] | None
) -> BaseGeometry | None:
    """``geom`` (in ``srid``) cut to the layer's extent, in lon/lat; None when disjoint."""
    if extent is None:
        return None
    src = _pivot(srid)
    lonlat = geom if src in (WGS84, ETRS89) else transform_geometry(geom, src, WGS84)
    area = shapely.box(
        extent[0] - EXTENT_MARGIN,
        extent[1] - EXTENT_MARGIN,
        extent[2] + EXTENT_MARGIN,
        extent[3] + EXTENT_MARGIN,
    )
    if lonlat.is_empty or not lonlat.intersects(area):
        return None
    return lonlat.intersection(area) if not area.contains(lonlat) else lonlat


def _densified_outline(geom: BaseGeometry) -> tuple[np.ndarray, np.ndarray]:
    minx, miny, maxx, maxy = geom.bounds
    t = np.linspace(0.0, 1.0, _DENSIFY)
    xs = np.concatenate([minx + (maxx - minx) * t, np.full(_DENSIFY, maxx)])
    ys = np.concatenate([np.full(_DENSIFY, miny), miny + (maxy - miny) * t])
    xs = np.concatenate([xs, maxx - (maxx - minx) * t, np.full(_DENSIFY, minx)])
    ys = np.concatenate([ys, np.full(_DENSIFY, maxy), maxy - (maxy - miny) * t])
    return xs, ys


def geometry_to_storage(
    geom: BaseGeometry,
    srid: int,
    layer: LayerDefinition,
    extent: tuple[float, float, float, float] | None,
    *,
    clip: bool,
) -> BaseGeometry | None:
    """A filter literal (in ``srid``, its axis order) in the storage CRS.

    With ``clip`` the literal is first cut to the layer extent (right for intersects,
    within and disjoint, where the parts outside cannot touch any feature); None means
    the literal cannot touch the layer at all.
    """
    if north_first(srid):
        geom = shapely.transform(geom, lambda coords: coords[:, ::-1])
    if srid == layer.storage_srid:
        return geom
    if clip:
        clipped = clip_to_extent(geom, srid, extent)
        if clipped is None:
            return None
        return transform_geometry(clipped, WGS84, layer.storage_srid)
    return transform_geometry(geom, _pivot(srid), layer.storage_srid)
