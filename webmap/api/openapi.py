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
                "search, and clerk validations. Public callers get public fields only; "
                "machine clients send an API key in X-API-Key. " + settings.disclaimer
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
