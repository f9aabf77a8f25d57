"""The OpenAPI 3.1 document of ``/api/v1``, assembled from sections.

Each section is a function returning ``{"paths": ..., "schemas": ...}``; ``SECTIONS``
lists them, so another module's endpoints (the clerks' acts) join the document by
adding one function to that tuple. Limits in the schemas come from the settings, so the
document tells integrators exactly what the server accepts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gis_core.settings import Settings
from permits.location_request import GEOMETRY_TYPES, MAX_TEXT, MAX_VERTICES

Section = Callable[[Settings], dict[str, Any]]
JSON = "application/json"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {JSON: {"schema": schema}}}


def error_responses(*statuses: int) -> dict[str, Any]:
    """The error answers an operation may give, all with the ``Error`` body."""
    texts = {
        400: "Malformed request; `locator` names the field or parameter",
        401: "Unknown, malformed or revoked API key",
        403: "The caller's role may not use this endpoint",
        404: "Not found",
        422: "Well-formed but unusable input (outside the UAT, invalid geometry, ...)",
        429: "Request budget used up; see Retry-After",
        503: "The database is unavailable or the answer took too long",
    }
    return {
        str(status): {"description": texts[status], **json_content(ref("Error"))}
        for status in (*statuses, 401, 429, 503)
    }


def _query(name: str, schema: dict[str, Any], text: str, required: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": text,
    }


AS_OF_PARAMETER = _query(
    "as_of",
    {"type": "string", "format": "date"},
    "The date the answer must hold for (default today)",
)


def location_section(settings: Settings) -> dict[str, Any]:
    """The portal's endpoints."""
    answer = {"200": {"description": "The status", **json_content(ref("LocationAnswer"))}}
    paths = {
        "/api/v1/location-check": {
            "post": {
                "operationId": "locationCheck",
                "summary": "Everything about a location in one call",
                "description": (
                    "Send cadastral numbers, a GeoJSON Point/Polygon or an address. The "
                    "answer lists the parcels found and not found, whether they are "
                    "contiguous, inside the UAT and the intravilan, the zones and rules "
                    "with the share of the area in each, restrictions, public acts, a "
                    "verdict (ok, attention, blocked) with reasons, provenance, a link to "
                    "the web map and the disclaimer."
                ),
                "requestBody": {"required": True, **json_content(ref("LocationCheckRequest"))},
                "responses": {**answer, **error_responses(400, 422)},
            }
        },
        "/api/v1/parcels/{cadastral_number}": {
            "get": {
                "operationId": "parcelStatus",
                "summary": "The status of one parcel (imobil)",
                "parameters": [
                    {
                        "name": "cadastral_number",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 64},
                    },
                    AS_OF_PARAMETER,
                    _query(
                        "include_geometry",
                        {"type": "boolean"},
                        "Add the parcel outline (GeoJSON, EPSG:4326)",
                    ),
                ],
                "responses": {**answer, **error_responses(400, 404)},
            }
        },
        "/api/v1/parcels": {
            "get": {
                "operationId": "parcelsAtPoint",
                "summary": "The parcel at a point: lon/lat, or x/y with crs",
                "parameters": [
                    _query("lon", {"type": "number", "minimum": -180, "maximum": 180}, "Longitude"),
                    _query("lat", {"type": "number", "minimum": -90, "maximum": 90}, "Latitude"),
                    _query("x", {"type": "number"}, "Easting in crs"),
                    _query("y", {"type": "number"}, "Northing in crs"),
                    _query(
                        "crs",
                        {"type": "string"},
                        f"CRS of x/y (default EPSG:{settings.storage_srid})",
                    ),
                    AS_OF_PARAMETER,
                ],
                "responses": {
                    "200": {"description": "Parcels here", **json_content(ref("Identified"))},
                    **error_responses(400, 422),
                },
            }
        },
        "/api/v1/addresses": {
            "get": {
                "operationId": "searchAddresses",
                "summary": "Address search for autocompletion (diacritic-insensitive)",
                "parameters": [
                    _query("q", {"type": "string", "minLength": 1, "maxLength": 200}, "Text", True),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 50}, "At most"),
                ],
                "responses": {
                    "200": {"description": "Matches", **json_content(ref("AddressList"))},
                    **error_responses(400),
                },
            }
        },
    }
    return {"paths": paths, "schemas": _location_schemas(settings)}


