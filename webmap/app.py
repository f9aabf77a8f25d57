"""The Flask application factory.

``create_app`` only wires things together: it never connects to (or starts) a database,
so building the app is cheap and safe in a gunicorn master, in tests and in tools that
merely inspect the URL map. The engine is created on first use in the process that
serves requests, which also gives every forked worker its own connection pool.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import sqlalchemy as sa
from flask import Flask, Request, Response, current_app
from flask.json.provider import JSONProvider
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from sqlalchemy.engine import Connection, Engine

from gis_core.db import engine_for
from gis_core.errors import DatabaseError
from gis_core.settings import Settings, load_settings

EXTENSION = "urbangis"
PACKAGE_DIR = Path(__file__).resolve().parent
VENDOR_DIR = PACKAGE_DIR / "static" / "vendor"


@dataclass
class UrbanGis:
    """Per-app state: the settings and the lazily created, fork-aware engine."""

    settings: Settings
    _engine: Engine | None = field(default=None, repr=False)
    _engine_pid: int = field(default=0, repr=False)

    @property
    def engine(self) -> Engine:
        """The process's engine; a forked child drops the parent's pooled connections."""
        if self._engine is None:
            self._engine = engine_for(self.settings)
            self._engine_pid = os.getpid()
        elif self._engine_pid != os.getpid():
            # Sockets inherited across fork must not be shared: start a fresh pool
            # without closing the parent's connections (SQLAlchemy's documented way).
            self._engine.dispose(close=False)
            self._engine_pid = os.getpid()
        return self._engine

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection in a transaction; database failures become ``DatabaseError`` (503)."""
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except sa.exc.OperationalError as exc:
            current_app.logger.warning("database unavailable: %s", _first_line(exc))
            raise DatabaseError("the database is unavailable or too slow; try again") from None


def state() -> UrbanGis:
    """The urbangis state of the app handling the current request."""
    found: UrbanGis = current_app.extensions[EXTENSION]
    return found


def vendor_dir() -> Path:
    """Where the front-end libraries are served from (tests point it at an empty folder)."""
    return Path(current_app.config["URBANGIS_VENDOR_DIR"])


class OrjsonProvider(JSONProvider):
    """Flask's JSON through orjson: faster, and it speaks dates and decimals."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return orjson.dumps(obj, default=_to_json, option=orjson.OPT_NON_STR_KEYS).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return orjson.loads(s)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        return json_response(self._prepare_response_obj(args, kwargs))


def json_response(obj: Any, status: int = 200) -> Response:
    """A JSON answer serialised by orjson straight to bytes."""
    body = orjson.dumps(obj, default=_to_json, option=orjson.OPT_NON_STR_KEYS)
    return Response(body, status=status, mimetype="application/json")


def _to_json(value: Any) -> Any:
    """Values orjson does not know natively."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def create_app(settings: Settings | None = None) -> Flask:
    """Build the web app for ``settings`` (default: read from the environment)."""
    from webmap import (
        analysis_api,
        api,
        assets,
        auth,
        errors,
        extract,
        first_map,
        health,
        map_pages,
        ogc_features,
        permits_api,
        tiles,
        wfs,
        wms,
    )

    settings = settings or load_settings()
    app = Flask(
        __name__,
        static_folder=str(PACKAGE_DIR / "static"),
        template_folder=str(PACKAGE_DIR / "templates"),
    )
    app.json = OrjsonProvider(app)
    app.session_interface = CookieSessions()
    app.config.update(
        SECRET_KEY=settings.secret_key.get_secret_value(),
        URBANGIS_VENDOR_DIR=str(VENDOR_DIR),
    )
    app.extensions[EXTENSION] = UrbanGis(settings)
    errors.register(app)
    for module in (
        assets,
        health,
        first_map,
        auth,
        ogc_features,
        tiles,
        map_pages,
        extract,
        wfs,
        wms,
    ):
        app.register_blueprint(module.blueprint)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(analysis_api.blueprint)
    app.register_blueprint(permits_api.blueprint)
    policy = content_security_policy(settings.osm_tiles_url)
    secure = [(name.lower(), name, value) for name, value in secure_headers(policy).items()]
    app.after_request(lambda response: _secure(response, secure))
    # anonymous requests for cached tiles are answered before Flask (webmap.tiles)
    app.wsgi_app = tiles.CachedTiles(app, app.wsgi_app)  # type: ignore[method-assign]
    return app


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, opened without building the cookie signer when
    the request carries no session cookie: only staff logins have one, and building the
    signer was a measurable share of every API answer's and tile's time."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)


def secure_headers(policy: str) -> dict[str, str]:
    """Headers every answer carries: no MIME sniffing, no framing, scripts only from us."""
    return {
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        # OSM's tile policy asks for a Referer; send the origin only, never the full URL.
        "Referrer-Policy": "strict-origin-when-cross-origin",
    }


def _secure(response: Response, secure: list[tuple[str, str, str]]) -> Response:
    """Add the security headers the view did not set itself (one pass over the headers:
    ``setdefault`` per header scanned them once each)."""
    present = {name.lower() for name, _ in response.headers}
    for lowered, name, value in secure:
        if lowered not in present:
            response.headers.add(name, value)
    return response


def content_security_policy(tiles_url: str) -> str:
    """Scripts, styles and data only from this server; images also from the tile host."""
    images = ["'self'", "data:"]
    tile_source = tile_host(tiles_url)
    if tile_source:
        images.append(tile_source)
    directives = {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": " ".join(images),
        "connect-src": "'self'",
        "font-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def tile_host(tiles_url: str) -> str | None:
    """The CSP source of a tile URL template, e.g. ``https://*.tile.example.org``.

    Leading ``{s}``-style subdomain placeholders become the ``*.`` wildcard CSP allows;
    a relative URL is served by us and needs nothing beyond ``'self'``.
    """
    parts = urlsplit(tiles_url.strip())
    if not parts.scheme or not parts.netloc:
        return None
    host = re.sub(r"^(\{[^}]*\}\.)+", "*.", parts.netloc)
    if "{" in host or "}" in host:
        return None  # a placeholder CSP cannot express; tiles would be blocked, not the map
    return f"{parts.scheme}://{host}"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
