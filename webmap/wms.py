"""``/ogc/wms``: WMS 1.3.0 and 1.1.1 over the layer catalog, rendered with Mapnik.

A thin view: the protocol lives in ``layers.wms``; the Mapnik renderer is created once
per process (per app) and kept in the app's extensions; HTML feature info is rendered
from ``templates/wms``.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, Response, current_app, render_template, request

from layers import wms
from layers.render import Renderer
from webmap.app import state
from webmap.auth import current_role
from webmap.wfs import ows_service

PREFIX = "/ogc/wms"
EXTENSION = "urbangis_wms"

blueprint = Blueprint("wms", __name__, url_prefix=PREFIX)


def wms_state(app: Flask | None = None) -> wms.WmsState:
    """The app's renderer and raster list, built on first use in this process."""
    app = app or current_app
    found = app.extensions.get(EXTENSION)
    if isinstance(found, wms.WmsState):
        return found
    settings = state().settings
    renderer = Renderer(
        state().engine.url,
        settings.storage_srid,
        settings.pool_size,
        settings.statement_timeout_ms,
    )
    created = wms.WmsState(renderer, Path(settings.data_dir))
    app.extensions[EXTENSION] = created
    return created


@blueprint.get("")
@blueprint.get("/")
def endpoint() -> Response:
    answer = wms.handle(
        ows_service(PREFIX, "WMS"),
        wms_state(),
        current_role(),
        list(request.args.items(multi=True)),
    )
    if answer.media_type == "text/html" and answer.document is not None:
        html = render_template("wms/feature_info.html", doc=answer.document)
        return Response(html, status=answer.status, mimetype="text/html")
    response = Response(answer.content(), status=answer.status, content_type=answer.media_type)
    for name, value in answer.headers.items():
        response.headers[name] = value
    return response
