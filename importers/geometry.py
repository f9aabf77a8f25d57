"""Geometry steps every vector import shares: decode, linearise, reproject, twin.

All of it runs on whole batches (numpy arrays of shapely geometries): one GEOS call per
step for thousands of features, one vectorised coordinate transformation per batch.
Per-feature failures (an unparseable WKB, a vertex the official grid does not cover)
are returned as masks so the caller can reject exactly those features and say why.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from gis_core.crs.transform import transform_points

ETRS89 = 4258


def decode_wkb(
    conn: Connection, wkb: np.ndarray, ready: Callable[[], None] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Shapely geometries of a WKB array and a mask of the ones that could not be read.

    Curved geometries (CurvePolygon, MultiSurface from GML/DXF/GeoPackage) are beyond
    shapely: PostGIS linearises just those (ST_CurveToLine), in one query per batch,
    inside a savepoint so a geometry PostGIS refuses cannot abort the import. Anything
    else shapely cannot read (a ring of two points) is reported as unreadable.
    ``ready`` is called before that query (it waits for a COPY in flight).
    """
    geoms = np.asarray(shapely.from_wkb(wkb, on_invalid="ignore"), dtype=object)
    given = np.asarray([value is not None for value in wkb], dtype=bool)
    unread = given & shapely.is_missing(geoms)
    curved = [int(i) for i in np.flatnonzero(unread) if _is_curve(bytes(wkb[i]))]
    if curved:
        if ready is not None:
            ready()
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


_LINEAR = (1, 2, 5)  # LineString, LinearRing, MultiLineString


