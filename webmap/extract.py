"""``/parcels/{n}/extract.pdf``: the printable urbanism information extract of one imobil.

The PDF is a public document built by ``permits.extract`` from the parcel status (the
same answer as ``GET /api/v1/parcels/{n}``) and the public layers, whatever the caller's
role, so a clerk printing it for a citizen hands over no personal data either.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from permits.extract import extract_inputs, render_extract
from webmap import i18n
from webmap.api.base import api_connection, location_context
from webmap.first_map import is_demo

blueprint = Blueprint("extract", __name__)


@blueprint.get("/parcels/<number>/extract.pdf")
def extract_pdf(number: str) -> Response:
    """The extract in Romanian (``?lang=en`` for English), as an attachment."""
    lang = i18n.choose_language()
    with api_connection(locator="cadastral_number") as conn:
        inputs = extract_inputs(conn, number, location_context())
        synthetic = is_demo(conn)
    extract = render_extract(inputs, lang=lang, synthetic=synthetic)
    response = current_app.response_class(extract.pdf, mimetype="application/pdf")
    disposition = "inline" if request.args.get("inline") == "1" else "attachment"
    response.headers["Content-Disposition"] = f'{disposition}; filename="{extract.filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response
