"""The platform's one entry point for coordinate conversion.

Every path touching Stereo 70 (EPSG:3844) goes through ETRS89 with ANCPI's TransDatRO,
because PROJ's default Stereo 70 path is a 3 m Helmert that misses the official results
by up to a metre; everything else is PROJ. Coordinates are always in "x y" order:
easting northing for projected CRSs, longitude latitude for geographic ones.

For web use EPSG:4326 (and CRS84, given as 4326) counts as ETRS89: the two differ by
well under a metre in Romania and every web client expects exactly this identity.

Errors name the first offending point by its 0-based index in the flattened input,
with its coordinates, and say how many points failed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import shapely
from numpy.typing import ArrayLike
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry.base import BaseGeometry

from gis_core.crs import transdatro
from gis_core.errors import InvalidParameter, OutsideGridError

STEREO70 = 3844
ETRS89 = 4258
WGS84 = 4326
WEB_MERCATOR = 3857

#: Geographic CRSs whose lon/lat are taken to be ETRS89 lon/lat as they are.
ETRS89_EQUIVALENTS = frozenset({ETRS89, WGS84})

OUTSIDE_PLANIMETRIC_GRID = "lies outside the TransDatRO grid"
OUTSIDE_QUASIGEOID_GRID = "lies outside the TransDatRO EGG97 quasigeoid grid"
NOT_TRANSFORMABLE = "cannot be transformed by PROJ"

_EPSG_PATTERNS = (
    re.compile(r"(?:EPSG:)?(\d+)", re.IGNORECASE),
    re.compile(r"urn:ogc:def:crs:EPSG:[\d.]*:(\d+)", re.IGNORECASE),
    re.compile(r"https?://www\.opengis\.net/def/crs/EPSG/[\d.]+/(\d+)", re.IGNORECASE),
)
_CRS84_PATTERNS = (
    re.compile(r"(?:OGC:)?CRS:?84", re.IGNORECASE),
    re.compile(r"urn:ogc:def:crs:OGC:[\d.]*:CRS84", re.IGNORECASE),
    re.compile(r"https?://www\.opengis\.net/def/crs/OGC/[\d.]+/CRS84", re.IGNORECASE),
)

_Coordinates = tuple[np.ndarray, np.ndarray]
_StepResult = tuple[np.ndarray, np.ndarray, np.ndarray]


def parse_crs(spec: str | int) -> int:
    """EPSG code of "EPSG:N", "N", "urn:ogc:def:crs:EPSG::N", an OGC http URI or CRS84.

    CRS84 becomes 4326: with "x y" order everywhere the two only differ in axis order.
    """
    if isinstance(spec, int):
        return spec
    text = spec.strip()
    if any(pattern.fullmatch(text) for pattern in _CRS84_PATTERNS):
        return WGS84
    for pattern in _EPSG_PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            return int(match.group(1))
    raise InvalidParameter(
        f"unrecognised CRS {spec!r}: expected EPSG:N, N, urn:ogc:def:crs:EPSG::N or CRS84",
        locator="crs",
    )


@lru_cache(maxsize=1024)
def crs_of(epsg: int) -> CRS:
    """PROJ's definition of an EPSG code, or a clear error naming the code."""
    try:
        return CRS.from_epsg(epsg)
    except CRSError as exc:
        raise InvalidParameter(f"EPSG:{epsg} is not a CRS PROJ knows", locator="crs") from exc


def is_geographic(epsg: int) -> bool:
    """True when the CRS's coordinates are degrees (decides how they are printed)."""
    return bool(crs_of(epsg).is_geographic)


@lru_cache(maxsize=256)
def _pyproj_transformer(src_epsg: int, dst_epsg: int) -> Transformer:
    """PROJ's best transformation between two codes, built once per pair."""
    return Transformer.from_crs(crs_of(src_epsg), crs_of(dst_epsg), always_xy=True)


# --- input checks and errors --------------------------------------------------------