def _location_schemas(settings: Settings) -> dict[str, Any]:
    geometry = {
        "type": "object",
        "required": ["type", "coordinates"],
        "properties": {
            "type": {"enum": list(GEOMETRY_TYPES)},
            "coordinates": {"type": "array"},
        },
        "description": (
            "GeoJSON Point, Polygon or MultiPolygon, coordinates in x/y order (lon, lat or "
            f"easting, northing); at most {MAX_VERTICES} vertices and "
            f"{settings.api_max_area_m2:,.0f} m²"
        ),
        "examples": [{"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}],
    }
    common = {
        "as_of": {"type": "string", "format": "date"},
        "purpose": {"type": "string", "maxLength": MAX_TEXT},
        "include_geometry": {"type": "boolean"},
    }
    crs_names = ["EPSG:4326", "CRS84", "EPSG:4258", "EPSG:3844", f"EPSG:{settings.storage_srid}"]
    nullable_number = {"type": ["number", "null"]}
    return {
        "Error": {
            "type": "object",
            "required": ["code", "description"],
            "properties": {
                "code": {"type": "string"},
                "description": {"type": "string"},
                "locator": {"type": "string"},
            },
        },
        "LocationCheckRequest": {
            "oneOf": [
                {
                    "type": "object",
                    "required": ["cadastral_numbers"],
                    "additionalProperties": False,
                    "properties": {
                        "cadastral_numbers": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": settings.api_max_numbers,
                            "items": {"type": "string", "minLength": 1, "maxLength": 64},
                        },
                        **common,
                    },
                },
                {
                    "type": "object",
                    "required": ["geometry"],
                    "additionalProperties": False,
                    "properties": {
                        "geometry": geometry,
                        "crs": {"type": "string", "examples": sorted(set(crs_names))},
                        **common,
                    },
                },
                {
                    "type": "object",
                    "required": ["address"],
                    "additionalProperties": False,
                    "properties": {
                        "address": {"type": "string", "minLength": 3, "maxLength": MAX_TEXT},
                        **common,
                    },
                },
            ],
            "examples": [{"cadastral_numbers": ["123456"], "purpose": "construire locuință"}],
        },
        "Parcel": {
            "type": "object",
            "required": ["cadastral_number"],
            "properties": {
                "cadastral_number": {"type": "string"},
                "land_book_number": {"type": ["string", "null"]},
                "measured_area": nullable_number,
                "legal_area": nullable_number,
                "use_category": {"type": ["string", "null"]},
                "intravilan": {"type": ["boolean", "null"]},
                "address": {"type": ["string", "null"]},
                "geometry": {"type": "object"},
            },
        },
        "Zone": {
            "type": "object",
            "required": ["utr_code", "plan", "rules", "share", "applies"],
            "properties": {
                "utr_code": {"type": "string"},
                "name": {"type": ["string", "null"]},
                "function": {"type": ["string", "null"]},
                "plan": {"type": "object"},
                "rules": {"type": "object"},
                "area": nullable_number,
                "share": nullable_number,
                "overlap_share": nullable_number,
                "overridden_by": {"type": ["array", "null"], "items": {"type": "string"}},
                "applies": {"type": "boolean"},
                "marginal": {"type": "boolean"},
                "purpose_use": {"type": "object"},
            },
        },
        "Restriction": {
            "type": "object",
            "required": ["kind", "name", "intersects", "distance"],
            "properties": {
                "kind": {"type": "string"},
                "name": {"type": "string"},
                "legal_source": {"type": ["string", "null"]},
                "description": {"type": ["string", "null"]},
                "intersects": {"type": "boolean"},
                "area": nullable_number,
                "distance": {"type": "number"},
            },
        },
        "Reason": {
            "type": "object",
            "required": ["code", "severity", "message"],
            "properties": {
                "code": {"type": "string"},
                "severity": {"enum": ["blocked", "attention", "info"]},
                "message": {"type": "string"},
            },
        },
        "Inside": {
            "type": "object",
            "required": ["inside", "share"],
            "properties": {
                "inside": {"enum": ["inside", "partly", "outside", "unknown"]},
                "share": nullable_number,
            },
        },
        "LocationAnswer": {
            "type": "object",
            "required": [
                "valid_for",
                "uat",
                "parcels",
                "not_found",
                "intravilan",
                "zones",
                "restrictions",
                "acts",
                "verdict",
                "reasons",
                "provenance",
                "map_url",
                "disclaimer",
            ],
            "properties": {
                "query": {"type": "object"},
                "valid_for": {"type": "string", "format": "date"},
                "uat": {"type": "object"},
                "parcels": {"type": "array", "items": ref("Parcel")},
                "not_found": {"type": "array", "items": {"type": "object"}},
                "contiguous": {"type": ["boolean", "null"]},
                "area_m2": nullable_number,
                "centroid": {"type": ["object", "null"]},
                "intravilan": ref("Inside"),
                "zones": {"type": "array", "items": ref("Zone")},
                "restrictions": {"type": "array", "items": ref("Restriction")},
                "acts": {"type": "array", "items": {"type": "object"}},
                "verdict": {"enum": ["ok", "attention", "blocked"]},
                "reasons": {"type": "array", "items": ref("Reason")},
                "provenance": {"type": "object"},
                "map_url": {"type": "string"},
                "disclaimer": {"type": "string"},
            },
        },
        "Identified": {
            "type": "object",
            "required": ["point", "valid_for", "parcels"],
            "properties": {
                "point": {"type": "object"},
                "valid_for": {"type": "string", "format": "date"},
                "parcels": {"type": "array", "items": ref("Parcel")},
            },
        },
        "AddressList": {
            "type": "object",
            "required": ["query", "addresses"],
            "properties": {
                "query": {"type": "string"},
                "addresses": {"type": "array", "items": {"type": "object"}},
            },
        },
    }


def validation_section(settings: Settings) -> dict[str, Any]:
    """The clerks' location validation of a proposed act."""
    return {
        "paths": {
            "/api/v1/validations/location": {
                "post": {
                    "operationId": "validateLocation",
                    "summary": "Clerks: check a proposed act against the rules (pass/warning/fail)",
                    "security": [{"ApiKey": []}, {"StaffSession": []}],
                    "requestBody": {"required": True, **json_content(ref("ValidationRequest"))},
                    "responses": {
                        "200": {
                            "description": "One result per rule",
                            **json_content(ref("ValidationReport")),
                        },
                        **error_responses(400, 403, 422),
                    },
                }
            }
        },
        "schemas": {
            "ValidationRequest": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "kind": {"enum": ["CU", "AC", "AD"]},
                    "cadastral_numbers": {
                        "type": "array",
                        "items": {"type": "string"},
                        "maxItems": settings.api_max_numbers,
                    },
                    "footprint": {"type": "object", "description": "GeoJSON Polygon"},
                    "crs": {"type": "string"},
                    "on_date": {"type": "string", "format": "date"},
                    "intended_use": {"type": "string", "maxLength": MAX_TEXT},
                    "proposed": {
                        "type": "object",
                        "properties": {
                            "built_area_m2": {"type": "number", "minimum": 0},
                            "gross_floor_area_m2": {"type": "number", "minimum": 0},
                            "height_m": {"type": "number", "minimum": 0},
                            "levels": {"type": "integer", "minimum": 0},
                            "demolished_built_area_m2": {"type": "number", "minimum": 0},
                            "demolished_floor_area_m2": {"type": "number", "minimum": 0},
                        },
                    },
                },
            },
            "ValidationReport": {
                "type": "object",
                "required": ["outcome", "checks"],
                "properties": {
                    "outcome": {"enum": ["pass", "warning", "fail"]},
                    "checks": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["rule", "result", "reason"],
                            "properties": {
                                "rule": {"type": "string"},
                                "result": {"enum": ["pass", "warning", "fail"]},
                                "reason": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
    }


# The document's sections, in order; add a function here to publish more endpoints.
SECTIONS: tuple[Section, ...] = (location_section, validation_section)


def build_document(settings: Settings, server_url: str) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for section in SECTIONS:
        part = section(settings)
        paths.update(part["paths"])
        schemas.update(part.get("schemas", {}))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"urbangis API – {settings.uat_name}",
            "version": "1.0.0",
            "description": (
                "Location check and parcel status for the e-services portal, address "
                "search, clerk validations, the clerks' register of certificates and "
                "permits, zone analysis for planners and the spatial indicators. Public "
                "callers get public fields only; machine clients send an API key in "
                "X-API-Key, staff in the browser their session. " + settings.disclaimer
            ),
            "license": {"name": "AGPL-3.0-or-later", "identifier": "AGPL-3.0-or-later"},
        },
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "StaffSession": {"type": "apiKey", "in": "cookie", "name": "session"},
            },
        },
        "security": [{}, {"ApiKey": []}],
    }


