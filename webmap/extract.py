"""``/parcels/{n}/extract.pdf``: the printable urbanism information extract of one imobil.

The PDF is a public document built by ``permits.extract`` from the parcel status (the
same answer as ``GET /api/v1/parcels/{n}``) and the public layers, whatever the caller's
role, so a clerk printing it for a citizen hands over no personal data either. Its map
is drawn by the app's own WMS renderer, as the public role.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from permits.extract import extract_inputs, extract_picture, render_extract
from webmap import i18n
from webmap import wms as wms_view
from webmap.api.base import api_connection, location_context
from webmap.first_map import is_demo
from webmap.wfs import ows_service

blueprint = Blueprint("extract", __name__)


@blueprint.get("/parcels/<number>/extract.pdf")
def extract_pdf(number: str) -> Response:
    """The extract in Romanian (``?lang=en`` for English), as an attachment."""
    lang = i18n.choose_language()
    with api_connection(locator="cadastral_number") as conn:
        inputs = extract_inputs(conn, number, location_context())
        synthetic = is_demo(conn)
    service = ows_service(wms_view.PREFIX, "WMS")
    picture = extract_picture(service, wms_view.wms_state(), inputs)
    extract = render_extract(inputs, picture=picture, lang=lang, synthetic=synthetic)
    response = current_app.response_class(extract.pdf, mimetype="application/pdf")
    disposition = "inline" if request.args.get("inline") == "1" else "attachment"
    response.headers["Content-Disposition"] = f'{disposition}; filename="{extract.filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response
