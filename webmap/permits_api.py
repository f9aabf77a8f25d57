"""HTTP for acts: clerk endpoints under ``/api/v1/acts``, the public register under ``/register``.

Clerk endpoints need the clerk or admin role (a staff login or an API key). A staff
browser session must also send the session's CSRF token (``X-CSRF-Token`` header, or
the ``csrf_token`` field of an HTML form) on every state-changing request, so another
site cannot make a signed-in clerk's browser change acts; API-key callers carry no
ambient credentials and are exempt. Edits send the ``version`` they read (or an
``If-Match`` header); a stale one is answered 409.

The register pages are public: the monthly lists as HTML, CSV and GeoJSON, with the
applicant column only where the deployment allows it. The logic lives in ``permits``;
this module only translates HTTP.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import date
from typing import Any

from flask import Blueprint, Response, redirect, render_template, request, session, url_for

from gis_core.errors import Forbidden, InvalidInput, InvalidParameter
from permits import lifecycle, queue
from permits import register as public_register
from webmap.app import json_response, state
from webmap.auth import Unauthorized, current_key_id, current_role

CLERK_ROLES = ("clerk", "admin")
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"

blueprint = Blueprint("permits", __name__)


# -- who may do what -------------------------------------------------------------------
def _require_clerk() -> str:
    """The actor name of a clerk or admin; 401 for anonymous callers, 403 for others."""
    role = current_role()
    if role == "public":
        raise Unauthorized("sign in as a clerk or send an API key with the clerk role")
    if role not in CLERK_ROLES:
        raise Forbidden(f"the {role} role may not manage acts")
    key_id = current_key_id()
    if key_id:
        return f"api key {key_id}"
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        _check_csrf()
    return f"staff {session.get('login', '?')}"


def csrf_token() -> str:
    """The session's CSRF token, created on first use."""
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return token


def _check_csrf() -> None:
    expected = session.get(CSRF_FIELD)
    sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD) or ""
    if not isinstance(expected, str) or not hmac.compare_digest(expected, sent):
        raise Forbidden(
            f"missing or wrong CSRF token: send the {CSRF_HEADER} header "
            "(GET /api/v1/acts/csrf gives it)"
        )


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise InvalidParameter("the request body must be a JSON object", locator="body")
    return data


def _version(data: dict[str, Any]) -> int:
    """The version the clerk edited: body ``version`` or an ``If-Match`` header."""
    raw = data.pop("version", None)
    if raw is None:
        raw = (request.headers.get("If-Match") or "").strip('W/" ')
    if raw in (None, "") or not str(raw).isdigit():
        raise InvalidParameter(
            "version: send the version you edited (body field or If-Match)", locator="version"
        )
    return int(raw)


def _date_field(data: dict[str, Any], name: str, default: date) -> date:
    value = data.get(name)
    if value in (None, ""):
        return default
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InvalidInput(f"{name}: {value!r} is not a date (YYYY-MM-DD)", locator=name) from None


def _act_response(act: dict[str, Any], status: int = 200) -> Response:
    response = json_response(act, status)
    response.headers["ETag"] = f'"{act["version"]}"'
    return response


# -- clerk endpoints -------------------------------------------------------------------
@blueprint.get("/api/v1/acts/csrf")
def get_csrf() -> Response:
    _require_clerk()
    return json_response({CSRF_FIELD: csrf_token(), "header": CSRF_HEADER})


@blueprint.post("/api/v1/acts")
def create() -> Response:
    actor = _require_clerk()
    data = _body()
    with state().connect() as conn:
        act = lifecycle.create_act(conn, state().settings, data, actor=actor)
    response = _act_response(act, 201)
    response.headers["Location"] = url_for("permits.read", act_id=act["id"])
    return response


@blueprint.get("/api/v1/acts/<int:act_id>")
def read(act_id: int) -> Response:
    _require_clerk()
    with state().connect() as conn:
        act = lifecycle.get_act(conn, act_id, personal=True)
    return _act_response(act)


@blueprint.patch("/api/v1/acts/<int:act_id>")
def update(act_id: int) -> Response:
    actor = _require_clerk()
    data = _body()
    version = _version(data)
    with state().connect() as conn:
        act = lifecycle.update_act(conn, state().settings, act_id, version, data, actor=actor)
    return _act_response(act)


@blueprint.post("/api/v1/acts/<int:act_id>/extend")
def extend(act_id: int) -> Response:
    actor = _require_clerk()
    data = _body()
    version = _version(data)
    months = data.get("months")
    if not isinstance(months, int) or isinstance(months, bool):
        raise InvalidInput("months: a whole number of months", locator="months")
    requested = _date_field(data, "requested_on", date.today())
    with state().connect() as conn:
        act = lifecycle.extend_act(
            conn,
            state().settings,
            act_id,
            version,
            months=months,
            requested_on=requested,
            actor=actor,
        )
    return _act_response(act)


