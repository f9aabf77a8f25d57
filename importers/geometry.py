"""Geometry steps every vector import shares: decode, linearise, reproject, twin.

All of it runs on whole batches (numpy arrays of shapely geometries): one GEOS call per
step for thousands of features, one vectorised coordinate transformation per batch.
Per-feature failures (an unparseable WKB, a vertex the official grid does not cover)
are returned as masks so the caller can reject exactly those features and say why.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from gis_core.crs.transform import transform_points

ETRS89 = 4258


def decode_wkb(conn: Connection, wkb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shapely geometries of a WKB array and a mask of the ones that could not be read.

    Curved geometries (CurvePolygon, MultiSurface from GML/DXF/GeoPackage) are beyond
    shapely: PostGIS linearises just those (ST_CurveToLine), in one query per batch,
    inside a savepoint so a geometry PostGIS refuses cannot abort the import. Anything
    else shapely cannot read (a ring of two points) is reported as unreadable.
    """
    geoms = np.asarray(shapely.from_wkb(wkb, on_invalid="ignore"), dtype=object)
    given = np.asarray([value is not None for value in wkb], dtype=bool)
    unread = given & shapely.is_missing(geoms)
    curved = [int(i) for i in np.flatnonzero(unread) if _is_curve(bytes(wkb[i]))]
    if curved:
        linear: list[Any] = []
        try:
            with conn.begin_nested():
                linear = list(
                    conn.execute(
                        sa.text(
                            "SELECT n, ST_AsBinary(ST_CurveToLine(ST_GeomFromWKB(w))) "
                            "FROM unnest(CAST(:wkbs AS bytea[])) WITH ORDINALITY AS t(w, n)"
                        ),
                        {"wkbs": [bytes(wkb[i]) for i in curved]},
                    ).all()
                )
        except DBAPIError:
            linear = []  # PostGIS cannot read them either: they stay unreadable
        for number, value in linear:
            if value is not None:
                geoms[curved[int(number) - 1]] = shapely.from_wkb(bytes(value), on_invalid="ignore")
        unread = given & shapely.is_missing(geoms)
    return geoms, unread


def unreadable_reason(value: bytes) -> str:
    """What GEOS says about a WKB it cannot read ("... LinearRing ... not closed")."""
    try:
        shapely.from_wkb(value)
    except shapely.errors.GEOSException as exc:
        return str(exc).split(": ", 1)[-1]
    except (TypeError, ValueError) as exc:
        return str(exc)
    return "unsupported geometry type"


_CURVE_TYPES = frozenset({8, 9, 10, 11, 12, 13, 14, 15})


def _is_curve(data: bytes) -> bool:
    """Whether a (E)WKB value is a curve type (ISO codes +1000/2000/3000 or EWKB flags)."""
    if len(data) < 5:
        return False
    (code,) = struct.unpack_from("<I" if data[0] == 1 else ">I", data, 1)
    code &= 0x0FFFFFFF
    return code % 1000 in _CURVE_TYPES


def swap_axes(geoms: np.ndarray) -> np.ndarray:
    """Exchange x and y of every vertex (northing-first files, lat/lon mix-ups)."""
    return np.asarray(shapely.transform(geoms, lambda coords: coords[:, ::-1]), dtype=object)


@dataclass
class Reprojected:
    geoms: np.ndarray
    failed: np.ndarray  # bool per geometry: some vertex could not be transformed
    reason: str | None


def reproject(geoms: np.ndarray, src_epsg: int, dst_epsg: int) -> Reprojected:
    """Transform a batch with the platform's CRS paths (TransDatRO for Stereo 70)."""
    count = geoms.shape[0]
    failed = np.zeros(count, dtype=bool)
    if src_epsg == dst_epsg or count == 0:
        return Reprojected(geoms, failed, None)
    positions = np.flatnonzero(~shapely.is_missing(geoms))
    subset = np.array(geoms[positions], dtype=object)
    coords, owner = shapely.get_coordinates(subset, return_index=True)
    if coords.shape[0] == 0:
        return Reprojected(geoms, failed, None)
    finite = np.isfinite(coords).all(axis=1)
    x = np.where(finite, coords[:, 0], 0.0)
    y = np.where(finite, coords[:, 1], 0.0)
    moved = transform_points(src_epsg, dst_epsg, x, y)
    bad_points = moved.failed | ~finite
    shapely.set_coordinates(subset, np.column_stack([moved.x, moved.y]))
    result = np.array(geoms, dtype=object, copy=True)
    result[positions] = subset
    reason = None
    if bad_points.any():
        bad_features = positions[np.unique(owner[bad_points])]
        failed[bad_features] = True
        result[bad_features] = None
        reason = (
            moved.failure.reason if moved.failure is not None else "has a non-finite coordinate"
        )
    return Reprojected(result, failed, reason)


def twins(geoms: np.ndarray, storage_srid: int) -> np.ndarray:
    """The ETRS89 copies (TransDatRO from Stereo 70, PROJ otherwise); None where missing."""
    moved = reproject(geoms, storage_srid, ETRS89)
    return moved.geoms


def ewkb(geoms: np.ndarray, srid: int) -> list[bytes | None]:
    """EWKB with the SRID, as binary COPY into a typed MultiPolygon column wants it.

    Built from plain WKB by patching the header bytes (SRID flag and value, and a
    MultiPolygon wrapper around single Polygons): no geometry is copied in GEOS.
    """
    present = ~shapely.is_missing(geoms)
    out: list[bytes | None] = [None] * geoms.shape[0]
    if not present.any():
        return out
    encoded = shapely.to_wkb(geoms[present], byte_order=1, flavor="iso")
    srid_bytes = struct.pack("<I", srid)
    multi_header = struct.pack("<BI", 1, _MULTIPOLYGON | _SRID_FLAG) + srid_bytes
    for position, value in zip(np.flatnonzero(present).tolist(), encoded.tolist(), strict=True):
        kind = struct.unpack_from("<I", value, 1)[0]
        if kind == _POLYGON:
            out[position] = multi_header + b"\x01\x00\x00\x00" + value
        else:
            out[position] = struct.pack("<BI", 1, kind | _SRID_FLAG) + srid_bytes + value[5:]
    return out


_POLYGON = 3
_MULTIPOLYGON = 6
_SRID_FLAG = 0x20000000