# -- the clerks' acts (``webmap.permits_api``) --------------------------------------------
ACT_KINDS = ["CU", "AC", "AD"]
ACT_STATUSES = ["requested", "issued", "extended", "expired", "cancelled", "completed"]
ACT_SECURITY: list[dict[str, list[str]]] = [{"ApiKey": []}, {"StaffSession": []}]
_ACT_ERRORS = {
    400: "Malformed request: the body is not a JSON object, `version` is missing or not a "
    "number, or a query parameter is out of range; `locator` names it",
    401: "Not signed in as staff and no API key sent, or the API key is unknown, malformed "
    "or revoked",
    403: "The caller's role is not clerk or admin, or a signed-in browser sent no or a wrong "
    "CSRF token (`X-CSRF-Token`; `GET /api/v1/acts/csrf` gives it)",
    404: "No such act or review item (also for an id that is not a whole number)",
    409: "Conflict: the act changed since the `version` sent (the description names both "
    "versions; reload and apply the change again), the number is already registered, or "
    "the review item is already closed",
    422: "A field is wrong or breaks a rule (unknown field, bad date, validity outside the "
    "legal range, extension out of time, an AC/AD without a valid CU, an imobil of another "
    "UAT, ...); `locator` names the field",
    429: "The API key's request budget is used up; see Retry-After",
}


def act_errors(*statuses: int) -> dict[str, Any]:
    """The error answers of an acts endpoint: JSON ``Error`` bodies (code, description,
    locator), as ``webmap.errors`` renders them for programs."""
    return {
        str(status): {"description": _ACT_ERRORS[status], **json_content(ref("Error"))}
        for status in sorted({*statuses, 401, 403, 429})
    }


def _path_id(name: str, text: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
        "description": text,
    }


CSRF_PARAMETER = {
    "name": "X-CSRF-Token",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": (
        "Required when the caller is a signed-in staff browser (session cookie): the "
        "session's token from `GET /api/v1/acts/csrf`. API-key callers carry no ambient "
        "credentials and need none."
    ),
}
IF_MATCH_PARAMETER = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": 'The ETag of the act as read (`"3"`), instead of `version` in the body',
}
ACT_ID = _path_id("act_id", "The act's id")
ITEM_ID = _path_id("item_id", "The review item's id")


def _act_answer(text: str, status: str = "200") -> dict[str, Any]:
    headers: dict[str, Any] = {
        "ETag": {
            "description": "The act's version, quoted; send it back as If-Match",
            "schema": {"type": "string"},
        }
    }
    if status == "201":
        headers["Location"] = {
            "description": "The new act's URL (`/api/v1/acts/{act_id}`)",
            "schema": {"type": "string"},
        }
    return {status: {"description": text, "headers": headers, **json_content(ref("Act"))}}


def _body(name: str) -> dict[str, Any]:
    return {"required": True, **json_content(ref(name))}