@blueprint.post("/api/v1/acts/<int:act_id>/cancel")
def cancel(act_id: int) -> Response:
    actor = _require_clerk()
    data = _body()
    version = _version(data)
    with state().connect() as conn:
        act = lifecycle.cancel_act(
            conn, act_id, version, reason=str(data.get("reason") or ""), actor=actor
        )
    return _act_response(act)


@blueprint.get("/api/v1/acts/queue")
def list_queue() -> Response:
    _require_clerk()
    limit = request.args.get("limit", "100")
    offset = request.args.get("offset", "0")
    if not limit.isdigit() or not offset.isdigit() or not 1 <= int(limit) <= 1000:
        raise InvalidParameter("limit: 1 to 1000; offset: 0 or more", locator="limit")
    with state().connect() as conn:
        counts = queue.count_open(conn)
        items = queue.open_items(conn, limit=int(limit), offset=int(offset))
    return json_response({"counts": counts, "items": items})


@blueprint.post("/api/v1/acts/queue/<int:item_id>/resolve")
def resolve(item_id: int) -> Response:
    actor = _require_clerk()
    data = _body()
    numbers = data.get("cadastral_numbers") or []
    parcel_ids = data.get("parcel_ids") or []
    if not isinstance(numbers, list) or not all(isinstance(n, str) for n in numbers):
        raise InvalidInput("cadastral_numbers: a list of strings", locator="cadastral_numbers")
    if not isinstance(parcel_ids, list) or not all(
        isinstance(p, int) and not isinstance(p, bool) for p in parcel_ids
    ):
        raise InvalidInput("parcel_ids: a list of integers", locator="parcel_ids")
    with state().connect() as conn:
        result = queue.resolve_item(
            conn,
            item_id,
            actor=actor,
            cadastral_numbers=numbers,
            parcel_ids=parcel_ids,
            note=data.get("note"),
        )
    return json_response(result)


@blueprint.post("/api/v1/acts/queue/<int:item_id>/dismiss")
def dismiss(item_id: int) -> Response:
    actor = _require_clerk()
    data = _body()
    with state().connect() as conn:
        result = queue.dismiss_item(conn, item_id, actor=actor, note=str(data.get("note") or ""))
    return json_response(result)


# -- the clerk's queue page (HTML forms, CSRF-protected) -------------------------------
@blueprint.get("/clerk/queue")
def queue_page() -> str:
    _require_clerk()
    with state().connect() as conn:
        items = queue.open_items(conn, limit=200)
        counts = queue.count_open(conn)
    return render_template(
        "register/queue.html", items=items, counts=counts, csrf_token=csrf_token()
    )


@blueprint.post("/clerk/queue/<int:item_id>")
def queue_form(item_id: int) -> Response:
    actor = _require_clerk()
    numbers = [n.strip() for n in request.form.get("cadastral_numbers", "").split(",")]
    with state().connect() as conn:
        queue.resolve_item(
            conn,
            item_id,
            actor=actor,
            cadastral_numbers=[n for n in numbers if n],
            note=request.form.get("note") or None,
        )
    return redirect(url_for("permits.queue_page"), code=303)  # type: ignore[return-value]


# -- the public register ---------------------------------------------------------------
@blueprint.get("/register/")
def register_index() -> str:
    with state().connect() as conn:
        months = public_register.months_with_acts(conn, state().settings)
    return render_template("register/index.html", months=months, titles=public_register.TITLES)


@blueprint.get("/register/<group>/<int:year>/<int:month>")
@blueprint.get("/register/<group>/<int:year>/<int:month>.<fmt>")
def register_month(group: str, year: int, month: int, fmt: str = "html") -> Response | str:
    wanted = public_register.Month.parse(year, month, group)
    settings = state().settings
    if fmt not in ("html", "csv", "geojson"):
        raise InvalidParameter("format: html, csv or geojson", locator="format")
    with state().connect() as conn:
        if fmt == "geojson":
            body = public_register.as_geojson(conn, settings, wanted)
            return Response(body, mimetype="application/geo+json")
        rows = public_register.monthly_list(conn, settings, wanted)
    if fmt == "csv":
        name = f"registru_{wanted.group}_{wanted.label}.csv"
        return Response(
            public_register.as_csv(rows, settings),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return render_template(
        "register/month.html",
        rows=rows,
        month=wanted,
        title=public_register.TITLES[wanted.group],
        columns=public_register.columns(settings),
        uat_name=settings.uat_name,
    )
