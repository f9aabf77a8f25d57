"""The e-services portal's endpoints: location check, parcel status, identify, addresses.

Thin HTTP wrappers: parameters are read here, everything else is ``permits`` logic.
"""

from __future__ import annotations

from flask import Response, request

from gis_core.errors import InvalidParameter
from permits.location import check_location
from permits.location_addresses import MAX_LIMIT, search_addresses
from permits.location_request import parse_as_of, parse_location_request
from permits.status import identify_parcels, parcel_status, parse_point_query, parse_status_args
from webmap.api.base import (
    api_base,
    api_connection,
    blueprint,
    json_body,
    limits,
    location_context,
    settings,
)
from webmap.app import json_response


@blueprint.get("/")
def index() -> Response:
    """Where things are, for people and programs exploring the API."""
    base = api_base()
    return json_response(
        {
            "title": f"urbangis API for {settings().uat_name}",
            "openapi": f"{base}/openapi.json",
            "docs": f"{base}/docs",
            "endpoints": [
                f"POST {base}/location-check",
                f"GET {base}/parcels/{{cadastral_number}}",
                f"GET {base}/parcels?lon=..&lat=..",
                f"GET {base}/addresses?q=..",
            ],
        }
    )


@blueprint.post("/location-check")
def location_check() -> Response:
    query = parse_location_request(json_body(), limits())
    locator = "geometry" if query.geometry is not None else "body"
    with api_connection(locator=locator) as conn:
        answer = check_location(conn, query, location_context())
    return json_response(answer)


@blueprint.get("/parcels/<path:cadastral_number>")
def parcel(cadastral_number: str) -> Response:
    as_of, include_geometry = parse_status_args(request.args)
    with api_connection() as conn:
        answer = parcel_status(
            conn,
            cadastral_number,
            location_context(),
            as_of=as_of,
            include_geometry=include_geometry,
        )
    return json_response(answer)


@blueprint.get("/parcels")
def parcels_at_point() -> Response:
    args = request.args
    unknown = sorted(set(args) - {"lon", "lat", "x", "y", "crs", "as_of"})
    if unknown:
        raise InvalidParameter(f"unknown parameter {unknown[0]!r}", locator=unknown[0])
    point, _srid = parse_point_query(args, limits())
    as_of = parse_as_of(args.get("as_of"))
    with api_connection(locator="lon") as conn:
        answer = identify_parcels(conn, point, location_context(), as_of=as_of, api_base=api_base())
    return json_response(answer)


@blueprint.get("/addresses")
def addresses() -> Response:
    args = request.args
    unknown = sorted(set(args) - {"q", "limit"})
    if unknown:
        raise InvalidParameter(f"unknown parameter {unknown[0]!r}", locator=unknown[0])
    text = args.get("q")
    if text is None:
        raise InvalidParameter("q is required", locator="q")
    limit = _limit(args.get("limit"))
    with api_connection(locator="q") as conn:
        found = search_addresses(conn, text, settings().uat_siruta, limit=limit)
    return json_response({"query": text, "addresses": found})


def _limit(text: str | None) -> int:
    if text is None:
        return 10
    if not text.strip().isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise InvalidParameter(f"limit must be a whole number 1..{MAX_LIMIT}", locator="limit")
    return int(text)
