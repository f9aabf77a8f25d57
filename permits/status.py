"""Parcel status for citizens' parcel pages and the portal: one parcel, or the one at a point.

``parcel_status`` is the location check for a single cadastral number (a 404 naming the
number when it does not exist on the date). ``identify_parcels`` answers "which parcel
is here?" cheaply, for clicks and for the portal's map picker: a point query on the
GiST index of the storage geometry, with the UAT test in the same statement.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_core.crs import transform_coords
from gis_core.errors import InvalidInput, InvalidParameter, NotFound
from permits.location import LocationContext, check_location
from permits.location_request import (
    WGS84,
    Limits,
    LocationQuery,
    parse_as_of,
    parse_geometry,
    parse_request_crs,
    requested_number,
)

_IDENTIFY = sa.text(
    """
    WITH pt AS (SELECT ST_GeomFromEWKB(CAST(:wkb AS bytea)) AS geom)
    SELECT json_build_object(
        'inside_uat', (SELECT ST_Intersects(u.geom, pt.geom) FROM core.admin_unit u, pt
                       WHERE u.siruta = :uat AND u.geom IS NOT NULL LIMIT 1),
        'parcels', (SELECT coalesce(json_agg(json_build_object(
                'cadastral_number', p.cadastral_number,
                'land_book_number', p.land_book_number,
                'measured_area', p.measured_area,
                'use_category', p.use_category,
                'intravilan', p.intravilan,
                'address', p.address_text) ORDER BY p.cadastral_number), '[]'::json)
            FROM cadastre.parcel p, pt
            WHERE p.uat_siruta = :uat AND ST_Intersects(p.geom, pt.geom)
              AND tstzrange(p.valid_from, p.valid_to, '[)') @> CAST(:t AS timestamptz))
    )::text
    """
)


def parcel_status(
    conn: Connection,
    cadastral_number: str,
    ctx: LocationContext,
    *,
    as_of: date | None = None,
    include_geometry: bool = False,
) -> dict[str, Any]:
    """The location check of one imobil; an unknown number is a 404 naming it."""
    number = requested_number(cadastral_number, "cadastral_number")
    query = LocationQuery(numbers=(number,), as_of=as_of, include_geometry=include_geometry)
    answer = check_location(conn, query, ctx)
    if not answer["parcels"]:
        when = f" on {as_of.isoformat()}" if as_of else ""
        why = answer["not_found"][0]["reason"] if answer["not_found"] else ""
        raise NotFound(
            f"no parcel with cadastral number {number.written!r} in {ctx.uat_name}{when}"
            + (f": {why}" if why else ""),
            locator="cadastral_number",
        )
    return answer


def parse_point_query(args: Mapping[str, str], limits: Limits) -> tuple[shapely.Point, int]:
    """``lon``+``lat`` (EPSG:4326), or ``x``+``y`` with ``crs`` (default the storage CRS)."""
    geographic = "lon" in args or "lat" in args
    projected = "x" in args or "y" in args
    if geographic == projected:
        raise InvalidParameter("give either lon and lat, or x and y (with crs)", locator="lon")
    if geographic:
        if "crs" in args:
            raise InvalidParameter("crs only applies to x and y", locator="crs")
        names, srid = ("lon", "lat"), WGS84
    else:
        names = ("x", "y")
        srid = parse_request_crs(args.get("crs", limits.storage_srid), limits)
    values = [_coordinate(args, name) for name in names]
    if geographic and not (-180 <= values[0] <= 180 and -90 <= values[1] <= 90):
        raise InvalidParameter("lon must lie in -180..180 and lat in -90..90", locator="lon")
    geom = parse_geometry({"type": "Point", "coordinates": values}, srid, limits)
    assert isinstance(geom, shapely.Point)
    return geom, srid


def _coordinate(args: Mapping[str, str], name: str) -> float:
    text = args.get(name)
    if text is None or not text.strip():
        raise InvalidParameter(f"{name} is required", locator=name)
    try:
        value = float(text)
    except ValueError:
        raise InvalidParameter(
            f"{name} must be a number (got {text[:30]!r})", locator=name
        ) from None
    if value != value or abs(value) == float("inf") or abs(value) > 1e8:
        raise InvalidParameter(f"{name} must be a finite number", locator=name)
    return value


def identify_parcels(
    conn: Connection,
    point: shapely.Point,
    ctx: LocationContext,
    *,
    as_of: date | None = None,
    api_base: str = "/api/v1",
) -> dict[str, Any]:
    """The parcel(s) at ``point`` (storage CRS), with links to their full status."""
    import orjson

    moment = LocationQuery(as_of=as_of).moment() or datetime.now(UTC)
    wkb = shapely.to_wkb(shapely.set_srid(point, ctx.storage_srid), include_srid=True)
    text = conn.execute(_IDENTIFY, {"wkb": wkb, "uat": ctx.uat_siruta, "t": moment}).scalar_one()
    found = orjson.loads(text)
    if not found["inside_uat"]:
        raise InvalidInput(
            f"the point lies outside the territory of {ctx.uat_name} (UAT {ctx.uat_siruta})",
            locator="lon",
        )
    lon, lat = transform_coords(ctx.storage_srid, WGS84, [point.x], [point.y])
    suffix = f"?as_of={as_of.isoformat()}" if as_of else ""
    for parcel in found["parcels"]:
        number = quote(parcel["cadastral_number"], safe="")
        parcel["status_url"] = f"{api_base}/parcels/{number}{suffix}"
        parcel["map_url"] = f"{ctx.map_url}?parcels={number}"
    return {
        "point": {"lon": round(float(lon[0]), 7), "lat": round(float(lat[0]), 7)},
        "valid_for": (as_of or datetime.now(UTC).date()).isoformat(),
        "parcels": found["parcels"],
    }


def parse_status_args(args: Mapping[str, str]) -> tuple[date | None, bool]:
    """``as_of`` and ``include_geometry`` of the GET endpoints."""
    unknown = sorted(set(args) - {"as_of", "include_geometry"})
    if unknown:
        raise InvalidParameter(f"unknown parameter {unknown[0]!r}", locator=unknown[0])
    flag = args.get("include_geometry", "false").strip().lower()
    if flag not in ("true", "false", "1", "0"):
        raise InvalidParameter("include_geometry must be true or false", locator="include_geometry")
    return parse_as_of(args.get("as_of")), flag in ("true", "1")
