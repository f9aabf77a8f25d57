"""Reading a location-check request: every field checked before any SQL runs.

The e-services portal sends cadastral numbers, a drawn GeoJSON Point or Polygon, or an
address, and optionally the date the answer must hold for. Anything malformed is an
``InvalidParameter`` (400) whose ``locator`` names the field, e.g. ``geometry`` or
``cadastral_numbers[2]``; a geometry that is well-formed but cannot be a location here
(off the transformation grid, self-intersecting, absurdly large) is ``InvalidInput``
(422). Geometries are moved into the storage CRS here, so the database compares like
with like and uses its indexes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from gis_core.crs import parse_crs, transform_geometry
from gis_core.errors import InvalidInput, InvalidParameter, UrbanGisError
from permits.numbers import parse_cited_numbers

WGS84 = 4326
ETRS89 = 4258
GEOGRAPHIC = (WGS84, ETRS89)
FIELDS = frozenset(
    {"cadastral_numbers", "geometry", "crs", "address", "as_of", "purpose", "include_geometry"}
)
SUBJECT_FIELDS = ("cadastral_numbers", "geometry", "address")
GEOMETRY_TYPES = ("Point", "Polygon", "MultiPolygon")
MAX_TEXT = 300
MAX_VERTICES = 5000
MIN_POLYGON_AREA_M2 = 1.0
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2200, 12, 31)


@dataclass(frozen=True)
class Limits:
    """Bounds from the settings, and the CRSs requests may be given in."""

    storage_srid: int
    max_numbers: int = 50
    max_area_m2: float = 2_000_000.0

    @property
    def accepted_srids(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys((WGS84, ETRS89, 3844, self.storage_srid)))


@dataclass(frozen=True)
class RequestedNumber:
    """A cadastral number as sent and the imobil number it is looked up by."""

    written: str
    number: str


@dataclass(frozen=True)
class LocationQuery:
    """A checked request. Exactly one of numbers, geometry or address is set."""

    numbers: tuple[RequestedNumber, ...] = ()
    geometry: BaseGeometry | None = None  # in the storage CRS
    geometry_crs: int | None = None
    lonlat: tuple[float, float] | None = None  # a point sent in EPSG:4326/4258, untransformed
    address: str | None = None
    as_of: date | None = None  # None: now
    purpose: str | None = None
    include_geometry: bool = False
    parcel_ids: tuple[int, ...] = field(default=())

    @property
    def mode(self) -> str:
        if self.parcel_ids:
            return "ids"
        if self.numbers:
            return "numbers"
        if self.lonlat is not None and self.geometry is None:
            return "lonlat"
        if self.geometry is not None:
            return "point" if self.geometry.geom_type == "Point" else "polygon"
        return "address"

    def moment(self) -> datetime | None:
        """The instant versions are compared at: the last microsecond of ``as_of`` (UTC)."""
        if self.as_of is None:
            return None
        end = datetime.combine(self.as_of + timedelta(days=1), time(0, 0), tzinfo=UTC)
        return end - timedelta(microseconds=1)


def parse_location_request(payload: Any, limits: Limits) -> LocationQuery:
    """Check a decoded JSON body; the first problem found is raised, naming its field."""
    if not isinstance(payload, dict):
        raise InvalidParameter("the request body must be a JSON object", locator="body")
    unknown = sorted(set(payload) - FIELDS)
    if unknown:
        raise InvalidParameter(
            f"unknown field {unknown[0]!r}; expected some of: {', '.join(sorted(FIELDS))}",
            locator=str(unknown[0]),
        )
    given = [name for name in SUBJECT_FIELDS if payload.get(name) is not None]
    if len(given) != 1:
        raise InvalidParameter(
            "send exactly one of cadastral_numbers, geometry or address"
            + (f" (got {', '.join(given)})" if given else ""),
            locator=given[1] if len(given) > 1 else "cadastral_numbers",
        )
    if payload.get("crs") is not None and given[0] != "geometry":
        raise InvalidParameter("crs only applies to geometry", locator="crs")
    common = LocationQuery(
        as_of=parse_as_of(payload.get("as_of")),
        purpose=_optional_text(payload.get("purpose"), "purpose"),
        include_geometry=_flag(payload.get("include_geometry"), "include_geometry"),
    )
    if given[0] == "cadastral_numbers":
        numbers = parse_numbers(payload["cadastral_numbers"], limits.max_numbers)
        return replace(common, numbers=numbers)
    if given[0] == "address":
        address = _optional_text(payload["address"], "address")
        if not address or len(address.strip()) < 3:
            raise InvalidParameter("address must have at least 3 characters", locator="address")
        return replace(common, address=address)
    srid = parse_request_crs(payload.get("crs"), limits)
    if srid in GEOGRAPHIC and srid != limits.storage_srid:
        point = geographic_point(payload["geometry"])
        if point is not None:
            return replace(common, lonlat=point, geometry_crs=srid)
    geom = parse_geometry(payload["geometry"], srid, limits)
    return replace(common, geometry=geom, geometry_crs=srid)


def geographic_point(value: Any) -> tuple[float, float] | None:
    """A longitude/latitude Point kept as sent (checked), or None for other geometries.

    The location statement finds its parcel on the parcels' ETRS89 twins; only when no
    parcel lies there is it transformed into the storage CRS (``point_to_storage``).
    """
    if not isinstance(value, dict) or value.get("type") != "Point":
        return None
    # Checked like any geometry, without building one: two or three finite numbers always
    # make a valid, non-empty point.
    coordinates: Any = value.get("coordinates")
    _check_coordinates(coordinates, _DEPTH["Point"])
    lon, lat = float(coordinates[0]), float(coordinates[1])
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise InvalidInput(
            f"geometry: ({lon:g}, {lat:g}) is not a longitude/latitude position",
            locator="geometry",
        )
    return lon, lat


def point_to_storage(query: LocationQuery, limits: Limits) -> LocationQuery:
    """The same query with its longitude/latitude point in the storage CRS."""
    assert query.lonlat is not None and query.geometry_crs is not None
    lon, lat = query.lonlat
    geom = parse_geometry({"type": "Point", "coordinates": [lon, lat]}, query.geometry_crs, limits)
    return replace(query, geometry=geom)


def parse_as_of(value: Any, name: str = "as_of") -> date | None:
    """An ISO date (``YYYY-MM-DD``) within a sane range; the error names ``name``."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidParameter(f"{name} must be a date written YYYY-MM-DD", locator=name)
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidParameter(
            f"{name} {value[:40]!r} is not a date written YYYY-MM-DD", locator=name
        ) from None
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        raise InvalidParameter(
            f"{name} must lie between {EARLIEST_DATE} and {LATEST_DATE}", locator=name
        )
    return day


