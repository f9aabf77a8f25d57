"""Which CRS a source is really in, checked against where the municipality lies.

A declared CRS is a claim, not a fact: INSPIRE files whose ``srsName`` says geographic
degrees while the numbers are UTM metres exist, Shapefiles lose their ``.prj``, GML
readers swap latitude and longitude, and Stereo 70 files are written northing-first.
So the importer transforms a sample of the source's coordinates with the CRS it is about
to use and checks that they land inside the municipality (its UAT boundary when loaded,
otherwise the area of use of the storage CRS). If they do not, it tries the swapped
axis order; if that does not fit either, it refuses and says what it saw, unless the
user names the CRS with ``--source-crs`` (which is checked the same way).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import shapely
import sqlalchemy as sa
from pyproj import CRS
from pyproj.exceptions import CRSError
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Connection

from gis_core.crs.transform import transform_points
from gis_core.errors import InvalidInput, InvalidParameter

# Share of sampled coordinates that must land inside the extent.
INSIDE_SHARE = 0.95
# Margin around the UAT boundary's extent (m): parcels on the border, surveying slack.
UAT_MARGIN_M = 2_000.0
SAMPLE_POINTS = 2_000


@dataclass(frozen=True)
class Municipality:
    """Where data may lie, in the storage CRS: the checking extent and the UAT polygon."""

    storage_srid: int
    bounds: tuple[float, float, float, float]
    described: str
    boundary: BaseGeometry | None = None

    def contains(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        minx, miny, maxx, maxy = self.bounds
        with np.errstate(invalid="ignore"):
            return np.asarray((x >= minx) & (x <= maxx) & (y >= miny) & (y <= maxy))


@dataclass(frozen=True)
class CrsDecision:
    """The CRS to read the source in and whether its two axes must be swapped."""

    epsg: int
    swap_axes: bool
    notes: tuple[str, ...] = field(default=())


def municipality(conn: Connection, storage_srid: int, uat_siruta: int) -> Municipality:
    """The UAT boundary when it is loaded (``core.admin_unit``), else the storage CRS's area."""
    row = conn.execute(
        sa.text(
            "SELECT name, ST_AsBinary(geom) FROM core.admin_unit "
            "WHERE siruta = :siruta AND geom IS NOT NULL"
        ),
        {"siruta": uat_siruta},
    ).first()
    if row is not None:
        boundary = shapely.from_wkb(bytes(row[1]))
        minx, miny, maxx, maxy = boundary.bounds
        bounds = (
            minx - UAT_MARGIN_M,
            miny - UAT_MARGIN_M,
            maxx + UAT_MARGIN_M,
            maxy + UAT_MARGIN_M,
        )
        return Municipality(
            storage_srid, bounds, f"the UAT {row[0]} (SIRUTA {uat_siruta})", boundary
        )
    return Municipality(
        storage_srid,
        area_of_use(storage_srid),
        f"the area of use of EPSG:{storage_srid} (UAT boundary {uat_siruta} not loaded)",
    )


def area_of_use(epsg: int) -> tuple[float, float, float, float]:
    """The CRS's area of use (from the EPSG registry) in its own coordinates."""
    crs = CRS.from_epsg(epsg)
    area = crs.area_of_use
    if area is None:
        raise InvalidParameter(f"EPSG:{epsg} has no area of use to check coordinates against")
    lon = np.linspace(area.west, area.east, 21)
    lat = np.linspace(area.south, area.north, 21)
    grid_lon, grid_lat = np.meshgrid(lon, lat)
    moved = transform_points(4326, epsg, grid_lon.ravel(), grid_lat.ravel())
    ok = ~moved.failed
    if not ok.any():
        raise InvalidParameter(f"cannot compute the area of use of EPSG:{epsg}")
    return (
        float(moved.x[ok].min()),
        float(moved.y[ok].min()),
        float(moved.x[ok].max()),
        float(moved.y[ok].max()),
    )


def epsg_of(crs_text: str | None) -> int | None:
    """The EPSG code of a CRS as GDAL reports it ("EPSG:4326" or WKT), None if unknown."""
    if not crs_text:
        return None
    try:
        crs = CRS.from_user_input(crs_text)
    except CRSError:
        return None
    code = crs.to_epsg(min_confidence=70)
    return int(code) if code is not None else None


