"""One place that turns errors into answers.

Lower layers raise ``gis_core.errors.UrbanGisError`` subclasses carrying the HTTP status
and OGC exception code; this handler renders them as JSON ``{"code", "description"}``
for programs and as a small HTML page for browsers. Werkzeug's own HTTP errors (an
unknown URL, a wrong method, an unexpected failure turned into a 500) get the same
shape, so clients never have to parse two error formats.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, render_template, request
from werkzeug.exceptions import HTTPException

from gis_core.errors import UrbanGisError
from webmap.app import json_response

# OGC exception codes for the HTTP errors Werkzeug raises itself.
_HTTP_CODES = {
    400: "InvalidParameterValue",
    404: "NotFound",
    405: "OperationNotSupported",
    406: "InvalidParameterValue",
}


def error_body(code: str, description: str, locator: str | None = None) -> dict[str, str]:
    """The JSON body of an error; ``locator`` names the parameter at fault when known."""
    body = {"code": code, "description": description}
    if locator:
        body["locator"] = locator
    return body


def wants_html(accept_html: float, accept_json: float) -> bool:
    """A browser navigating to the URL (it prefers HTML); programs get JSON."""
    return accept_html > accept_json


def register(app: Flask) -> None:
    """Install the handlers on ``app``."""
    app.register_error_handler(UrbanGisError, _handle_platform_error)
    app.register_error_handler(HTTPException, _handle_http_error)


def _handle_platform_error(exc: UrbanGisError) -> Response:
    if exc.http_status >= 500:
        # The message is meant for users; keep it in the log for operators too.
        current_app.logger.warning("%s: %s", type(exc).__name__, exc.message)
    return _render(exc.http_status, error_body(exc.ogc_code, exc.message, exc.locator))


def _handle_http_error(exc: HTTPException) -> Response | HTTPException:
    status = exc.code or 500
    if status < 400:
        return exc
    code = _HTTP_CODES.get(status, "NoApplicableCode")
    description = exc.description or exc.name
    response = _render(status, error_body(code, description))
    if status == 405 and exc.get_response().headers.get("Allow"):
        response.headers["Allow"] = exc.get_response().headers["Allow"]
    return response


def _render(status: int, body: dict[str, Any]) -> Response:
    accept = request.accept_mimetypes
    if wants_html(accept["text/html"], accept["application/json"]):
        html = render_template("error.html", status=status, **body)
        return Response(html, status=status, mimetype="text/html")
    return json_response(body, status)