def acts_section(settings: Settings) -> dict[str, Any]:
    """The clerks' register: create, read, edit, extend and cancel acts; the review queue."""
    state_changing = [CSRF_PARAMETER]
    versioned = [ACT_ID, CSRF_PARAMETER, IF_MATCH_PARAMETER]
    paths = {
        "/api/v1/acts/csrf": {
            "get": {
                "operationId": "actsCsrfToken",
                "summary": "Clerks: the CSRF token of this staff session",
                "description": (
                    "Signed-in staff browsers send this token in `X-CSRF-Token` on every "
                    "state-changing acts request."
                ),
                "security": ACT_SECURITY,
                "responses": {
                    "200": {"description": "The token", **json_content(ref("CsrfToken"))},
                    **act_errors(),
                },
            }
        },
        "/api/v1/acts": {
            "post": {
                "operationId": "createAct",
                "summary": "Clerks: register an act (CU, AC or AD), requested or issued",
                "description": (
                    "The act is linked to its imobile (number, then site, then address) and "
                    "audited; an issued AC/AD needs a CU valid on its issue date for the "
                    "same imobile. Validity ends are computed from the settings' rules."
                ),
                "security": ACT_SECURITY,
                "parameters": state_changing,
                "requestBody": _body("ActCreate"),
                "responses": {
                    **_act_answer("The act as registered", "201"),
                    **act_errors(400, 409, 422),
                },
            }
        },
        "/api/v1/acts/{act_id}": {
            "get": {
                "operationId": "getAct",
                "summary": "Clerks: one act with its links and its applicant",
                "security": ACT_SECURITY,
                "parameters": [ACT_ID],
                "responses": {**_act_answer("The act"), **act_errors(404)},
            },
            "patch": {
                "operationId": "updateAct",
                "summary": "Clerks: change fields of an act (optimistic locking)",
                "description": (
                    "Send the `version` you read (or If-Match); if someone saved in between "
                    "the answer is 409 and nothing changes. Statuses move only forward; "
                    "cancel with the cancel action."
                ),
                "security": ACT_SECURITY,
                "parameters": versioned,
                "requestBody": _body("ActChanges"),
                "responses": {**_act_answer("The act as saved"), **act_errors(400, 404, 409, 422)},
            },
        },
        "/api/v1/acts/{act_id}/extend": {
            "post": {
                "operationId": "extendAct",
                "summary": "Clerks: the one extension the law allows, asked in time",
                "description": (
                    f"CU: at most {settings.cu_extension_max_months} months, asked at least "
                    f"{settings.cu_extension_notice_days} days before expiry; AC/AD: at most "
                    f"{settings.ac_extension_max_months} months, asked at least "
                    f"{settings.ac_extension_notice_working_days} working days before expiry."
                ),
                "security": ACT_SECURITY,
                "parameters": versioned,
                "requestBody": _body("ActExtension"),
                "responses": {
                    **_act_answer("The act, extended"),
                    **act_errors(400, 404, 409, 422),
                },
            }
        },
        "/api/v1/acts/{act_id}/cancel": {
            "post": {
                "operationId": "cancelAct",
                "summary": "Clerks: cancel (annul) an act, with the reason",
                "security": ACT_SECURITY,
                "parameters": versioned,
                "requestBody": _body("ActCancellation"),
                "responses": {
                    **_act_answer("The act, cancelled"),
                    **act_errors(400, 404, 409, 422),
                },
            }
        },
        "/api/v1/acts/queue": {
            "get": {
                "operationId": "listReviewQueue",
                "summary": "Clerks: acts the linker could not settle, oldest first",
                "security": ACT_SECURITY,
                "parameters": [
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                        "At most this many items",
                    ),
                    _query(
                        "offset", {"type": "integer", "minimum": 0, "default": 0}, "Skip so many"
                    ),
                ],
                "responses": {
                    "200": {
                        "description": "Open items and their count per reason",
                        **json_content(ref("ReviewQueue")),
                    },
                    **act_errors(400),
                },
            }
        },
        "/api/v1/acts/queue/{item_id}/resolve": {
            "post": {
                "operationId": "resolveReviewItem",
                "summary": "Clerks: link the item's act to the imobile named (first is primary)",
                "description": "The links become manual (confidence 1); a re-link keeps them.",
                "security": ACT_SECURITY,
                "parameters": [ITEM_ID, CSRF_PARAMETER],
                "requestBody": _body("ReviewResolution"),
                "responses": {
                    "200": {
                        "description": "The item, resolved",
                        **json_content(ref("ReviewOutcome")),
                    },
                    **act_errors(400, 404, 409, 422),
                },
            }
        },
        "/api/v1/acts/queue/{item_id}/dismiss": {
            "post": {
                "operationId": "dismissReviewItem",
                "summary": "Clerks: close an item without links, saying why",
                "security": ACT_SECURITY,
                "parameters": [ITEM_ID, CSRF_PARAMETER],
                "requestBody": _body("ReviewDismissal"),
                "responses": {
                    "200": {
                        "description": "The item, dismissed",
                        **json_content(ref("ReviewOutcome")),
                    },
                    **act_errors(400, 404, 409, 422),
                },
            }
        },
    }
    return {"paths": paths, "schemas": _act_schemas(settings)}


