"""Clerks' location validation of a proposed act (roles clerk and admin)."""

from __future__ import annotations

from flask import Response

from permits.validation import parse_proposed_act, validate_location
from webmap.api.base import (
    api_connection,
    blueprint,
    json_body,
    limits,
    location_context,
    require_json_content,
    require_role,
)
from webmap.app import json_response

STAFF = ("clerk", "admin")


@blueprint.post("/validations/location")
def validate() -> Response:
    require_role(*STAFF)
    require_json_content()
    act = parse_proposed_act(json_body(), limits())
    with api_connection(locator="footprint" if act.footprint is not None else "body") as conn:
        report = validate_location(conn, act, location_context())
    return json_response(report)
