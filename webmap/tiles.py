"""Vector tiles: ``/tiles/{layers}/{z}/{x}/{y}.mvt``, TileJSON and OGC API – Tiles.

A cached tile is answered without touching the database while the catalog's last
version check is recent; ``If-None-Match`` is answered from the version-derived ETag
without rendering. The ETag is weak: it names the data version, and two renderings of
one version may hold the same features in another order (a parallel plan). Anonymous
tiles may be cached by proxies; tiles of other roles are
``private``. An anonymous request for a tile already in the cache never reaches Flask:
``CachedTiles`` answers it in front of the app (see there).
"""

from __future__ import annotations

import enum
import re
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, request
from sqlalchemy.engine import Connection
from werkzeug.http import parse_etags, quote_etag

from gis_core.errors import DatabaseError, NotFound
from layers import tiles as mvt
from layers.catalog import LayerDefinition
from layers.roles import layer_for
from layers.tile_cache import TileKey
from webmap.app import EXTENSION, content_security_policy, json_response, secure_headers, state
from webmap.auth import API_KEY_HEADER, current_role
from webmap.ogc_features import EXTENSION as LAYERS_EXTENSION
from webmap.ogc_features import PREFIX, LayerServices, layer_services

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

MAX_AGE = 60
PUBLIC = "public"
Answer = tuple[str, list[tuple[str, str]], list[bytes]]  # status, headers, body


class Check(enum.Enum):
    """A request that goes through the app to check the layers' versions."""

    CHECK = "check"


CHECK = Check.CHECK
# The tile URL exactly as the ``tile`` route below matches it.
# Not sent with a 304, which has no body.
ENTITY_HEADERS = ("Content-Type", "Content-Length")
TILE_PATH = re.compile(r"/tiles/([^/]+)/(\d+)/(\d+)/(\d+)\.mvt")

blueprint = Blueprint("tiles", __name__)


def _versions(layers: tuple[LayerDefinition, ...]) -> str | None:
    catalog = layer_services().catalog
    found = [catalog.fresh_version(layer) for layer in layers]
    if any(v is None for v in found):
        return None
    return ".".join(v for v in found if v is not None)


def tile_response(names: str, z: int, x: int, y: int) -> Response:
    role = current_role()
    services = layer_services()
    layers = mvt.parse_layer_list(services.catalog, names, role)
    tile = mvt.parse_tile(z, x, y)
    layer_key = ",".join(layer.id for layer in layers)
    version = _versions(layers)
    data = None
    if version is not None:
        key = TileKey(role, layer_key, version, z, x, y)
        if request.if_none_match.contains_weak(key.etag()):
            return _not_modified(key, role)
        data = services.tiles.get(key)
    if data is None:
        with _reading() as conn:
            version = mvt.tile_version(conn, services.catalog, layers)
            key = TileKey(role, layer_key, version, z, x, y)
            if request.if_none_match.contains_weak(key.etag()):
                return _not_modified(key, role)
            data = services.tiles.get(key)
            if data is None:
                data = mvt.render_tile(conn, services.catalog, layers, role, tile)
                services.tiles.put(key, data)
    response = Response(data, status=200 if data else 204, mimetype=mvt.MVT)
    return _cache_headers(response, key, role)


@contextmanager
def _reading() -> Iterator[Connection]:
    """A connection in autocommit mode: a tile is one read statement per layer, so it
    needs no BEGIN and COMMIT round trips; database failures become a 503."""
    try:
        with state().engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")
    except sa.exc.OperationalError:
        raise DatabaseError("the database is unavailable or too slow; try again") from None


def _not_modified(key: TileKey, role: str) -> Response:
    return _cache_headers(Response(status=304), key, role)


def _cache_headers(response: Response, key: TileKey, role: str) -> Response:
    scope = "public" if role == PUBLIC else "private"
    response.set_etag(key.etag(), weak=True)
    response.headers["Cache-Control"] = f"{scope}, max-age={MAX_AGE}"
    response.headers["Vary"] = f"{API_KEY_HEADER}, Cookie"
    return response


