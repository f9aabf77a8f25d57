"""The OpenAPI document and its interactive page (Swagger UI from our own static files)."""

from __future__ import annotations

from flask import Response, render_template, request

from webmap.api.base import api_base, blueprint, settings
from webmap.api.openapi import build_document
from webmap.app import json_response, vendor_dir

DOCS_ASSETS = ("swagger-ui/swagger-ui-bundle.js", "swagger-ui/swagger-ui.css")


@blueprint.get("/openapi.json")
def openapi_document() -> Response:
    response = json_response(build_document(settings(), request.host_url))
    response.mimetype = "application/vnd.oai.openapi+json"
    return response


@blueprint.get("/docs")
def docs_page() -> Response:
    """Swagger UI when installed; otherwise a page that links the document."""
    assets = all((vendor_dir() / name).is_file() for name in DOCS_ASSETS)
    html = render_template(
        "api/docs.html",
        assets=assets,
        spec_url=f"{api_base()}/openapi.json",
        uat_name=settings().uat_name,
    )
    return Response(html, mimetype="text/html")