def _as_points(
    x: ArrayLike, y: ArrayLike, names: tuple[str, str]
) -> tuple[_Coordinates, tuple[int, ...]]:
    """Two coordinate arrays as flat float64 (broadcast together), and their shape.

    The results may share memory with the input; nothing downstream writes into them.
    """
    try:
        x_array, y_array = np.broadcast_arrays(
            np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        )
    except (TypeError, ValueError) as exc:
        raise InvalidParameter(
            f"{names[0]}/{names[1]} must be numbers of one shape: {exc}"
        ) from exc
    flat_x = np.ascontiguousarray(x_array, dtype=np.float64).ravel()
    flat_y = np.ascontiguousarray(y_array, dtype=np.float64).ravel()
    _require_finite((flat_x, flat_y), names)
    return (flat_x, flat_y), x_array.shape


def _require_finite(arrays: tuple[np.ndarray, ...], names: tuple[str, ...]) -> None:
    """NaN or infinity is a caller's bug or a bad row: say so rather than "outside"."""
    finite = np.logical_and.reduce([np.isfinite(a) for a in arrays])
    if not finite.all():
        raise InvalidParameter(
            _point_message(finite, arrays, names, "has a coordinate that is not a finite number")
        )


def _point_message(
    ok: np.ndarray, arrays: tuple[np.ndarray, ...], names: tuple[str, ...], reason: str
) -> str:
    """ "point 3 (east=…, north=…) <reason> (2 of 10 points)" for the first failed point."""
    failed = np.flatnonzero(~ok)
    first = int(failed[0])
    shown = ", ".join(
        f"{name}={float(a[first]):.10g}" for name, a in zip(names, arrays, strict=True)
    )
    message = f"point {first} ({shown}) {reason}"
    if ok.size > 1:
        message += f" ({failed.size} of {ok.size} points)"
    return message


def _require_inside(
    inside: np.ndarray, points: _Coordinates, names: tuple[str, str], reason: str
) -> None:
    if not inside.all():
        raise OutsideGridError(_point_message(inside, points, names, reason))


# --- TransDatRO ---------------------------------------------------------------------


