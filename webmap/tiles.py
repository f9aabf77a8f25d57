"""Vector tiles: ``/tiles/{layers}/{z}/{x}/{y}.mvt``, TileJSON and OGC API – Tiles.

A cached tile is answered without touching the database while the catalog's last
version check is recent; ``If-None-Match`` is answered from the version-derived ETag
without rendering. Anonymous tiles may be cached by proxies; tiles of other roles are
``private``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from flask import Blueprint, Response, request
from sqlalchemy.engine import Connection

from gis_core.errors import DatabaseError
from layers import tiles as mvt
from layers.catalog import LayerDefinition
from layers.tile_cache import TileKey
from webmap.app import json_response, state
from webmap.auth import current_role
from webmap.ogc_features import PREFIX, layer_services

MAX_AGE = 60

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
        if request.if_none_match.contains(key.etag()):
            return _not_modified(key, role)
        data = services.tiles.get(key)
    if data is None:
        with _reading() as conn:
            version = mvt.tile_version(conn, services.catalog, layers)
            key = TileKey(role, layer_key, version, z, x, y)
            if request.if_none_match.contains(key.etag()):
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
    scope = "public" if role == "public" else "private"
    response.set_etag(key.etag())
    response.headers["Cache-Control"] = f"{scope}, max-age={MAX_AGE}"
    response.headers["Vary"] = "X-API-Key, Cookie"
    return response


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
