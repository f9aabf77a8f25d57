"""The public web map: the page (with its deep links) and the small JSON answers it asks for.

``/`` and ``/map`` open the map; ``/map?parcel=N``, ``/map?parcels=1,2,3`` and
``/map?lon=..&lat=..&z=..`` are the deep links the e-services portal sends citizens to.
The parameters are checked here, before the page renders, so a wrong link says what is
wrong instead of showing an empty map. What the map says about an imobil comes from the
JSON API (``/api/v1/parcels/{n}``: the parcel card; ``/api/v1/parcels?lon&lat``: what
was clicked), so the card, the portal and the printed extract show one status. The page
is told the addresses of the staff tools that are installed (location validation, review
queue, zone analysis) and of the orthophotos the WMS serves.
"""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import urlencode

import orjson
import sqlalchemy as sa
from flask import Blueprint, Response, current_app, render_template, request, url_for
from werkzeug.routing import BuildError

from gis_core.crs import transform_coords
from gis_core.errors import InvalidParameter, UrbanGisError
from layers import map_search
from layers.map_parcels import parcel_labels, parcels_geojson
from layers.styles import OTHER_ZONES, ZONE_FAMILIES
from permits.location_request import requested_number
from webmap import i18n
from webmap.app import json_response, state, vendor_dir
from webmap.assets import assets_installed

blueprint = Blueprint("map_pages", __name__)

# Most parcels one deep link may name (the portal's multi-parcel requests are small).
MAX_LINKED_PARCELS = 50
# Cadastral-number labels are drawn from this zoom on; below it they would overlap.
LABELS_MIN_ZOOM = 18
MAX_ZOOM = 19
VECTOR_GRID = "leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js"
GEOMAN = "leaflet-geoman/leaflet-geoman.min.js"
# Draft plans, for planners: the zones layer's rows that only planners are given.
DRAFT_FILTER = "plan_status = 'draft'"
DRAFT_LIMIT = 2_000
TILES = "/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt"


# -- framework-free parsing --------------------------------------------------------------
def parse_number(value: str | None, name: str, low: float, high: float) -> float:
    """A finite number in ``[low, high]``, or a 400 naming the parameter."""
    try:
        number = float(value or "")
    except ValueError:
        raise InvalidParameter(f"{name} must be a number, got {value!r}", locator=name) from None
    if not math.isfinite(number) or not low <= number <= high:
        raise InvalidParameter(f"{name} must lie in [{low}, {high}], got {value!r}", locator=name)
    return number


def parse_cadastral_numbers(text: str | None, *, locator: str) -> tuple[str, ...]:
    """``1,2,3`` (commas, semicolons or spaces) as distinct numbers in the given order.

    Each is read like the API reads one (``permits.location_request.requested_number``),
    so a link accepts exactly the numbers the parcel status accepts.
    """
    parts = [part for part in re.split(r"[,;\s]+", text or "") if part]
    if not parts:
        raise InvalidParameter("at least one cadastral number is required", locator=locator)
    if len(parts) > MAX_LINKED_PARCELS:
        raise InvalidParameter(
            f"at most {MAX_LINKED_PARCELS} cadastral numbers at once, got {len(parts)}",
            locator=locator,
        )
    numbers = [requested_number(part, locator).number for part in parts]
    return tuple(dict.fromkeys(numbers))


def parse_deep_link(args: Any) -> dict[str, Any] | None:
    """What a deep link asks the map to show: parcels, or a place and zoom."""
    if "parcel" in args or "parcels" in args:
        name = "parcels" if "parcels" in args else "parcel"
        numbers = parse_cadastral_numbers(args.get(name), locator=name)
        if name == "parcel" and len(numbers) != 1:
            raise InvalidParameter("parcel names one cadastral number", locator="parcel")
        return {"parcels": list(numbers)}
    if "lon" in args or "lat" in args:
        link = {
            "lon": parse_number(args.get("lon"), "lon", -180, 180),
            "lat": parse_number(args.get("lat"), "lat", -90, 90),
            "z": 17.0,
        }
        if "z" in args:
            link["z"] = parse_number(args.get("z"), "z", 0, MAX_ZOOM)
        return link
    return None


def _url(endpoint: str, **values: Any) -> str | None:
    """The address of an installed endpoint, or None when its module is not installed;
    ``{name}`` placeholders are kept for the page script to fill in."""
    placeholders = {name: f"__{name}__" for name, value in values.items() if value is None}
    try:
        url = url_for(endpoint, **{**values, **placeholders})
    except BuildError:
        return None
    for name, marker in placeholders.items():
        url = url.replace(marker, "{" + name + "}")
    return url


def _orthophotos() -> list[dict[str, str]]:
    """The rasters the WMS serves (registered by the raster importer), for the base layers."""
    try:
        from webmap.wms import wms_state

        with state().connect() as conn:
            rasters = wms_state().raster_list(conn)
    except (UrbanGisError, sa.exc.SQLAlchemyError) as exc:
        current_app.logger.warning("map page without orthophotos: %s", exc)
        return []
    return [{"name": r.name, "title": r.title} for r in rasters]