def sample_coordinates(geoms: np.ndarray, limit: int = SAMPLE_POINTS) -> np.ndarray:
    """Up to ``limit`` vertices spread over the geometries (n × 2 array)."""
    present = geoms[~shapely.is_missing(geoms)]
    if present.size == 0:
        return np.empty((0, 2))
    step = max(1, present.size // limit)
    coords = shapely.get_coordinates(present[::step])
    if coords.shape[0] > limit:
        coords = coords[:: coords.shape[0] // limit + 1]
    return coords


def decide(
    name: str,
    coords: np.ndarray,
    place: Municipality,
    *,
    declared: int | None,
    declared_text: str | None = None,
    override: int | None = None,
    northing_first: bool = False,
) -> CrsDecision:
    """Pick the CRS and axis order for a source from a sample of its coordinates.

    ``northing_first`` states the format's own convention (CGXML X = northing): the
    swapped order is then the expected one and is not reported as a defect.
    """
    notes: list[str] = []
    epsg = override if override is not None else declared
    claimed = declared_text or (f"EPSG:{declared}" if declared else None)
    if override is not None and declared is not None and override != declared:
        notes.append(f"the source declares {claimed}; read as EPSG:{override} (--source-crs)")
    if epsg is None:
        raise InvalidInput(
            f"{name}: the source declares no coordinate reference system"
            f"{' (' + claimed + ' is not one PROJ knows)' if claimed else ''}; "
            f"coordinates look like {_looks_like(coords)}. Give it with --source-crs EPSG:N"
        )
    if coords.shape[0] == 0:
        return CrsDecision(epsg, northing_first, tuple(notes))
    first, second = coords[:, 0], coords[:, 1]
    orders = (
        [(second, first), (first, second)] if northing_first else [(first, second), (second, first)]
    )
    shares = [_inside_share(epsg, place, x, y) for x, y in orders]
    if shares[0] >= INSIDE_SHARE:
        return CrsDecision(epsg, northing_first, tuple(notes))
    if shares[1] >= INSIDE_SHARE:
        order = "easting first" if northing_first else "northing/latitude first"
        notes.append(f"axes swapped: the coordinates are written {order}; read in the other order")
        return CrsDecision(epsg, not northing_first, tuple(notes))
    source = "--source-crs" if override is not None else f"the declared {claimed}"
    example = f"({first[0]:.6g}, {second[0]:.6g})"
    hint = " Give the right one with --source-crs EPSG:N." if override is None else ""
    raise InvalidInput(
        f"{name}: read as EPSG:{epsg} ({source}) the coordinates, e.g. {example}, fall "
        f"outside {place.described} ({max(shares):.0%} inside, in either axis order): "
        f"the CRS is wrong or missing; they look like {_looks_like(coords)}.{hint}"
    )


def _inside_share(epsg: int, place: Municipality, x: np.ndarray, y: np.ndarray) -> float:
    inside = fits(epsg, place, x, y)
    return float(inside.mean()) if inside.size else 0.0


def fits(epsg: int, place: Municipality, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per point: inside both the source CRS's own area and the municipality.

    The first test matters for continental storage CRSs: UTM coordinates read in the
    wrong order still land "somewhere in Europe", but far outside their own zone.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    finite = np.isfinite(x) & np.isfinite(y)
    try:
        moved = transform_points(
            epsg, place.storage_srid, np.where(finite, x, 0), np.where(finite, y, 0)
        )
        own = _own_area(epsg)
    except InvalidParameter:
        return np.zeros(x.shape[0], dtype=bool)
    inside = place.contains(moved.x, moved.y) & ~moved.failed & finite
    if own is not None:
        minx, miny, maxx, maxy = own
        with np.errstate(invalid="ignore"):
            inside &= (x >= minx) & (x <= maxx) & (y >= miny) & (y <= maxy)
    return np.asarray(inside)


@lru_cache(maxsize=64)
def _own_area(epsg: int) -> tuple[float, float, float, float] | None:
    """The source CRS's area of use in its own coordinates, widened by a fifth."""
    try:
        minx, miny, maxx, maxy = area_of_use(epsg)
    except (InvalidParameter, CRSError):
        return None
    dx, dy = (maxx - minx) * 0.2, (maxy - miny) * 0.2
    return (minx - dx, miny - dy, maxx + dx, maxy + dy)


def _looks_like(coords: np.ndarray) -> str:
    if coords.shape[0] == 0:
        return "nothing (no coordinates)"
    x, y = coords[:, 0], coords[:, 1]
    if np.all(np.abs(x) <= 180) and np.all(np.abs(y) <= 180):
        return "degrees (longitude/latitude, e.g. EPSG:4326)"
    span = f"x {x.min():.0f}…{x.max():.0f}, y {y.min():.0f}…{y.max():.0f}"
    return f"metres of a projected CRS ({span})"
