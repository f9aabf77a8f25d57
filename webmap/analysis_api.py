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
from layers.indicators.units import UnitSpec
from webmap.api import base as api_base
from webmap.app import json_response, state
from webmap.auth import current_role

PLANNERS = ("planner", "admin")
BIGINT = (-(2**63), 2**63 - 1)  # ids are bigint: anything beyond is no id at all

blueprint = Blueprint("analysis_api", __name__, url_prefix="/api/v1")
# What every /api/v1 request goes through: a wrong or revoked key is a 401 (never read as
# an anonymous call), the caller's request budget is spent (429 when used up), and the
# portal's origins get their CORS headers.
blueprint.before_request(api_base._authenticate)
blueprint.after_request(api_base._cors)


def _require_planner() -> None:
    if current_role() not in PLANNERS:
        raise Forbidden("the zone analysis is for planners: sign in or use a planner key")


def _int(name: str) -> int | None:
    text = request.args.get(name)
    if text is None or text == "":
        return None
    try:
        value = int(text)
    except ValueError:
        raise InvalidParameter(f"{name} must be an integer, got {text!r}", locator=name) from None
    if not BIGINT[0] <= value <= BIGINT[1]:
        raise InvalidParameter(f"{name} is out of range, got {text!r}", locator=name)
    return value


def _as_of(name: str, now: AsOf) -> AsOf:
    """The day in parameter ``name``, or ``now`` (one instant for the whole request)."""
    text = request.args.get(name)
    if text is None or not text.strip():
        return now
    try:
        return AsOf.parse(text, name)
    except OverflowError:  # the last representable day has no end to stand for
        raise InvalidParameter(
            f"{name} must be a date before 9999-12-31, got {text!r}", locator=name
        ) from None


@blueprint.get("/analysis/zones")
def zones() -> Response:
    """Per UTR (``by=utr``) or zone polygon (``by=zone``), as of ``as_of``, for ``plan``."""
    _require_planner()
    query = ZoneQuery(_as_of("as_of", AsOf.of(None)), _int("plan"), request.args.get("by", "utr"))
    with state().connect() as conn:
        return json_response(analyse_zones(conn, query))


@blueprint.get("/analysis/compare")
def compare() -> Response:
    """Parcels whose zone or rules differ between two plan states."""
    _require_planner()
    now = AsOf.of(None)  # both states "now" must be the same instant, or never equal
    before = PlanState(_as_of("as_of", now), _int("plan"))
    after = PlanState(_as_of("other_as_of", now), _int("other_plan"))
    with state().connect() as conn:
        return json_response(compare_plans(conn, before, after))


@blueprint.get("/indicators")
def indicator_catalogue() -> Response:
    """The catalogue: name, definition, formula, unit, sources, spatial units."""
    return json_response({"indicators": [i.describe() for i in catalogue.CATALOGUE]})


@blueprint.get("/indicators/runs")
def indicator_runs() -> Response:
    """The current run of each indicator layer, with its inputs' versions and summary."""
    text = request.args.get("units") or None
    # Stored runs carry the canonical label (``hex:500``), as ``indicators compute`` reads it.
    units = None if text is None else UnitSpec.parse(text).label
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