class CachedTiles:
    """WSGI middleware: anonymous cache hits answered before Flask sees the request.

    A cache hit is a dictionary look-up, yet through Flask it also paid for a request
    context, URL routing, the session, every before- and after-request hook and a
    ``Response`` object: several times the cost of the look-up, and the only cost left
    once the tile is cached. Here the request is answered from the path alone when
    everything the full path would check is already known: no ``X-API-Key`` and no
    session cookie (the role is then ``public``), layers the public may see, a catalog
    version check that is still recent (``Catalog.fresh_version``) and the tile in the
    cache. Anything else (a miss, a bad address, another role) goes through the app
    unchanged, and the answer carries the same headers either way.

    When the version check falls due, one request of the process goes through the
    app, which checks; until it is done the others keep using the versions last seen
    fresh (for ``STALE_FOR`` seconds at most). Otherwise every request arriving during
    that one database round trip would also go through the app, each taking a pooled
    connection to check again: a stall of every worker once a second under load.
    """

    # Seconds a version seen fresh still serves while another request checks it.
    STALE_FOR = 5.0

    # Headers remembered per cached tile (its ETag is a hash): at most this many.
    REMEMBERED = 50_000

    def __init__(self, app: Flask, wrapped: WSGIApplication) -> None:
        self.app = app
        self.wrapped = wrapped
        self._fixed: list[tuple[str, str]] | None = None
        self._headers: dict[TileKey, tuple[str, list[tuple[str, str]]]] = {}
        self._seen: dict[str, tuple[str, float]] = {}  # layer -> version, when seen fresh
        self._checking = threading.Lock()  # held by the request checking the versions

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        answer = self._cached(environ)
        if answer is CHECK:
            try:  # the app's before-request hook checks the versions
                return self.wrapped(environ, start_response)
            finally:
                self._checking.release()
        if answer is None:
            return self.wrapped(environ, start_response)
        status, headers, body = answer
        start_response(status, headers)
        return body

    def _cached(self, environ: WSGIEnvironment) -> Answer | Check | None:
        method = environ.get("REQUEST_METHOD")
        if method != "GET" and method != "HEAD":
            return None
        found = TILE_PATH.fullmatch(environ.get("PATH_INFO", ""))
        if found is None or "HTTP_X_API_KEY" in environ:
            return None
        if self.app.config["SESSION_COOKIE_NAME"] in environ.get("HTTP_COOKIE", ""):
            return None  # maybe a staff login: the app resolves the role
        services = self.app.extensions.get(LAYERS_EXTENSION)
        if not isinstance(services, LayerServices):
            return None  # no request has built the catalog yet
        key = self._public_key(services, found.group(1), *map(int, found.group(2, 3, 4)))
        if key is None or key is CHECK:
            return key
        data = services.tiles.get(key, count_miss=False)
        if data is None:
            return None
        etag, headers = self._headers.get(key) or self._remember(key)
        wanted = environ.get("HTTP_IF_NONE_MATCH")
        if wanted and parse_etags(wanted).contains_weak(etag):
            return "304 NOT MODIFIED", [h for h in headers if h[0] not in ENTITY_HEADERS], []
        if not data:
            return "204 NO CONTENT", headers, []
        # The length is the bytes' own: two workers may have built the same tile with its
        # features in another order (a parallel plan), and the later copy replaced the first.
        sized = [headers[0], ("Content-Length", str(len(data))), *headers[1:]]
        return "200 OK", sized, [] if method == "HEAD" else [data]

    def _remember(self, key: TileKey) -> tuple[str, list[tuple[str, str]]]:
        """The tile's ETag and answer headers but its length, kept for its next hits."""
        etag = key.etag()
        headers = [("Content-Type", mvt.MVT), ("ETag", quote_etag(etag, weak=True))]
        if len(self._headers) >= self.REMEMBERED:
            self._headers.clear()
        self._headers[key] = found = (etag, [*headers, *self._fixed_headers()])
        return found

    def _fixed_headers(self) -> list[tuple[str, str]]:
        """The caching headers of public tiles and the headers every answer carries."""
        if self._fixed is None:
            policy = content_security_policy(self.app.extensions[EXTENSION].settings.osm_tiles_url)
            self._fixed = [
                ("Cache-Control", f"public, max-age={MAX_AGE}"),
                ("Vary", f"{API_KEY_HEADER}, Cookie"),
                *secure_headers(policy).items(),
            ]
        return self._fixed

    def _public_key(
        self, services: LayerServices, names: str, z: int, x: int, y: int
    ) -> TileKey | Check | None:
        """The cache key of a public tile, if its layers are public and their versions
        known; ``CHECK`` when this request is to go and check them."""
        versions: list[str] = []
        for layer_id in names.split(","):
            try:
                layer = layer_for(services.catalog, layer_id, PUBLIC)
            except NotFound:
                return None  # also a name with spaces: the app strips and checks it
            version = services.catalog.fresh_version(layer)
            if version is not None:
                self._seen[layer.id] = (version, time.monotonic())
            elif self._checking.acquire(blocking=False):
                return CHECK
            else:  # another request is checking: the version seen last, if recent
                seen = self._seen.get(layer.id)
                if seen is None or time.monotonic() - seen[1] > self.STALE_FOR:
                    return None
                version = seen[0]
            versions.append(version)
        return TileKey(PUBLIC, names, ".".join(versions), z, x, y)