def _act_schemas(settings: Settings) -> dict[str, Any]:
    nullable_text = {"type": ["string", "null"]}
    nullable_date = {"type": ["string", "null"], "format": "date"}
    nullable_number = {"type": ["number", "null"], "minimum": 0}
    nullable_integer = {"type": ["integer", "null"], "minimum": 0}
    point = {
        "type": ["object", "null"],
        "required": ["type", "coordinates"],
        "properties": {"type": {"const": "Point"}, "coordinates": {"type": "array"}},
    }
    polygon = {
        "type": ["object", "null"],
        "required": ["type", "coordinates"],
        "properties": {
            "type": {"enum": ["Polygon", "MultiPolygon"]},
            "coordinates": {"type": "array"},
        },
    }
    months = (
        f"CU {settings.cu_validity_min_months}–{settings.cu_validity_max_months}, "
        f"AC/AD {settings.ac_validity_min_months}–{settings.ac_validity_max_months}"
    )
    editable = {
        "purpose": {**nullable_text, "description": "Purpose or works description"},
        "address": {**nullable_text, "description": "The imobil's address as registered"},
        "cadastral_numbers": {
            "description": (
                "The imobile cited, the first primary: a list, or the register's text "
                "(`228603; 228604`, `224784-C1-U72`, `CF 228603`)"
            ),
            "oneOf": [
                {"type": "array", "items": {"type": "string"}},
                {"type": ["string", "null"]},
            ],
        },
        "land_book": {**nullable_text, "description": "Land-book (carte funciară) reference"},
        "requested_on": {**nullable_date, "description": "Date of the application"},
        "issued_on": {**nullable_date, "description": "Date of issue (an issued act needs it)"},
        "validity_months": {
            **nullable_integer,
            "description": f"Validity chosen at issue, in months ({months})",
        },
        "status": {
            "enum": ACT_STATUSES,
            "description": (
                "A new act is requested or issued; later only forward "
                "(requested → issued → completed; cancel with the cancel action)"
            ),
        },
        "basis_act_id": {
            **nullable_integer,
            "description": "The CU an AC/AD relies on (found automatically when absent)",
        },
        "footprint_area": {**nullable_number, "description": "AC: proposed built area, m²"},
        "floor_area": {**nullable_number, "description": "AC: proposed gross floor area, m²"},
        "height_m": {**nullable_number, "description": "AC: proposed height, m"},
        "levels": {**nullable_integer, "description": "AC: proposed number of levels"},
        "location": {**point, "description": "The site as a GeoJSON Point (in `crs`)"},
        "footprint": {
            **polygon,
            "description": "The site plan as a GeoJSON Polygon or MultiPolygon (in `crs`)",
        },
        "crs": {
            "type": "string",
            "default": "EPSG:4326",
            "description": "CRS of `location` and `footprint` (lon/lat by default)",
            "examples": ["EPSG:4326", f"EPSG:{settings.storage_srid}"],
        },
        "applicant": ref("Applicant"),
    }
    act_properties = {
        "id": {"type": "integer"},
        "uat_siruta": {"type": "integer"},
        "kind": {"enum": ACT_KINDS},
        "number": {"type": "string"},
        "issued_on": nullable_date,
        "register_key": {"type": "string", "description": "`number/year`, unique per kind"},
        "status": {"enum": ACT_STATUSES},
        "requested_on": nullable_date,
        "purpose": nullable_text,
        "address_text": nullable_text,
        "cited_numbers": nullable_text,
        "land_book_text": nullable_text,
        "validity_months": nullable_integer,
        "valid_until": nullable_date,
        "extension_months": nullable_integer,
        "extension_requested_on": nullable_date,
        "extended_until": nullable_date,
        "basis_act_id": nullable_integer,
        "proposed_footprint_area": nullable_number,
        "proposed_floor_area": nullable_number,
        "proposed_height_m": nullable_number,
        "proposed_levels": nullable_integer,
        "link_state": {"enum": ["pending", "linked", "review", "unmatched"]},
        "version": {"type": "integer", "minimum": 1},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "location": {
            **point,
            "description": "The site point, longitude/latitude (ETRS89 by TransDatRO)",
        },
        "footprint": {
            **polygon,
            "description": "The site plan, longitude/latitude (ETRS89 by TransDatRO)",
        },
        "links": {"type": "array", "items": ref("ActLink")},
        "applicant": {"oneOf": [ref("Applicant"), {"type": "null"}]},
    }
    version = {
        "type": "integer",
        "minimum": 1,
        "description": "The version you read (or send If-Match instead)",
    }
    outcome_parcels = {"type": "array", "items": {"type": "string"}}
    return {
        "CsrfToken": {
            "type": "object",
            "required": ["csrf_token", "header"],
            "properties": {
                "csrf_token": {"type": "string"},
                "header": {"const": "X-CSRF-Token"},
            },
        },
        "Applicant": {
            "type": "object",
            "description": "Personal data: only clerks and administrators read or write it",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "kind": {"enum": ["natural", "legal"], "default": "natural"},
                "national_id": nullable_text,
                "address": nullable_text,
                "phone": nullable_text,
                "email": nullable_text,
            },
        },
        "ActCreate": {
            "type": "object",
            "required": ["kind", "number"],
            "additionalProperties": False,
            "properties": {
                "kind": {"enum": ACT_KINDS},
                "number": {
                    "type": ["string", "integer"],
                    "description": "The register number (`123`); the date goes in issued_on",
                },
                **editable,
                "status": {"enum": ["requested", "issued"]},
            },
            "examples": [
                {
                    "kind": "CU",
                    "number": "123",
                    "issued_on": "2024-03-15",
                    "validity_months": 12,
                    "purpose": "Construire locuință",
                    "cadastral_numbers": ["228603"],
                    "applicant": {"name": "Exemplescu Maria"},
                }
            ],
        },
        "ActChanges": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"version": version, **editable},
            "examples": [{"version": 1, "purpose": "Alipire imobile"}],
        },
        "ActExtension": {
            "type": "object",
            "required": ["months"],
            "additionalProperties": False,
            "properties": {
                "version": version,
                "months": {"type": "integer", "minimum": 1},
                "requested_on": {
                    "type": "string",
                    "format": "date",
                    "description": "When the extension was asked (default today)",
                },
            },
        },
        "ActCancellation": {
            "type": "object",
            "required": ["reason"],
            "additionalProperties": False,
            "properties": {"version": version, "reason": {"type": "string", "minLength": 1}},
        },
        "ActLink": {
            "type": "object",
            "required": ["parcel_id", "cadastral_number", "is_primary", "method", "confidence"],
            "properties": {
                "parcel_id": {"type": "integer"},
                "cadastral_number": {"type": "string"},
                "is_primary": {"type": "boolean"},
                "method": {"enum": ["number", "spatial", "address", "manual"]},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            },
        },
        "Act": {
            "type": "object",
            "required": [
                "id",
                "kind",
                "number",
                "register_key",
                "status",
                "link_state",
                "version",
                "links",
            ],
            "properties": act_properties,
        },
        "ReviewItem": {
            "type": "object",
            "required": ["id", "act_id", "reason", "detail", "candidates"],
            "properties": {
                "id": {"type": "integer"},
                "act_id": {"type": "integer"},
                "reason": {"type": "string"},
                "detail": {"type": "string"},
                "candidates": {"type": "array", "items": {"type": "object"}},
                "created_at": {"type": "string", "format": "date-time"},
                "kind": {"enum": ACT_KINDS},
                "number": {"type": "string"},
                "issued_on": nullable_date,
                "cited_numbers": nullable_text,
                "address_text": nullable_text,
                "linked": {"type": "array", "items": {"type": "string"}},
            },
        },
        "ReviewQueue": {
            "type": "object",
            "required": ["counts", "items"],
            "properties": {
                "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                "items": {"type": "array", "items": ref("ReviewItem")},
            },
        },
        "ReviewResolution": {
            "type": "object",
            "additionalProperties": False,
            "description": "Name the imobile by cadastral number and/or parcel id",
            "properties": {
                "cadastral_numbers": {"type": "array", "items": {"type": "string"}},
                "parcel_ids": {"type": "array", "items": {"type": "integer"}},
                "note": nullable_text,
            },
        },
        "ReviewDismissal": {
            "type": "object",
            "required": ["note"],
            "additionalProperties": False,
            "properties": {"note": {"type": "string", "minLength": 1}},
        },
        "ReviewOutcome": {
            "type": "object",
            "required": ["item", "act_id", "state"],
            "properties": {
                "item": {"type": "integer"},
                "act_id": {"type": "integer"},
                "state": {"enum": ["resolved", "dismissed"]},
                "parcels": outcome_parcels,
                "note": nullable_text,
            },
        },
    }