def stereo70_to_etrs89(east: ArrayLike, north: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Stereo 70 easting/northing (m) → ETRS89 (lon, lat) in degrees, TransDatRO exactly."""
    (e, n), shape = _as_points(east, north, ("east", "north"))
    lon, lat, inside = transdatro.stereo70_to_etrs89(e, n)
    _require_inside(inside, (e, n), ("east", "north"), OUTSIDE_PLANIMETRIC_GRID)
    return lon.reshape(shape), lat.reshape(shape)


def etrs89_to_stereo70(lon: ArrayLike, lat: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """ETRS89 (lon, lat) degrees → Stereo 70 (east, north) metres, TransDatRO exactly."""
    (lo, la), shape = _as_points(lon, lat, ("lon", "lat"))
    east, north, inside = transdatro.etrs89_to_stereo70(lo, la)
    _require_inside(inside, (lo, la), ("lon", "lat"), OUTSIDE_PLANIMETRIC_GRID)
    return east.reshape(shape), north.reshape(shape)


def _height_anomaly(
    lon: ArrayLike, lat: ArrayLike, height: ArrayLike
) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """EGG97 anomaly at each point and the heights, all broadcast to one shape."""
    try:
        lo, la, h = np.broadcast_arrays(
            np.asarray(lon, dtype=np.float64),
            np.asarray(lat, dtype=np.float64),
            np.asarray(height, dtype=np.float64),
        )
    except (TypeError, ValueError) as exc:
        raise InvalidParameter(f"lon/lat/height must be numbers of one shape: {exc}") from exc
    shape = lo.shape
    flat = tuple(np.ascontiguousarray(a).ravel() for a in (lo, la, h))
    _require_finite(flat, ("lon", "lat", "height"))
    anomaly, inside = transdatro.quasigeoid_anomaly(flat[0], flat[1])
    _require_inside(inside, (flat[0], flat[1]), ("lon", "lat"), OUTSIDE_QUASIGEOID_GRID)
    return anomaly, flat[2], shape


def normal_to_ellipsoidal_height(lon: ArrayLike, lat: ArrayLike, h_normal: ArrayLike) -> np.ndarray:
    """Normal height (Black Sea 1975) → ETRS89 ellipsoidal height with the EGG97 quasigeoid.

    ``lon``/``lat`` are ETRS89 degrees.
    """
    anomaly, heights, shape = _height_anomaly(lon, lat, h_normal)
    return (heights + anomaly).reshape(shape)


def ellipsoidal_to_normal_height(lon: ArrayLike, lat: ArrayLike, h_ell: ArrayLike) -> np.ndarray:
    """ETRS89 ellipsoidal height → normal height, the reverse of the function above."""
    anomaly, heights, shape = _height_anomaly(lon, lat, h_ell)
    return (heights - anomaly).reshape(shape)


# --- paths between any two CRSs -----------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One leg of a transformation path, and how to explain a point it cannot take."""

    description: str
    apply: Callable[[np.ndarray, np.ndarray], _StepResult]
    failure: str
    error: type[InvalidParameter]


@dataclass(frozen=True)
class Failure:
    """The first point (lowest index in the flattened input) a path could not transform."""

    index: int
    count: int
    reason: str
    error: type[InvalidParameter]


@dataclass(frozen=True)
class TransformedPoints:
    """Result of ``transform_points``: NaN where a point failed, and the first failure."""

    x: np.ndarray
    y: np.ndarray
    failed: np.ndarray
    failure: Failure | None


def _transdatro_forward_step() -> Step:
    def apply(x: np.ndarray, y: np.ndarray) -> _StepResult:
        return transdatro.stereo70_to_etrs89(x, y)

    return Step(
        "TransDatRO Stereo 70 → ETRS89 (ANCPI grid, Helmert, stereographic on GRS80)",
        apply,
        OUTSIDE_PLANIMETRIC_GRID,
        OutsideGridError,
    )


def _transdatro_inverse_step() -> Step:
    def apply(x: np.ndarray, y: np.ndarray) -> _StepResult:
        return transdatro.etrs89_to_stereo70(x, y)

    return Step(
        "TransDatRO ETRS89 → Stereo 70 (stereographic on GRS80, inverse Helmert, ANCPI grid)",
        apply,
        OUTSIDE_PLANIMETRIC_GRID,
        OutsideGridError,
    )


def _pyproj_step(src_epsg: int, dst_epsg: int) -> Step:
    transformer = _pyproj_transformer(src_epsg, dst_epsg)

    def apply(x: np.ndarray, y: np.ndarray) -> _StepResult:
        out_x, out_y = transformer.transform(x, y, errcheck=False)
        out_x, out_y = np.asarray(out_x), np.asarray(out_y)
        ok = np.isfinite(out_x) & np.isfinite(out_y)
        return out_x, out_y, ok

    return Step(
        f"PROJ EPSG:{src_epsg} → EPSG:{dst_epsg}: {transformer.description}",
        apply,
        f"{NOT_TRANSFORMABLE} from EPSG:{src_epsg} to EPSG:{dst_epsg}",
        InvalidParameter,
    )


def _etrs89_pivot(epsg: int) -> int:
    """Geographic CRS from which PROJ reaches ``epsg`` after TransDatRO.

    Web Mercator is reached from 4326 so it is the plain spherical Mercator of the
    ETRS89 lon/lat, with no datum shift PROJ might otherwise insert.
    """
    return WGS84 if epsg == WEB_MERCATOR else ETRS89


@lru_cache(maxsize=256)
def transformation_path(src_epsg: int, dst_epsg: int) -> tuple[Step, ...]:
    """The steps taking coordinates from one EPSG code to another (empty = identity)."""
    crs_of(src_epsg)
    crs_of(dst_epsg)
    if src_epsg == dst_epsg:
        return ()
    if src_epsg == STEREO70:
        tail = (
            ()
            if dst_epsg in ETRS89_EQUIVALENTS
            else (_pyproj_step(_etrs89_pivot(dst_epsg), dst_epsg),)
        )
        return (_transdatro_forward_step(), *tail)
    if dst_epsg == STEREO70:
        head = (
            ()
            if src_epsg in ETRS89_EQUIVALENTS
            else (_pyproj_step(src_epsg, _etrs89_pivot(src_epsg)),)
        )
        return (*head, _transdatro_inverse_step())
    return (_pyproj_step(src_epsg, dst_epsg),)


def describe_transformation(src_epsg: int, dst_epsg: int) -> list[str]:
    """Human-readable steps of the path (for ``urbangis crs info``)."""
    steps = transformation_path(src_epsg, dst_epsg)
    if not steps:
        return ["identity (same CRS): coordinates are copied"]
    lines = [step.description for step in steps]
    pair = {src_epsg, dst_epsg}
    if STEREO70 in pair and pair & {WGS84, WEB_MERCATOR}:
        lines.append("EPSG:4326/CRS84 lon/lat taken as ETRS89 lon/lat (web use; < 1 m apart)")
    return lines


def transform_points(src_epsg: int, dst_epsg: int, x: ArrayLike, y: ArrayLike) -> TransformedPoints:
    """Like ``transform_coords`` but reports failed points instead of raising.

    For callers that must say which row or line failed (importers, the CLI). Inputs are
    flattened; non-finite inputs still raise ``InvalidParameter``.
    """
    (out_x, out_y), _shape = _as_points(x, y, ("x", "y"))
    steps = transformation_path(src_epsg, dst_epsg)
    if not steps:
        out_x, out_y = out_x.copy(), out_y.copy()
    failed_at = np.full(out_x.shape[0], -1, dtype=np.int16)
    for number, step in enumerate(steps):
        out_x, out_y, ok = step.apply(out_x, out_y)
        failed_at[~ok & (failed_at < 0)] = number
    failed = failed_at >= 0
    failure: Failure | None = None
    if failed.any():
        index = int(np.flatnonzero(failed)[0])
        step = steps[int(failed_at[index])]
        failure = Failure(index, int(failed.sum()), step.failure, step.error)
        out_x[failed] = np.nan
        out_y[failed] = np.nan
    return TransformedPoints(out_x, out_y, failed, failure)


def transform_coords(
    src_epsg: int, dst_epsg: int, x: ArrayLike, y: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Transform "x y" coordinates (always_xy order) between two EPSG codes.

    Stereo 70 goes through ETRS89 with TransDatRO; 4326/CRS84 count as ETRS89 and 3857 is
    their spherical Mercator; other CRSs are reached from ETRS89 with PROJ; pairs without
    3844 are PROJ alone. Raises ``OutsideGridError`` off the TransDatRO grid.
    """
    (flat_x, flat_y), shape = _as_points(x, y, ("x", "y"))
    result = transform_points(src_epsg, dst_epsg, flat_x, flat_y)
    if result.failure is not None:
        raise result.failure.error(
            _point_message(~result.failed, (flat_x, flat_y), ("x", "y"), result.failure.reason)
        )
    return result.x.reshape(shape), result.y.reshape(shape)


# --- geometries ---------------------------------------------------------------------


def _coordinate_function(src_epsg: int, dst_epsg: int) -> Callable[[np.ndarray], np.ndarray]:
    """A shapely.transform callback: transform columns x, y and keep any z column."""

    def transform_array(coords: np.ndarray) -> np.ndarray:
        out = np.array(coords, dtype=np.float64, copy=True)
        if out.shape[0]:
            out[:, 0], out[:, 1] = transform_coords(src_epsg, dst_epsg, coords[:, 0], coords[:, 1])
        return out

    return transform_array


def transform_geometries(geoms: np.ndarray, src_epsg: int, dst_epsg: int) -> np.ndarray:
    """Transform an array of shapely geometries; all their vertices in one vectorised call.

    Geometries with Z keep it (only x, y change); a second call is made only when the
    array mixes 2D and 3D geometries. ``None`` entries stay ``None``.
    """
    array = np.asarray(geoms, dtype=object)
    if src_epsg == dst_epsg:
        crs_of(src_epsg)
        return array.copy()
    function = _coordinate_function(src_epsg, dst_epsg)
    with_z = shapely.has_z(array)
    if not with_z.any():
        return np.asarray(shapely.transform(array, function, include_z=False), dtype=object)
    if with_z.all():
        return np.asarray(shapely.transform(array, function, include_z=True), dtype=object)
    result = np.empty(array.shape, dtype=object)
    result[~with_z] = shapely.transform(array[~with_z], function, include_z=False)
    result[with_z] = shapely.transform(array[with_z], function, include_z=True)
    return result


def transform_geometry(geom: BaseGeometry, src_epsg: int, dst_epsg: int) -> BaseGeometry:
    """Transform one shapely geometry (see ``transform_geometries``)."""
    single = np.empty(1, dtype=object)
    single[0] = geom
    transformed = transform_geometries(single, src_epsg, dst_epsg)[0]
    assert isinstance(transformed, BaseGeometry)
    return transformed