def close_lines(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Areas for boundaries drawn as closed lines (a surveyor's DXF draws a parcel as a
    closed polyline, often without the "closed" flag GDAL would read as a polygon).

    A LineString or MultiLineString whose every part is a closed ring of at least four
    vertices becomes the area those rings bound (rings inside rings are holes); other
    lines are left for validation to reject. Returns the geometries and which changed.
    """
    changed = np.zeros(geoms.shape[0], dtype=bool)
    present = ~shapely.is_missing(geoms)
    linear = present.copy()
    linear[present] = np.isin(shapely.get_type_id(geoms[present]), _LINEAR)
    if not linear.any():
        return geoms, changed
    positions = np.flatnonzero(linear)
    parts, owner = shapely.get_parts(geoms[positions], return_index=True)
    ring_like = shapely.is_closed(parts) & (shapely.get_num_coordinates(parts) >= 4)
    closed = np.ones(positions.shape[0], dtype=bool)
    closed[np.unique(owner[~ring_like])] = False
    closed &= np.bincount(owner, minlength=positions.shape[0]) > 0
    if not closed.any():
        return geoms, changed
    result = np.array(geoms, dtype=object, copy=True)
    chosen = positions[closed]
    result[chosen] = shapely.build_area(geoms[chosen])
    changed[chosen] = True
    return result, changed


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
    coords = shapely.get_coordinates(subset)
    if coords.shape[0] == 0:
        return Reprojected(geoms, failed, None)
    moved = transform_distinct(coords, src_epsg, dst_epsg)
    # Failed points keep their place (their features are dropped below): GEOS refuses
    # rings with NaN vertices.
    shapely.set_coordinates(
        subset, np.where(moved.failed[:, None], np.nan_to_num(coords), moved.coords)
    )
    result = np.array(geoms, dtype=object, copy=True)
    result[positions] = subset
    if moved.failed.any():
        _, owner = shapely.get_coordinates(np.array(geoms[positions]), return_index=True)
        bad_features = positions[np.unique(owner[moved.failed])]
        failed[bad_features] = True
        result[bad_features] = None
    return Reprojected(result, failed, moved.reason)


@dataclass
class Moved:
    coords: np.ndarray  # (n, 2)
    failed: np.ndarray  # bool per point
    reason: str | None


def transform_distinct(coords: np.ndarray, src_epsg: int, dst_epsg: int) -> Moved:
    """Transform points with the platform's CRS paths, each distinct point once.

    Neighbouring parcels share their corners, so a cadastre has two to three times
    fewer distinct vertices than ring vertices, and the transformation (the grid
    lookup of TransDatRO) is the costly step. Points are grouped by a hash of their
    exact coordinates; a point whose coordinates differ from its group's (a hash
    collision) is transformed on its own.
    """
    finite = np.isfinite(coords).all(axis=1)
    xy = np.where(finite[:, None], coords, 0.0)
    codes, _ = pd.factorize(_point_hash(xy), sort=False)
    first = np.empty(int(codes.max()) + 1 if codes.size else 0, dtype=np.int64)
    first[codes[::-1]] = np.arange(codes.shape[0] - 1, -1, -1)
    clash = np.flatnonzero((xy != xy[first[codes]]).any(axis=1))
    wanted = np.concatenate([first, clash])
    moved = transform_points(
        src_epsg,
        dst_epsg,
        np.ascontiguousarray(xy[wanted, 0]),
        np.ascontiguousarray(xy[wanted, 1]),
    )
    out = np.column_stack([moved.x[: first.shape[0]][codes], moved.y[: first.shape[0]][codes]])
    bad = moved.failed[: first.shape[0]][codes] | ~finite
    if clash.size:
        out[clash, 0] = moved.x[first.shape[0] :]
        out[clash, 1] = moved.y[first.shape[0] :]
        bad[clash] = moved.failed[first.shape[0] :] | ~finite[clash]
    reason = None
    if bad.any():
        reason = (
            moved.failure.reason if moved.failure is not None else "has a non-finite coordinate"
        )
    return Moved(out, bad, reason)


def _point_hash(xy: np.ndarray) -> np.ndarray:
    bits = np.ascontiguousarray(xy).view(np.uint64)
    with np.errstate(over="ignore"):
        mixed = bits[:, 0] * np.uint64(0x9E3779B97F4A7C15) ^ bits[:, 1]
        return mixed ^ (mixed >> np.uint64(29))


def twins(geoms: np.ndarray, storage_srid: int) -> np.ndarray:
    """The ETRS89 copies (TransDatRO from Stereo 70, PROJ otherwise); None where missing."""
    moved = reproject(geoms, storage_srid, ETRS89)
    return moved.geoms


def iso_wkb(geoms: np.ndarray) -> pa.Array:
    """Little-endian ISO WKB of each geometry (null where there is none)."""
    return pa.array(shapely.to_wkb(geoms, byte_order=1, flavor="iso"), type=pa.binary())


@dataclass
class Rings:
    """The one-ring Polygons of a batch (most parcels) as plain coordinates."""

    simple: np.ndarray  # bool per geometry
    coords: np.ndarray  # (vertices, 2) of the simple ones, geometry after geometry
    sizes: np.ndarray  # vertices of each simple one (closed ring)

    @classmethod
    def of(cls, geoms: np.ndarray) -> Rings:
        simple = ~shapely.is_missing(geoms)
        simple[simple] = shapely.get_type_id(geoms[simple]) == _POLYGON
        simple[simple] = shapely.get_num_interior_rings(geoms[simple]) == 0
        chosen = geoms[simple]
        return cls(
            simple,
            shapely.get_coordinates(chosen),
            shapely.get_num_coordinates(chosen).astype(np.int64),
        )


def storage_ewkb(geoms: np.ndarray, rings: Rings, srid: int) -> pa.Array:
    """EWKB MultiPolygons (see ``with_srid``) of ``geoms``, null where there is none;
    one-ring Polygons are written straight from their coordinates (``polygon_ewkb``)."""
    return _combined(
        geoms, rings, polygon_ewkb(rings.coords, rings.sizes, srid), lambda g: ewkb(g, srid)
    )


def twin_ewkb(geoms: np.ndarray, rings: Rings, storage_srid: int) -> pa.Array:
    """The ETRS89 twins as EWKB MultiPolygons, null where a vertex cannot be transformed
    (or there is no geometry).

    Only the coordinates change between a geometry and its twin: for one-ring Polygons
    the transformed coordinates are written out directly, no GEOS geometry is made.
    """
    moved = transform_distinct(rings.coords, storage_srid, ETRS89)
    simple = polygon_ewkb(moved.coords, rings.sizes, ETRS89)
    if moved.failed.any():
        owner = np.repeat(np.arange(rings.sizes.shape[0]), rings.sizes)
        failed = np.zeros(rings.sizes.shape[0], dtype=bool)
        failed[owner[moved.failed]] = True
        simple = pc.if_else(pa.array(failed), pa.scalar(None, pa.binary()), simple)
    return _combined(
        geoms,
        rings,
        simple,
        lambda g: ewkb(np.asarray(twins(g, storage_srid), dtype=object), ETRS89),
    )


def _combined(
    geoms: np.ndarray, rings: Rings, simple: pa.Array, others: Callable[[np.ndarray], pa.Array]
) -> pa.Array:
    """One array for all ``geoms``: ``simple`` for the one-ring Polygons, ``others`` of
    the rest (GEOS), null where there is no geometry."""
    count = geoms.shape[0]
    rest = ~rings.simple & ~shapely.is_missing(geoms)
    if not rest.any() and rings.simple.all():
        return simple
    parts = [simple, pa.nulls(1, pa.binary())]
    picks = np.full(count, len(simple))  # the null
    picks[rings.simple] = np.arange(int(rings.simple.sum()))
    if rest.any():
        parts.append(others(geoms[rest]))
        picks[rest] = len(simple) + 1 + np.arange(int(rest.sum()))
    return pa.concat_arrays(parts).take(pa.array(picks))


def polygon_ewkb(coords: np.ndarray, sizes: np.ndarray, srid: int) -> pa.Array:
    """EWKB of one-ring Polygons as one-part MultiPolygons, from their coordinates.

    Little-endian: MultiPolygon type with the SRID flag, the SRID, one part; then the
    Polygon: type, one ring, its vertex count; then the vertices as doubles. The same
    bytes as GEOS's WKB patched by ``with_srid``, made by two Arrow joins.
    """
    count = sizes.shape[0]
    header = np.empty((count, 26), dtype=np.uint8)
    fixed = struct.pack("<BIIIBII", 1, _MULTIPOLYGON | _SRID_FLAG, srid, 1, 1, _POLYGON, 1)
    header[:, :22] = np.frombuffer(fixed, dtype=np.uint8)
    header[:, 22:] = sizes.astype("<u4").view(np.uint8).reshape(-1, 4)
    head = pa.Array.from_buffers(
        pa.binary(),
        count,
        [
            None,
            pa.py_buffer(np.arange(0, 26 * count + 1, 26, dtype=np.int32)),
            pa.py_buffer(header),
        ],
    )
    offsets = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(sizes * 16, out=offsets[1:])
    points = np.ascontiguousarray(coords, dtype="<f8")
    if offsets[-1] >= 2**31:
        raise ValueError("a batch of more than 2 GB of coordinates")
    body = pa.Array.from_buffers(
        pa.binary(), count, [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(points)]
    )
    return pc.binary_join_element_wise(head, body, b"")


def ewkb(geoms: np.ndarray, srid: int) -> pa.Array:
    """EWKB with the SRID (see ``with_srid``) of each geometry, null where there is none."""
    return with_srid(iso_wkb(geoms), srid)


def with_srid(wkb: pa.Array, srid: int) -> pa.Array:
    """EWKB with the SRID, as binary COPY into a typed MultiPolygon column wants it, from
    little-endian ISO WKB (an Arrow binary array, null where there is no geometry).

    Built by patching headers with Arrow kernels: the SRID flag and value, and a
    one-part MultiPolygon header in front of single Polygons. No per-geometry Python.
    """
    count = len(wkb)
    type_bytes = pc.binary_slice(wkb, 1, 5).fill_null(b"\x00\x00\x00\x00")
    kinds = np.frombuffer(_values(type_bytes), dtype="<u4", count=count)
    polygons = kinds == _POLYGON
    # Every other geometry keeps its type and body after a header with the SRID.
    headers = np.zeros((count, 9), dtype=np.uint8)
    headers[:, 0] = 1
    headers[:, 1:5] = (kinds | _SRID_FLAG).astype("<u4").view(np.uint8).reshape(-1, 4)
    headers[:, 5:9] = np.frombuffer(struct.pack("<I", srid), dtype=np.uint8)
    headers[polygons, 1:5] = np.frombuffer(struct.pack("<I", _MULTIPOLYGON | _SRID_FLAG), np.uint8)
    offsets = np.arange(0, 9 * count + 1, 9, dtype=np.int32)
    head = pa.Array.from_buffers(
        pa.binary(), count, [None, pa.py_buffer(offsets), pa.py_buffer(headers)]
    )
    body = pc.if_else(
        pa.array(polygons),
        pc.binary_join_element_wise(pa.scalar(b"\x01\x00\x00\x00"), wkb, b""),
        pc.binary_slice(wkb, 5, 2**31 - 1),  # an explicit stop: Arrow 26 fails without one
    )
    return pc.binary_join_element_wise(head, body, b"")


def _values(array: pa.Array) -> memoryview:
    """The bytes of a binary array's values, from its first to its last element."""
    offsets = np.frombuffer(
        array.buffers()[1], dtype=np.int32, count=len(array) + 1, offset=array.offset * 4
    )
    return memoryview(array.buffers()[2])[int(offsets[0]) : int(offsets[-1])]


_POLYGON = 3
_MULTIPOLYGON = 6
_SRID_FLAG = 0x20000000