# Published with the other sections (appended here so the sections above stay untouched).
SECTIONS = (*SECTIONS, acts_section)


# -- zone analysis and indicators (``webmap.analysis_api``) -------------------------------
PLANNER_SECURITY: list[dict[str, list[str]]] = [{"ApiKey": []}, {"StaffSession": []}]
PUBLIC_SECURITY: list[dict[str, list[str]]] = [{}, {"ApiKey": []}]
BIGINT_MAX = 2**63 - 1
_ANALYSIS_ERRORS = {
    400: "A query parameter is malformed or out of range (a date that is not YYYY-MM-DD, a "
    "plan id that is not a whole number, an unknown grouping or indicator, units that are "
    "not `utr`, `zones`, `hex:SIZE`, `square:SIZE` or a unit set's name, or two identical "
    "plan states to compare); `locator` names it",
    401: "The API key sent is unknown, malformed or revoked (a wrong key is refused, never "
    "downgraded to public)",
    403: "The caller is not a planner: anonymous, or signed in or keyed with a role other than "
    "planner or admin (`OperationNotSupported`)",
    404: "The plan named by `plan` does not exist; `locator` is `plan`",
    429: "The request budget (of the API key, or of an anonymous client) is used up; see "
    "Retry-After",
    503: "The database is unavailable or the answer took too long",
}


def analysis_errors(*statuses: int) -> dict[str, Any]:
    """The error answers of an analysis or indicator endpoint, all ``Error`` bodies."""
    return {
        str(status): {"description": _ANALYSIS_ERRORS[status], **json_content(ref("Error"))}
        for status in sorted({*statuses, 401, 429, 503})
    }


def _plan_parameter(name: str, text: str) -> dict[str, Any]:
    return _query(name, {"type": "integer", "minimum": 1, "maximum": BIGINT_MAX}, text)


def _as_of_parameter(name: str, text: str) -> dict[str, Any]:
    return _query(name, {"type": "string", "format": "date"}, text)


def analysis_section(settings: Settings) -> dict[str, Any]:
    """Planners' zone analysis and plan comparison; the public indicator catalogue and runs."""
    from layers.analysis.zones import GROUPINGS
    from layers.indicators.catalogue import CATALOGUE

    planners = (
        "For planners: an API key with the planner or admin role, or a signed-in staff "
        "session with one of those roles. Anonymous callers and other roles get 403."
    )
    paths = {
        "/api/v1/analysis/zones": {
            "get": {
                "operationId": "analyseZones",
                "summary": "Planners: what is built in each UTR against what its rules allow",
                "description": (
                    "Per UTR code (`by=utr`) or per zone polygon (`by=zone`) of the plans in "
                    "force on `as_of` (or of the one plan `plan`, draft or not): parcel "
                    "count, total and median parcel area, built footprint and gross floor "
                    "area, the zone's actual POT and CUT and their distribution over its "
                    "parcels, the parcels above the maxima, the floor area and footprint "
                    "still allowed, and the acts issued per year. A parcel lies in the zone "
                    "holding its point on surface; where plans overlap a PUD beats a PUZ "
                    "beats the PUG, then the newer plan. " + planners
                ),
                "security": PLANNER_SECURITY,
                "parameters": [
                    _as_of_parameter(
                        "as_of",
                        "The day the analysis describes (its end, UTC): parcels, buildings "
                        "and zones as they stood then, plans in force that day (default now)",
                    ),
                    _plan_parameter(
                        "plan",
                        "Analyse every zone of this plan (any status) instead of the plans in "
                        "force on `as_of`",
                    ),
                    _query(
                        "by",
                        {"enum": list(GROUPINGS), "default": "utr"},
                        "One row per UTR code of a plan (`utr`) or per zone polygon (`zone`)",
                    ),
                ],
                "responses": {
                    "200": {
                        "description": "One record per UTR (or zone) with parcels",
                        **json_content(ref("ZoneAnalysis")),
                    },
                    **analysis_errors(400, 403, 404),
                },
            }
        },
        "/api/v1/analysis/compare": {
            "get": {
                "operationId": "comparePlans",
                "summary": "Planners: parcels whose zone or rules differ between two plan states",
                "description": (
                    "A plan state is one plan (`plan`, `other_plan`) or the plans in force on "
                    "a day (`as_of`, `other_as_of`). Every parcel as of the later of the two "
                    "days is placed in its zone under both states; the answer lists those "
                    "whose UTR code, POT, CUT or height maximum differs, with the building "
                    "capacity (CUT max × parcel area) under each, and sums the change per "
                    "(UTR before, UTR after) transition. A plan id that does not exist "
                    "places no parcel. " + planners
                ),
                "security": PLANNER_SECURITY,
                "parameters": [
                    _as_of_parameter("as_of", "The day of the first state (default now)"),
                    _plan_parameter("plan", "The first state's plan (default: plans in force)"),
                    _as_of_parameter("other_as_of", "The day of the second state (default now)"),
                    _plan_parameter(
                        "other_plan", "The second state's plan (default: plans in force)"
                    ),
                ],
                "responses": {
                    "200": {
                        "description": "The changed parcels and the change per transition",
                        **json_content(ref("PlanComparison")),
                    },
                    **analysis_errors(400, 403),
                },
            }
        },
        "/api/v1/indicators": {
            "get": {
                "operationId": "listIndicators",
                "summary": "The indicator catalogue: definition, formula, unit, sources, units",
                "security": PUBLIC_SECURITY,
                "responses": {
                    "200": {
                        "description": "Every indicator, in catalogue order",
                        **json_content(ref("IndicatorCatalogue")),
                    },
                    **analysis_errors(),
                },
            }
        },
        "/api/v1/indicators/runs": {
            "get": {
                "operationId": "listIndicatorRuns",
                "summary": "The current run of each indicator layer, with its inputs' versions",
                "description": (
                    "One run per published indicator layer (indicator × spatial units): "
                    "the year and instant it describes, the parameters, a fingerprint of "
                    "every input read (so it can be recomputed identically) and a summary "
                    "of its values. The values themselves are the layer's features (OGC API "
                    "Features collection `layer_id`)."
                ),
                "security": PUBLIC_SECURITY,
                "parameters": [
                    _query(
                        "units",
                        {"type": "string", "examples": ["utr", "zones", "hex:500", "districts"]},
                        "Only runs on these spatial units: `utr`, `zones`, `hex:SIZE`, "
                        "`square:SIZE` (metres) or an imported unit set's name, read as "
                        "`urbangis indicators compute --units` reads them (`HEX:500.0` is "
                        "`hex:500`)",
                    ),
                    {
                        **_query(
                            "indicator",
                            {"type": "array", "items": {"enum": [i.id for i in CATALOGUE]}},
                            "Only runs of these indicators (repeat the parameter for several)",
                        ),
                        "style": "form",
                        "explode": True,
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The current runs, by indicator then units",
                        **json_content(ref("IndicatorRuns")),
                    },
                    **analysis_errors(400),
                },
            }
        },
    }
    return {"paths": paths, "schemas": _analysis_schemas()}