# -- the page ----------------------------------------------------------------------------
def render_map_page(
    extent: tuple[float, float, float, float], demo: bool, database_ok: bool
) -> Response:
    """The map page, in the chosen language, with the deep link already checked."""
    lang = i18n.choose_language()
    text = i18n.translator(lang)
    link_error = None
    try:
        deep_link = parse_deep_link(request.args)
    except UrbanGisError as exc:
        deep_link, link_error = None, str(exc)
    app_state = state()
    messages = i18n.script_messages(lang)
    if not demo:  # the page calls its data synthetic only when it is
        messages.pop("demo", None)
    wms_url = _url("wms.endpoint")
    vector_grid = (vendor_dir() / VECTOR_GRID).is_file()
    geoman = (vendor_dir() / GEOMAN).is_file()
    config = {
        "lang": lang,
        "deepLink": deep_link,
        "cardUrl": _url("api_v1.parcel", cadastral_number=None),
        "atUrl": _url("api_v1.parcels_at_point"),
        "searchUrl": url_for("map_pages.search"),
        "selectionUrl": url_for("map_pages.selection"),
        "labelsUrl": url_for("map_pages.labels"),
        "labelsMinZoom": LABELS_MIN_ZOOM,
        "coordsUrl": url_for("map_pages.coordinates"),
        "extractUrl": _url("extract.extract_pdf", number=None),
        "parcelTilesUrl": TILES.format(layer="parcels"),
        "actsTilesUrl": TILES.format(layer="acts"),
        "featuresUrl": _url("ogc_features.items", collection_id=None),
        "draftsUrl": _drafts_url(),
        "loginUrl": url_for("auth.login"),
        "logoutUrl": url_for("auth.logout"),
        "whoamiUrl": url_for("auth.whoami"),
        "validationUrl": _url("api_v1.validate"),
        "queueUrl": _url("permits.queue_page"),
        "queueApiUrl": _url("permits.list_queue"),
        "analysisUrl": _url("analysis_api.zones"),
        "wmsUrl": wms_url,
        "orthophotos": _orthophotos() if wms_url and database_ok else [],
        "vectorGrid": vector_grid,
        "geoman": geoman,
        "messages": messages,
        "zoneFamilies": [
            {"words": f.words, "codes": f.codes, "colour": f.colour} for f in ZONE_FAMILIES
        ],
        "otherZonesColour": OTHER_ZONES.colour,
    }

    html = render_template(
        "map/page.html",
        settings=app_state.settings,
        t=text,
        lang=lang,
        other_lang="en" if lang == "ro" else "ro",
        extent=",".join(f"{value:.7f}" for value in extent),
        demo=demo,
        database_ok=database_ok,
        assets_ok=assets_installed(vendor_dir()),
        vector_grid=vector_grid,
        geoman=geoman,
        config=orjson.dumps(config).decode(),
        link_error=link_error,
        lang_url=_with_lang("en" if lang == "ro" else "ro"),
    )
    response = current_app.response_class(html, status=400 if link_error else 200)
    return i18n.remember_language(response, lang)


def _drafts_url() -> str | None:
    """The OGC API Features request of the draft plans' zones (only planners get rows)."""
    items = _url("ogc_features.items", collection_id="zones")
    if items is None:
        return None
    query = {"filter": DRAFT_FILTER, "filter-lang": "cql2-text", "limit": DRAFT_LIMIT}
    return f"{items}?{urlencode(query)}"


def _with_lang(lang: str) -> str:
    """This page's address (its deep link kept) in the other language."""
    args: dict[str, Any] = request.args.to_dict(flat=True)
    args["lang"] = lang
    return url_for(request.endpoint or "first_map.map_page", **args)


# -- JSON the page asks for ----------------------------------------------------------------
@blueprint.get("/map/search")
def search() -> Response:
    """Cadastral numbers, streets and addresses matching ``q`` (diacritic-insensitive)."""
    query = map_search.parse_query(request.args.get("q"))
    limit = int(parse_number(request.args.get("limit", "8"), "limit", 1, map_search.MAX_LIMIT))
    app_state = state()
    with app_state.connect() as conn:
        results = map_search.search(conn, query, siruta=app_state.settings.uat_siruta, limit=limit)
    return json_response({"query": query, "results": results})


@blueprint.get("/map/selection.geojson")
def selection() -> Response:
    """The outlines of the parcels a deep link names, their joint box, the unknown ones."""
    numbers = parse_cadastral_numbers(request.args.get("parcels"), locator="parcels")
    app_state = state()
    with app_state.connect() as conn:
        collection = parcels_geojson(conn, numbers, siruta=app_state.settings.uat_siruta)
    response = json_response(collection)
    response.mimetype = "application/geo+json"
    return response


@blueprint.get("/map/labels.geojson")
def labels() -> Response:
    """Label points (cadastral numbers) of the parcels inside a small ``bbox``."""
    from webmap.first_map import parse_bbox

    bbox = parse_bbox(request.args.get("bbox"))
    if (bbox.max_lon - bbox.min_lon) * (bbox.max_lat - bbox.min_lat) > 0.0004:
        raise InvalidParameter("bbox too large for labels; zoom in", locator="bbox")
    app_state = state()
    with app_state.connect() as conn:
        text = parcel_labels(conn, bbox.as_params(), siruta=app_state.settings.uat_siruta)
    return current_app.response_class(text, mimetype="application/geo+json")


@blueprint.get("/map/coords")
def coordinates() -> Response:
    """A point in Stereo 70 by the official TransDatRO transformation (cursor read-out)."""
    lon = parse_number(request.args.get("lon"), "lon", -180, 180)
    lat = parse_number(request.args.get("lat"), "lat", -90, 90)
    try:
        east, north = transform_coords(4258, 3844, lon, lat)
    except (UrbanGisError, ValueError) as exc:
        raise InvalidParameter(f"no Stereo 70 coordinates here: {exc}", locator="lon,lat") from None
    return json_response({"x": round(float(east), 2), "y": round(float(north), 2), "epsg": 3844})