@blueprint.get("/tiles/<names>/<int:z>/<int:x>/<int:y>.mvt")
def tile(names: str, z: int, x: int, y: int) -> Response:
    """One tile of one layer, or of several: ``/tiles/zones,parcels/15/18000/11500.mvt``."""
    return tile_response(names, z, x, y)


@blueprint.get("/tiles/<names>.json")
def tilejson(names: str) -> Response:
    role = current_role()
    services = layer_services()
    layers = mvt.parse_layer_list(services.catalog, names, role)
    with state().connect() as conn:
        extents = [services.catalog.state(conn, layer).extent for layer in layers]
    url = request.url_root.rstrip("/") + f"/tiles/{names}/{{z}}/{{x}}/{{y}}.mvt"
    return json_response(mvt.tilejson(layers, role, url, _union(extents)))


def _union(
    extents: list[tuple[float, float, float, float] | None],
) -> tuple[float, float, float, float] | None:
    known = [e for e in extents if e is not None]
    if not known:
        return None
    return (
        min(e[0] for e in known),
        min(e[1] for e in known),
        max(e[2] for e in known),
        max(e[3] for e in known),
    )


@blueprint.get(f"{PREFIX}/collections/<collection_id>/tiles")
def tilesets(collection_id: str) -> Response:
    role = current_role()
    layer = mvt.parse_layer_list(layer_services().catalog, collection_id, role)[0]
    href = (
        request.url_root.rstrip("/")
        + f"{PREFIX}/collections/{layer.id}/tiles/{mvt.TILE_MATRIX_SET}"
    )
    return json_response(
        {
            "tilesets": [
                {
                    "title": f"{layer.title} (vector tiles)",
                    "dataType": "vector",
                    "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
                    "tileMatrixSetURI": mvt.TILE_MATRIX_SET_URI,
                    "links": [{"href": href, "rel": "self", "type": "application/json"}],
                }
            ]
        }
    )


@blueprint.get(f"{PREFIX}/collections/<collection_id>/tiles/{mvt.TILE_MATRIX_SET}")
def tileset(collection_id: str) -> Response:
    role = current_role()
    services = layer_services()
    layer = mvt.parse_layer_list(services.catalog, collection_id, role)[0]
    with state().connect() as conn:
        extent = services.catalog.state(conn, layer).extent
    url = (
        request.url_root.rstrip("/")
        + f"{PREFIX}/collections/{layer.id}/tiles/{mvt.TILE_MATRIX_SET}"
        + "/{tileMatrix}/{tileRow}/{tileCol}"
    )
    return json_response(mvt.tileset_document(layer, role, url, extent))


@blueprint.get(
    f"{PREFIX}/collections/<collection_id>/tiles/{mvt.TILE_MATRIX_SET}/<int:z>/<int:row>/<int:col>"
)
def ogc_tile(collection_id: str, z: int, row: int, col: int) -> Response:
    """OGC API – Tiles order: tileMatrix / tileRow (y) / tileCol (x)."""
    return tile_response(collection_id, z, col, row)


@blueprint.get("/ogc/tileMatrixSets")
def tile_matrix_sets() -> Response:
    href = request.url_root.rstrip("/") + f"/ogc/tileMatrixSets/{mvt.TILE_MATRIX_SET}"
    return json_response(
        {
            "tileMatrixSets": [
                {
                    "id": mvt.TILE_MATRIX_SET,
                    "uri": mvt.TILE_MATRIX_SET_URI,
                    "links": [{"href": href, "rel": "self", "type": "application/json"}],
                }
            ]
        }
    )


@blueprint.get(f"/ogc/tileMatrixSets/{mvt.TILE_MATRIX_SET}")
def web_mercator_quad() -> Response:
    return json_response(mvt.tile_matrix_set())
