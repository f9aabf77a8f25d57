"""The map of the urbanism extract: the parcel and its surroundings, as vector geometry.

The extract's map is drawn as vector paths into the PDF (sharp at any print size), from
the same tables as the web map: zones coloured by function, restrictions, neighbouring
parcels with their numbers, buildings, the intravilan line, the subject parcel on top.
Geometries are read in the storage CRS (metres, Stereo 70 by default), cut to the map
window by PostGIS and simplified below a printer's dot, so a big zone costs no more than
the part of it that shows. Only public layers are read: no personal data can be drawn.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import shapely
import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Connection

from gis_core.errors import NotFound
from layers.styles import zone_family

# The window around the parcel: the parcel's size times this, and never under the minimum.
WINDOW_FACTOR = 2.6
MIN_WINDOW_M = 120.0
# A printer's dot at the extract's scales (1:500 – 1:5 000) is a few centimetres.
SIMPLIFY_M = 0.05
MAX_FEATURES = 3_000


@dataclass(frozen=True)
class MapFeature:
    geom: BaseGeometry
    label: str | None = None
    kind: str | None = None


@dataclass(frozen=True)
class ExtractMap:
    """Everything the extract's map shows, in storage-CRS metres."""

    window: tuple[float, float, float, float]
    srid: int
    subject: list[MapFeature]
    parcels: list[MapFeature] = field(default_factory=list)
    buildings: list[MapFeature] = field(default_factory=list)
    zones: list[MapFeature] = field(default_factory=list)
    restrictions: list[MapFeature] = field(default_factory=list)
    intravilan: list[MapFeature] = field(default_factory=list)


def zone_colour(function: str | None, utr_code: str | None = None) -> str:
    """The zone's colour in the shared palette (the WMS's and the web map's)."""
    return zone_family(function, utr_code).colour


def window_around(
    bounds: tuple[float, float, float, float], aspect: float
) -> tuple[float, float, float, float]:
    """A window centred on ``bounds``, ``aspect`` = width / height, with context around."""
    x0, y0, x1, y1 = bounds
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    width = max((x1 - x0) * WINDOW_FACTOR, MIN_WINDOW_M)
    height = max((y1 - y0) * WINDOW_FACTOR, MIN_WINDOW_M / aspect)
    if width / height < aspect:
        width = height * aspect
    else:
        height = width / aspect
    return (cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2)


_LAYER_SQL = {
    "zones": (
        "SELECT ST_AsBinary(ST_Simplify(ST_ClipByBox2D(z.geom, w.box), :tol)), z.utr_code, "
        "coalesce(r.function, z.function) "
        "FROM urbanism.zone z JOIN urbanism.plan p ON p.id = z.plan_id "
        "LEFT JOIN urbanism.regulation r ON r.id = z.regulation_id, w "
        "WHERE z.valid_to IS NULL AND p.status = 'approved' "
        "AND (p.valid_to IS NULL OR p.valid_to >= current_date) AND z.geom && w.box "
        "ORDER BY CASE p.plan_type WHEN 'PUG' THEN 0 WHEN 'PUZ' THEN 1 ELSE 2 END, z.id"
    ),
    "restrictions": (
        "SELECT ST_AsBinary(ST_Simplify(ST_ClipByBox2D(x.geom, w.box), :tol)), x.name, x.kind "
        "FROM urbanism.restriction x, w WHERE x.valid_to IS NULL AND x.geom && w.box"
    ),
    "intravilan": (
        "SELECT ST_AsBinary(ST_Simplify(ST_ClipByBox2D(ST_Boundary(i.geom), w.box), :tol)), "
        "NULL, NULL FROM core.intravilan i, w "
        "WHERE i.valid_to IS NULL AND i.uat_siruta = :siruta AND i.geom && w.box"
    ),
    "parcels": (
        "SELECT ST_AsBinary(ST_Simplify(ST_ClipByBox2D(t.geom, w.box), :tol)), "
        "t.cadastral_number, NULL FROM cadastre.parcel t, w "
        "WHERE t.valid_to IS NULL AND t.uat_siruta = :siruta AND t.geom && w.box "
        "AND t.cadastral_number <> :number"
    ),
    "buildings": (
        "SELECT ST_AsBinary(ST_Simplify(ST_ClipByBox2D(b.geom, w.box), :tol)), NULL, NULL "
        "FROM cadastre.building b, w WHERE b.valid_to IS NULL AND b.geom && w.box"
    ),
}


def extract_map(
    conn: Connection, number: str, *, siruta: int, srid: int, aspect: float
) -> ExtractMap:
    """The geometries around imobil ``number`` (current version), cut to the window."""
    row = conn.execute(
        sa.text(
            "SELECT ST_AsBinary(geom), ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) "
            "FROM cadastre.parcel WHERE uat_siruta = :siruta AND cadastral_number = :number "
            "AND valid_to IS NULL"
        ),
        {"siruta": siruta, "number": number},
    ).one_or_none()
    if row is None or row[0] is None:
        raise NotFound(
            f"no current imobil with cadastral number {number!r}", locator="cadastral_number"
        )
    window = window_around((row[1], row[2], row[3], row[4]), aspect)
    layers: dict[str, list[MapFeature]] = {}
    for name, body in _LAYER_SQL.items():
        sql = (
            "WITH w AS (SELECT ST_MakeEnvelope(:x0, :y0, :x1, :y1, :srid) AS box) "
            f"{body} LIMIT :limit"
        )
        rows = conn.execute(
            sa.text(sql),
            {
                "x0": window[0],
                "y0": window[1],
                "x1": window[2],
                "y1": window[3],
                "srid": srid,
                "tol": SIMPLIFY_M,
                "siruta": siruta,
                "number": number,
                "limit": MAX_FEATURES,
            },
        )
        layers[name] = [
            MapFeature(shapely.from_wkb(bytes(wkb)), label, kind)
            for wkb, label, kind in rows
            if wkb is not None
        ]
    subject = [MapFeature(shapely.from_wkb(bytes(row[0])), number)]
    return ExtractMap(window=window, srid=srid, subject=subject, **layers)
