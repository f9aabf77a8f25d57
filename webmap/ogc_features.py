"""``/ogc/features``: OGC API – Features over the layer catalog.

Thin views: the protocol lives in ``layers.features``; this module picks the encoding
(``f=json|html`` or the Accept header), resolves the caller's role, streams GeoJSON and
renders the HTML pages from ``templates/ogc``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from flask import Blueprint, Flask, Response, current_app, render_template, request

from gis_core.errors import InvalidParameter
from layers import features
from layers.catalog import Catalog, LayerDefinition
from layers.tile_cache import TileCache
from webmap.app import state
from webmap.auth import current_role

EXTENSION = "urbangis_layers"
PREFIX = "/ogc/features"
# Features shown on one HTML page at most (the JSON pages go up to the service maximum).
HTML_LIMIT = 500

blueprint = Blueprint("ogc_features", __name__, url_prefix=PREFIX)


@dataclass
class LayerServices:
    """Per-app, per-process state: the catalog and the tile cache, built once."""

    catalog: Catalog
    tiles: TileCache


def layer_services(app: Flask | None = None) -> LayerServices:
    """The app's catalog and tile cache; extra layers come from ``URBANGIS_EXTRA_LAYERS``,
    the disk cache folder and the memory budget from ``URBANGIS_TILE_CACHE_DIR`` and
    ``URBANGIS_TILE_CACHE_BYTES`` (Flask config or environment)."""
    app = app or current_app
    found = app.extensions.get(EXTENSION)
    if isinstance(found, LayerServices):
        return found
    settings = state().settings
    extra: list[LayerDefinition] = list(app.config.get("URBANGIS_EXTRA_LAYERS", ()))
    # Flask config first (tests, embedding apps), then the environment (deployments)
    disk = app.config.get("URBANGIS_TILE_CACHE_DIR") or os.environ.get("URBANGIS_TILE_CACHE_DIR")
    cache_bytes = int(
        app.config.get(
            "URBANGIS_TILE_CACHE_BYTES",
            os.environ.get("URBANGIS_TILE_CACHE_BYTES", 64 * 1024 * 1024),
        )
    )
    services = LayerServices(
        catalog=Catalog(settings.storage_srid, extra),
        tiles=TileCache(max_bytes=cache_bytes, disk_dir=Path(disk) if disk else None),
    )
    app.extensions[EXTENSION] = services
    return services


def service() -> features.Service:
    """The OGC service as seen from this request's host (links follow the client's URL)."""
    settings = state().settings
    return features.Service(
        engine=state().engine,
        catalog=layer_services().catalog,
        base_url=request.url_root.rstrip("/") + PREFIX,
        title=f"{settings.uat_name}: urbangis OGC API – Features",
        description=(
            f"Cadastre, urban plans and restrictions of {settings.uat_name} "
            "as OGC API – Features (Parts 1–3)."
        ),
    )


def wants_html() -> bool:
    """``f=html`` or ``f=json`` decide; otherwise a browser's Accept header does."""
    chosen = request.args.getlist("f")
    if chosen:
        if chosen[0] not in ("json", "html"):
            raise InvalidParameter(
                f"unsupported format f={chosen[0]!r}: use json or html", locator="f"
            )
        return chosen[0] == "html"
    accept = request.accept_mimetypes
    return accept["text/html"] > max(accept["application/json"], accept["application/geo+json"])


def _params() -> list[tuple[str, str]]:
    return list(request.args.items(multi=True))


def _respond(answer: features.Answer, template: str, **context: Any) -> Response:
    if wants_html():
        document = answer.document
        if document is None:
            document = orjson.loads(b"".join(answer.content()))
        html = render_template(template, doc=document, **context)
        return Response(html, status=answer.status, mimetype="text/html")
    response = Response(answer.content(), status=answer.status, mimetype=answer.media_type)
    for name, value in answer.headers.items():
        response.headers[name] = value
    return response


def _view(endpoint: Callable[..., features.Answer], template: str, *args: str) -> Response:
    return _respond(endpoint(service(), current_role(), *args, _params()), template)


@blueprint.get("")
@blueprint.get("/")
def landing() -> Response:
    return _view(features.landing, "ogc/landing.html")


@blueprint.get("/conformance")
def conformance() -> Response:
    return _view(features.conformance, "ogc/conformance.html")


@blueprint.get("/api")
def api() -> Response:
    return _view(features.api_document, "ogc/api.html")


@blueprint.get("/collections")
def collections() -> Response:
    return _view(features.collections, "ogc/collections.html")


@blueprint.get("/collections/<collection_id>")
def collection(collection_id: str) -> Response:
    return _view(features.collection, "ogc/collection.html", collection_id)


@blueprint.get("/collections/<collection_id>/queryables")
def queryables(collection_id: str) -> Response:
    return _view(features.queryables, "ogc/queryables.html", collection_id)


@blueprint.get("/collections/<collection_id>/items")
def items(collection_id: str) -> Response:
    params = _params()
    if wants_html():
        params = [(k, v) for k, v in params if k != "limit"]
        params.append(("limit", str(_html_limit(request.args.get("limit")))))
    answer = features.items(service(), current_role(), collection_id, params)
    return _respond(answer, "ogc/items.html", collection_id=collection_id)


def _html_limit(text: str | None) -> int:
    """Browsers get at most ``HTML_LIMIT`` rows per page (a table, not a download)."""
    if not text:
        return 50
    try:
        return max(1, min(int(text), HTML_LIMIT))
    except ValueError:
        raise InvalidParameter(f"limit must be an integer, got {text!r}", locator="limit") from None


@blueprint.get("/collections/<collection_id>/items/<feature_id>")
def item(collection_id: str, feature_id: str) -> Response:
    answer = features.item(service(), current_role(), collection_id, feature_id, _params())
    return _respond(answer, "ogc/item.html", collection_id=collection_id)
