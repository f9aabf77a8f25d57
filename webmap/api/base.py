"""The ``/api/v1`` blueprint and what every API request goes through.

* authentication: a wrong or revoked ``X-API-Key`` is a 401, a used-up budget a 429
  (``webmap.auth``); anonymous callers may get a per-IP budget from the settings;
* CORS for the origins in the settings (``api_cors_origins``), preflights included;
* its own connection pool whose connections carry the API statement timeout, so a
  runaway query ends in a 503 after ``api_statement_timeout_ms`` instead of holding a
  worker, and run in autocommit (one round trip per statement); database failures
  never surface as a 500 or a stack trace;
* JSON bodies parsed by orjson, every problem a 400 naming ``body``.

Other API modules (for example the clerks' act endpoints) add their routes to
``blueprint`` and list their module in ``webmap.api.ROUTE_MODULES``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import sqlalchemy as sa
from flask import Blueprint, Response, current_app, request
from sqlalchemy.engine import Connection, Engine

from gis_core.db import POOL_RECYCLE_S, database_url, watch_for_disconnects
from gis_core.errors import DatabaseError, Forbidden, InvalidInput, InvalidParameter
from gis_core.settings import Settings
from permits.location import LocationContext
from permits.location_request import Limits
from webmap.app import state
from webmap.auth import API_KEY_HEADER, current_key_id, current_role, spend_budget

PREFIX = "/api/v1"
MAX_BODY_BYTES = 1_000_000
EXPOSED_HEADERS = "X-RateLimit-Limit, X-RateLimit-Remaining, Retry-After"

blueprint = Blueprint("api_v1", __name__, url_prefix=PREFIX)


# -- per-request hooks -------------------------------------------------------------------
@blueprint.before_request
def _authenticate() -> None:
    """Check the key (401), spend the caller's budget (429); preflights pass freely."""
    if request.method == "OPTIONS":
        return
    role = current_role()
    limit = settings().api_rate_limit_per_minute
    if limit and role == "public" and current_key_id() is None:
        spend_budget(f"ip-{request.remote_addr or 'unknown'}", limit, who="one client")


@blueprint.after_request
def _cors(response: Response) -> Response:
    """CORS headers for allowed origins; browsers enforce the rest."""
    origin = request.headers.get("Origin")
    allowed = settings().api_cors_origins
    if not origin or not ("*" in allowed or origin in allowed):
        return response
    response.headers["Access-Control-Allow-Origin"] = "*" if "*" in allowed else origin
    response.vary.add("Origin")
    response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = f"Content-Type, {API_KEY_HEADER}"
        response.headers["Access-Control-Max-Age"] = "600"
    return response


# -- shared helpers ----------------------------------------------------------------------
def settings() -> Settings:
    return state().settings


def location_context() -> LocationContext:
    """Settings for the permits functions, with absolute links back to this server."""
    s = settings()
    return LocationContext(
        storage_srid=s.storage_srid,
        uat_siruta=s.uat_siruta,
        uat_name=s.uat_name,
        disclaimer=s.disclaimer,
        nearby_m=s.api_nearby_m,
        # scheme://host as werkzeug's ``host_url`` has it, without its IRI decoding pass
        # (a measurable share of a location check's Python time); links stay plain URLs.
        map_url=f"{request.scheme}://{request.host}/map",
    )


def limits() -> Limits:
    s = settings()
    return Limits(
        storage_srid=s.storage_srid, max_numbers=s.api_max_numbers, max_area_m2=s.api_max_area_m2
    )


def api_base() -> str:
    return request.host_url.rstrip("/") + PREFIX


def json_body() -> Any:
    """The request's JSON document; anything unreadable is a 400 naming ``body``."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise InvalidParameter(
            f"the request body is larger than {MAX_BODY_BYTES} bytes", locator="body"
        )
    data = request.get_data(cache=False)
    if len(data) > MAX_BODY_BYTES:
        raise InvalidParameter(
            f"the request body is larger than {MAX_BODY_BYTES} bytes", locator="body"
        )
    if not data.strip():
        raise InvalidParameter("the request body is empty; send a JSON object", locator="body")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidParameter(
            f"the request body is not valid JSON: {exc}", locator="body"
        ) from None


def require_json_content() -> None:
    """State-changing staff endpoints take JSON only: a cross-site form cannot send it
    without a CORS preflight, which keeps session cookies from being abused (CSRF)."""
    if request.mimetype != "application/json":
        raise InvalidParameter("send the body as application/json", locator="Content-Type")


def require_role(*roles: str) -> str:
    role = current_role()
    if role not in roles:
        raise Forbidden(f"this endpoint needs one of the roles {', '.join(roles)}")
    return role


_ENGINES: dict[tuple[int, Settings], Engine] = {}
_ENGINES_LOCK = threading.Lock()


def api_engine() -> Engine:
    """This process's API pool (keyed by process id: a forked worker never shares its
    parent's sockets).

    Its connections start with the API statement timeout and run in autocommit: every
    API query is one read-only statement, so no BEGIN/COMMIT round trips, and no
    liveness ping on checkout either: connections the server closed are found without a
    round trip (``watch_for_disconnects``) and replaced. The pool has a connection for
    every request thread of the worker.
    """
    s = settings()
    key = (os.getpid(), s)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            options = (
                f"-c statement_timeout={s.api_statement_timeout_ms} -c timezone=UTC "
                # The API's few statements are prepared by psycopg; a generic plan is
                # planned once per connection instead of on every call (planning the
                # location statement costs more than running it).
                "-c plan_cache_mode=force_generic_plan"
            )
            size = max(s.pool_size, s.threads)
            engine = _ENGINES[key] = sa.create_engine(
                database_url(s),
                pool_size=size,
                max_overflow=size,
                pool_recycle=POOL_RECYCLE_S,
                isolation_level="AUTOCOMMIT",
                connect_args={"application_name": "urbangis-api", "options": options},
            )
            watch_for_disconnects(engine)
    return engine


@contextmanager
def api_connection(*, locator: str = "body") -> Iterator[Connection]:
    """A connection of the API pool; failures become clear 503/422 answers."""
    try:
        with api_engine().connect() as conn:
            yield conn
    except sa.exc.OperationalError as exc:
        timeout = settings().api_statement_timeout_ms
        current_app.logger.warning("API query failed: %s", _first_line(exc))
        if "statement timeout" in str(exc):
            raise DatabaseError(
                f"the answer took longer than {timeout} ms; try a smaller request"
            ) from None
        raise DatabaseError("the database is unavailable; try again") from None
    except sa.exc.DBAPIError as exc:
        # PostGIS refusing a geometry it was handed (GEOS exceptions) is the request's
        # problem; it is reported as such, without SQL or a trace.
        current_app.logger.warning("API query refused: %s", _first_line(exc))
        raise InvalidInput(
            f"the request could not be processed: {_first_line(exc.orig or exc)}",
            locator=locator,
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