def parse_numbers(value: Any, max_numbers: int) -> tuple[RequestedNumber, ...]:
    """A list of cadastral numbers (strings; whole numbers are accepted as written)."""
    if not isinstance(value, list) or not value:
        raise InvalidParameter(
            "cadastral_numbers must be a non-empty list of strings", locator="cadastral_numbers"
        )
    if len(value) > max_numbers:
        raise InvalidParameter(
            f"too many cadastral numbers: {len(value)} sent, at most {max_numbers} per request",
            locator="cadastral_numbers",
        )
    numbers: dict[str, RequestedNumber] = {}
    for index, item in enumerate(value):
        where = f"cadastral_numbers[{index}]"
        parsed = requested_number(item, where)
        numbers.setdefault(parsed.number, parsed)
    return tuple(numbers.values())


def requested_number(item: Any, where: str) -> RequestedNumber:
    if isinstance(item, bool) or not isinstance(item, str | int):
        raise InvalidParameter(f"{where} must be a string", locator=where)
    text = str(item).strip()
    if not text or len(text) > 64:
        raise InvalidParameter(f"{where} must have 1 to 64 characters", locator=where)
    try:
        cited = parse_cited_numbers(text, field=where)
    except UrbanGisError as exc:
        raise InvalidParameter(exc.message, locator=where) from None
    if len(cited) != 1:
        raise InvalidParameter(
            f"{where} must hold exactly one cadastral number (got {text!r})", locator=where
        )
    return RequestedNumber(written=text, number=cited[0].number)


def parse_request_crs(value: Any, limits: Limits) -> int:
    """EPSG:4326 / CRS84 by default; also ETRS89, Stereo 70 and the storage CRS."""
    if value is None:
        return WGS84
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise InvalidParameter("crs must be a string such as EPSG:4326", locator="crs")
    srid = parse_crs(value if isinstance(value, int) else value.strip())
    if srid not in limits.accepted_srids:
        raise InvalidParameter(
            f"crs {value!r} is not accepted; use one of "
            + ", ".join(f"EPSG:{code}" for code in limits.accepted_srids),
            locator="crs",
        )
    return srid


