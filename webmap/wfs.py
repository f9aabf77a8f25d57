"""``/ogc/wfs``: WFS 2.0.0 and 1.1.0 over the layer catalog.

A thin view: the protocol lives in ``layers.wfs``; this module resolves the caller's
role, builds the service description from the settings and streams the answer. GET
carries KVP; POST carries the XML encoding or KVP as a form.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from flask import Blueprint, Response, current_app, request

from layers import wfs, wfs_xml
from layers.features import Answer
from layers.wfs_ows import OwsService, ServiceInfo
from webmap.app import state
from webmap.auth import current_role
from webmap.ogc_features import layer_services

PREFIX = "/ogc/wfs"
DEFAULT_MAX_COUNT = 10_000

blueprint = Blueprint("wfs", __name__, url_prefix=PREFIX)


def service_info(kind: str) -> ServiceInfo:
    """Service metadata: the municipality from the settings, the rest from app config."""
    settings = state().settings
    config = current_app.config
    return ServiceInfo(
        title=f"{settings.uat_name}: urbangis {kind}",
        abstract=(
            f"Cadastre, urban plans (PUG/PUZ, UTR zones) and restrictions of "
            f"{settings.uat_name} (SIRUTA {settings.uat_siruta})."
        ),
        keywords=("cadastru", "urbanism", "PUG", "UTR", "INSPIRE", settings.uat_name),
        provider=str(config.get("URBANGIS_OWS_PROVIDER", f"Primăria {settings.uat_name}")),
        provider_site=str(config.get("URBANGIS_OWS_PROVIDER_SITE", request.url_root)),
        contact_email=str(config.get("URBANGIS_OWS_CONTACT_EMAIL", "")),
        fees=str(config.get("URBANGIS_OWS_FEES", "none")),
        access_constraints=str(config.get("URBANGIS_OWS_ACCESS_CONSTRAINTS", "none")),
    )


def ows_service(prefix: str, kind: str) -> OwsService:
    """The service as seen from this request's host (capability URLs follow the client)."""
    return OwsService(
        engine=state().engine,
        catalog=layer_services().catalog,
        url=request.url_root.rstrip("/") + prefix,
        info=service_info(kind),
        max_count=int(current_app.config.get("URBANGIS_WFS_MAX_COUNT", DEFAULT_MAX_COUNT)),
    )


@blueprint.get("")
@blueprint.get("/")
def endpoint() -> Response:
    answer = wfs.handle(
        ows_service(PREFIX, "WFS"), current_role(), list(request.args.items(multi=True))
    )
    return _response(answer)


@blueprint.post("")
@blueprint.post("/")
def post_endpoint() -> Response:
    """The XML encoding (a WFS request document as the body), or KVP parameters sent
    as a form; the body is read up to the XML encoding's size limit only."""
    body = request.stream.read(wfs_xml.MAX_REQUEST_BYTES + 1)
    service = ows_service(PREFIX, "WFS")
    if body.lstrip().startswith(b"<"):
        return _response(wfs.handle_xml(service, current_role(), body))
    try:
        form = parse_qsl(body.decode(), keep_blank_values=True)
    except UnicodeDecodeError:
        form = []
    return _response(wfs.handle(service, current_role(), [*request.args.items(multi=True), *form]))


def _response(answer: Answer) -> Response:
    response = Response(answer.content(), status=answer.status, content_type=answer.media_type)
    for name, value in answer.headers.items():
        response.headers[name] = value
    return response