def _analysis_schemas() -> dict[str, Any]:
    from layers.analysis.compare import MAX_LISTED
    from layers.analysis.zones import GROUPINGS, POT_BINS, QUANTILES
    from layers.indicators.catalogue import CATALOGUE

    number = {"type": "number"}
    nullable_number = {"type": ["number", "null"]}
    count = {"type": "integer", "minimum": 0}
    area = {"type": "number", "minimum": 0}
    instant = {"type": "string", "format": "date-time"}
    text_list = {"type": "array", "items": {"type": "string"}}
    utr = {"type": ["string", "null"]}
    indicator_ids = [i.id for i in CATALOGUE]
    quantiles = {
        "type": "array",
        "maxItems": len(QUANTILES),
        "items": number,
        "description": "At the fractions of `quantiles` (empty when no parcel has an area)",
    }
    fingerprint = {
        "type": "object",
        "required": ["rows", "fingerprint", "data_version"],
        "properties": {"rows": count, "fingerprint": {"type": "string"}, "data_version": count},
    }
    plan_state = {
        "type": "object",
        "required": ["plan_id", "as_of"],
        "properties": {"plan_id": {"type": ["integer", "null"]}, "as_of": instant},
    }
    return {
        "ZoneFigures": {
            "type": "object",
            "required": [
                "plan_id",
                "plan",
                "plan_type",
                "utr_code",
                "zone_id",
                "parcel_count",
                "total_area",
                "pot_histogram",
                "acts_per_year",
            ],
            "properties": {
                "plan_id": {"type": "integer"},
                "plan": {"type": "string", "description": "The plan's title"},
                "plan_type": {"enum": ["PUG", "PUZ", "PUD"]},
                "utr_code": {"type": "string"},
                "zone_id": {
                    "type": ["integer", "null"],
                    "description": "The zone polygon (`by=zone`); null per UTR",
                },
                "pot_max": {**nullable_number, "description": "The rule's maximum POT, %"},
                "cut_max": {**nullable_number, "description": "The rule's maximum CUT"},
                "height_max_m": {**nullable_number, "description": "Maximum height, m"},
                "parcel_count": {"type": "integer", "minimum": 1},
                "total_area": {**number, "description": "Σ parcel area, m²"},
                "median_area": {**number, "description": "Median parcel area, m²"},
                "footprint": {**number, "description": "Σ built footprint, m²"},
                "floor_area": {**number, "description": "Σ gross floor area, m²"},
                "pot": {**nullable_number, "description": "100 × footprint / total area"},
                "cut": {**nullable_number, "description": "floor area / total area"},
                "pot_quantiles": {**quantiles, "description": "Parcels' POT at `quantiles`"},
                "cut_quantiles": {**quantiles, "description": "Parcels' CUT at `quantiles`"},
                "parcels_over_pot": count,
                "parcels_over_cut": count,
                "parcels_over_any": count,
                "remaining_floor_area": {
                    **area,
                    "description": "Σ over parcels of max(CUT max × area − floor area, 0), m²",
                },
                "remaining_footprint": {
                    **area,
                    "description": "Σ over parcels of max(POT max/100 × area − footprint, 0), m²",
                },
                "pot_histogram": {
                    "type": "array",
                    "minItems": POT_BINS + 1,
                    "maxItems": POT_BINS + 1,
                    "items": count,
                    "description": "Parcels per bin of `pot_histogram_bins`",
                },
                "acts_per_year": {
                    "type": ["object", "null"],
                    "propertyNames": {"pattern": "^-?[0-9]+$"},
                    "additionalProperties": {"type": "integer", "minimum": 1},
                    "description": (
                        "Acts issued per year on the zone's parcels (on each act's primary "
                        "parcel); null when the acts register cannot be read (see `acts`)"
                    ),
                },
            },
        },
        "ZoneAnalysis": {
            "type": "object",
            "required": [
                "as_of",
                "plan_id",
                "by",
                "pot_histogram_bins",
                "quantiles",
                "acts",
                "zones",
            ],
            "properties": {
                "as_of": {**instant, "description": "The instant described"},
                "plan_id": {"type": ["integer", "null"]},
                "by": {"enum": list(GROUPINGS)},
                "pot_histogram_bins": {
                    "type": "array",
                    "minItems": POT_BINS + 1,
                    "maxItems": POT_BINS + 1,
                    "items": {"type": "string"},
                    "examples": [[f"{10 * i}-{10 * (i + 1)}" for i in range(POT_BINS)] + [">100"]],
                },
                "quantiles": {
                    "type": "array",
                    "items": {"type": "number", "minimum": 0, "maximum": 1},
                    "examples": [list(QUANTILES)],
                },
                "acts": {
                    "type": "string",
                    "description": "Where acts were read from, or why they were skipped",
                },
                "zones": {"type": "array", "items": ref("ZoneFigures")},
            },
        },
        "ChangedParcel": {
            "type": "object",
            "required": [
                "cadastral_number",
                "area",
                "utr_before",
                "utr_after",
                "capacity_before",
                "capacity_after",
                "capacity_change",
            ],
            "properties": {
                "cadastral_number": {"type": "string"},
                "area": {**area, "description": "m²"},
                "floor_area": {**area, "description": "Built gross floor area, m²"},
                "utr_before": utr,
                "utr_after": utr,
                "pot_max_before": nullable_number,
                "pot_max_after": nullable_number,
                "cut_max_before": nullable_number,
                "cut_max_after": nullable_number,
                "height_max_before": nullable_number,
                "height_max_after": nullable_number,
                "capacity_before": {**nullable_number, "description": "CUT max × area, m²"},
                "capacity_after": nullable_number,
                "capacity_change": {**number, "description": "after − before (null as 0)"},
            },
        },
        "PlanComparison": {
            "type": "object",
            "required": [
                "before",
                "after",
                "parcels_as_of",
                "changed_parcels",
                "capacity_change",
                "transitions",
                "parcels",
                "truncated",
            ],
            "properties": {
                "before": plan_state,
                "after": plan_state,
                "parcels_as_of": instant,
                "changed_parcels": count,
                "capacity_change": number,
                "transitions": {
                    "type": "array",
                    "description": "Largest absolute capacity change first",
                    "items": {
                        "type": "object",
                        "required": ["utr_before", "utr_after", "parcels", "capacity_change"],
                        "properties": {
                            "utr_before": utr,
                            "utr_after": utr,
                            "parcels": {"type": "integer", "minimum": 1},
                            "capacity_change": number,
                        },
                    },
                },
                "parcels": {
                    "type": "array",
                    "maxItems": MAX_LISTED,
                    "items": ref("ChangedParcel"),
                    "description": f"By cadastral number; at most {MAX_LISTED}",
                },
                "truncated": {"type": "boolean"},
            },
        },
        "Indicator": {
            "type": "object",
            "required": [
                "id",
                "name",
                "definition",
                "formula",
                "unit",
                "source_layers",
                "spatial_units",
                "needs",
            ],
            "properties": {
                "id": {"enum": indicator_ids},
                "name": {"type": "string"},
                "definition": {"type": "string"},
                "formula": {"type": "string"},
                "unit": {"type": "string"},
                "source_layers": text_list,
                "spatial_units": {
                    "type": "array",
                    "items": {"enum": ["utr", "zones", "boundary", "hex", "square"]},
                },
                "needs": {
                    **text_list,
                    "description": "Inputs that must be loaded (population, park, acts, ...)",
                },
            },
        },
        "IndicatorCatalogue": {
            "type": "object",
            "required": ["indicators"],
            "properties": {"indicators": {"type": "array", "items": ref("Indicator")}},
        },
        "IndicatorRun": {
            "type": "object",
            "required": [
                "id",
                "indicator",
                "units",
                "layer_id",
                "year",
                "as_of",
                "engine",
                "parameters",
                "input_versions",
                "summary",
                "computed_at",
            ],
            "properties": {
                "id": {"type": "integer"},
                "indicator": {"enum": indicator_ids},
                "units": {"type": "string", "examples": ["utr", "hex:500"]},
                "layer_id": {"type": "string", "examples": ["ind_built_share_hex_500"]},
                "year": {"type": "integer"},
                "as_of": instant,
                "engine": {"enum": ["postgis", "dask"]},
                "parameters": {
                    "type": "object",
                    "properties": {
                        "park_distance_m": number,
                        "school_distance_m": number,
                        "transit_distance_m": number,
                        "green_utr_prefixes": text_list,
                        "protected_kinds": text_list,
                        "flood_kinds": text_list,
                        "plan_id": {"type": ["integer", "null"]},
                    },
                },
                "input_versions": {
                    "type": "object",
                    "required": ["as_of", "tables", "inputs", "population"],
                    "properties": {
                        "as_of": instant,
                        "tables": {"type": "object", "additionalProperties": fingerprint},
                        "inputs": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["name", "kind", "source", "source_sha256"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "kind": {"type": "string"},
                                    "source": {"type": "string"},
                                    "source_sha256": {"type": "string"},
                                    "version": {"type": "integer"},
                                },
                            },
                        },
                        "population": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["year", "source", "source_sha256", "rows"],
                                "properties": {
                                    "year": {"type": "integer"},
                                    "source": {"type": "string"},
                                    "source_sha256": {"type": "string"},
                                    "rows": count,
                                },
                            },
                        },
                        "units": {
                            "type": "object",
                            "description": "The imported unit set read (boundary units only)",
                            "properties": {
                                "source": {"type": "string"},
                                "source_sha256": {"type": "string"},
                                "version": {"type": "integer"},
                            },
                        },
                    },
                },
                "summary": {
                    "type": "object",
                    "required": ["units", "with_value", "min", "max", "mean", "breaks"],
                    "properties": {
                        "units": count,
                        "with_value": count,
                        "min": nullable_number,
                        "max": nullable_number,
                        "mean": nullable_number,
                        "breaks": {
                            "type": ["array", "null"],
                            "items": number,
                            "description": "Quintile breaks of the values (null when none)",
                        },
                        "notes": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                },
                "computed_at": instant,
            },
        },
        "IndicatorRuns": {
            "type": "object",
            "required": ["runs"],
            "properties": {"runs": {"type": "array", "items": ref("IndicatorRun")}},
        },
    }


SECTIONS = (*SECTIONS, analysis_section)