def parse_geometry(value: Any, srid: int, limits: Limits) -> BaseGeometry:
    """A GeoJSON Point or (Multi)Polygon in ``srid`` (x/y order), moved to storage."""
    geom = _geojson_shape(value)
    if srid != limits.storage_srid:
        try:
            geom = transform_geometry(geom, srid, limits.storage_srid)
        except InvalidParameter as exc:
            raise InvalidInput(
                f"geometry: cannot be moved from EPSG:{srid} into the storage CRS: {exc.message}",
                locator="geometry",
            ) from None
        if not bool(shapely.is_valid(geom)) or not _finite(geom):
            raise InvalidInput(
                f"geometry lies where EPSG:{srid} cannot be used here", locator="geometry"
            )
    if geom.geom_type != "Point":
        area = float(geom.area)
        if area < MIN_POLYGON_AREA_M2:
            raise InvalidInput(
                f"geometry: the polygon's area ({area:.2f} m²) is too small to be a location",
                locator="geometry",
            )
        if area > limits.max_area_m2:
            raise InvalidInput(
                f"geometry: the polygon covers {area / 10_000:,.1f} ha, more than the "
                f"{limits.max_area_m2 / 10_000:,.1f} ha a location check accepts",
                locator="geometry",
            )
    return geom


def _geojson_shape(value: Any) -> BaseGeometry:
    if not isinstance(value, dict):
        raise InvalidParameter("geometry must be a GeoJSON geometry object", locator="geometry")
    kind = value.get("type")
    if kind not in GEOMETRY_TYPES:
        raise InvalidParameter(
            f"geometry type {str(kind)[:40]!r} is not accepted; use one of "
            + ", ".join(GEOMETRY_TYPES),
            locator="geometry.type",
        )
    coordinates = value.get("coordinates")
    _check_coordinates(coordinates, _DEPTH[str(kind)])
    try:
        geom = shapely.geometry.shape({"type": kind, "coordinates": coordinates})
    except (ValueError, TypeError, AttributeError, IndexError, shapely.errors.ShapelyError):
        raise InvalidParameter(
            f"geometry.coordinates do not make a {kind}", locator="geometry.coordinates"
        ) from None
    if geom.is_empty:
        raise InvalidParameter("geometry is empty", locator="geometry.coordinates")
    if not bool(shapely.is_valid(geom)):
        reason = shapely.is_valid_reason(geom)
        raise InvalidInput(f"geometry is not a valid {kind}: {reason}", locator="geometry")
    return geom


_DEPTH = {"Point": 1, "Polygon": 3, "MultiPolygon": 4}


def _check_coordinates(coordinates: Any, depth: int) -> None:
    """Nested lists of the right depth ending in 2 or 3 finite numbers, bounded in size."""
    count = 0

    def walk(node: Any, level: int) -> None:
        nonlocal count
        if not isinstance(node, list) or not node:
            raise InvalidParameter(
                "geometry.coordinates are not nested lists of positions",
                locator="geometry.coordinates",
            )
        if level == 1:
            if len(node) not in (2, 3) or not all(_is_number(v) for v in node):
                raise InvalidParameter(
                    "geometry.coordinates: a position is 2 or 3 finite numbers",
                    locator="geometry.coordinates",
                )
            count += 1
            if count > MAX_VERTICES:
                raise InvalidParameter(
                    f"geometry has more than {MAX_VERTICES} vertices",
                    locator="geometry.coordinates",
                )
            return
        for child in node:
            walk(child, level - 1)

    walk(coordinates, depth)


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and abs(value) < 1e9
    )


def _finite(geom: BaseGeometry) -> bool:
    coords = shapely.get_coordinates(geom)
    return bool(len(coords)) and bool((abs(coords) < 1e12).all())


def _optional_text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidParameter(f"{name} must be a string", locator=name)
    if len(value) > MAX_TEXT:
        raise InvalidParameter(f"{name} must have at most {MAX_TEXT} characters", locator=name)
    text = value.strip()
    return text or None


def _flag(value: Any, name: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidParameter(f"{name} must be true or false", locator=name)
    return value
