"""``/api/v1/analysis`` and ``/api/v1/indicators``: zone analysis for planners, indicators.

Thin views over ``layers.analysis`` and ``layers.indicators``. The zone analysis and the
plan comparison are for planners and administrators (they show draft plans and
per-parcel figures); the indicator catalogue and the current runs are public, like the
layers they are published as.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from gis_core.errors import Forbidden, InvalidParameter
from layers.analysis.basis import AsOf
from layers.analysis.compare import PlanState, compare_plans
from layers.analysis.zones import ZoneQuery, analyse_zones
from layers.indicators import catalogue
from layers.indicators.export import current_runs
from webmap.app import json_response, state
from webmap.auth import current_role

PLANNERS = ("planner", "admin")

blueprint = Blueprint("analysis_api", __name__, url_prefix="/api/v1")


def _require_planner() -> None:
    if current_role() not in PLANNERS:
        raise Forbidden("the zone analysis is for planners: sign in or use a planner key")


def _int(name: str) -> int | None:
    text = request.args.get(name)
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise InvalidParameter(f"{name} must be an integer, got {text!r}", locator=name) from None


@blueprint.get("/analysis/zones")
def zones() -> Response:
    """Per UTR (``by=utr``) or zone polygon (``by=zone``), as of ``as_of``, for ``plan``."""
    _require_planner()
    query = ZoneQuery(
        AsOf.parse(request.args.get("as_of")), _int("plan"), request.args.get("by", "utr")
    )
    with state().connect() as conn:
        return json_response(analyse_zones(conn, query))


@blueprint.get("/analysis/compare")
def compare() -> Response:
    """Parcels whose zone or rules differ between two plan states."""
    _require_planner()
    before = PlanState(AsOf.parse(request.args.get("as_of")), _int("plan"))
    after = PlanState(
        AsOf.parse(request.args.get("other_as_of"), "other_as_of"), _int("other_plan")
    )
    with state().connect() as conn:
        return json_response(compare_plans(conn, before, after))


@blueprint.get("/indicators")
def indicator_catalogue() -> Response:
    """The catalogue: name, definition, formula, unit, sources, spatial units."""
    return json_response({"indicators": [i.describe() for i in catalogue.CATALOGUE]})


@blueprint.get("/indicators/runs")
def indicator_runs() -> Response:
    """The current run of each indicator layer, with its inputs' versions and summary."""
    units = request.args.get("units") or None
    wanted = tuple(request.args.getlist("indicator"))
    for item in wanted:
        catalogue.get(item)
    with state().connect() as conn:
        runs = current_runs(conn, wanted, units)
    return json_response({"runs": runs})


@blueprint.before_app_request
def _refresh_catalog() -> None:
    """Let the layer catalog pick up new indicator layers before OGC and tile requests.

    The catalog throttles itself (one tiny query per check interval), so this is cheap.
    """
    if not request.path.startswith(("/ogc", "/tiles", "/wms", "/wfs")):
        return
    from webmap.ogc_features import layer_services

    catalog = layer_services().catalog
    if not catalog.check_due():
        return  # a cache hit within the check interval needs no connection at all
    with state().connect() as conn:
        catalog.refresh(conn)
