"""The OpenAPI document describes every ``/api/v1`` route, the clerks' acts included, and
stays a valid OpenAPI 3.1 document; the acts endpoints answer what it says they answer.

Validity is checked against the official OpenAPI 3.1 schema (the copy schemathesis ships,
the library the API fuzzing already uses), every component schema against the JSON Schema
2020-12 meta-schema, and every ``$ref`` is resolved. Then the acts endpoints are called,
successes and failures alike, and each JSON answer is validated against the schema the
document gives for that operation and status.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient
from schemathesis.specs.openapi.definitions import OPENAPI_31
from werkzeug.test import TestResponse

from gis_core.access import create_api_key
from gis_core.db import create_engine
from gis_core.settings import Settings
from tests.test_permits_public import add_parcel
from webmap.app import create_app
from webmap.auth import create_staff_user

# The document itself and its page are not API operations.
NOT_OPERATIONS = {"/api/v1/", "/api/v1/openapi.json", "/api/v1/docs"}
# The zone analysis and indicator routes (``webmap.analysis_api``), a module of its own;
# their answers are checked against the document in ``tests/test_analysis_openapi.py``.
ANALYSIS_OPERATIONS = {
    ("/api/v1/analysis/zones", "get"),
    ("/api/v1/analysis/compare", "get"),
    ("/api/v1/indicators", "get"),
    ("/api/v1/indicators/runs", "get"),
}
ACT_OPERATIONS = {
    ("/api/v1/acts", "post"),
    ("/api/v1/acts/csrf", "get"),
    ("/api/v1/acts/{act_id}", "get"),
    ("/api/v1/acts/{act_id}", "patch"),
    ("/api/v1/acts/{act_id}/extend", "post"),
    ("/api/v1/acts/{act_id}/cancel", "post"),
    ("/api/v1/acts/queue", "get"),
    ("/api/v1/acts/queue/{item_id}/resolve", "post"),
    ("/api/v1/acts/queue/{item_id}/dismiss", "post"),
}
SITE_PLAN = [[396_002, 585_002], [396_018, 585_002], [396_018, 585_018], [396_002, 585_002]]
_CONVERTER = re.compile(r"<(?:[a-z_]+(?:\([^)]*\))?:)?([a-z_]+)>")


@pytest.fixture(scope="module")
def openapi_settings(database_factory: Any) -> Settings:
    settings: Settings = database_factory("permits_openapi", 3844)
    engine = create_engine(settings)
    with engine.begin() as conn:
        for index, number in enumerate(("870001", "870002")):
            add_parcel(conn, number, x=396_000 + 40 * index)
        create_staff_user(conn, "dana", "parola-dana-1", "clerk")
        create_staff_user(conn, "radu", "parola-radu-1", "planner")
    engine.dispose()
    return settings


@pytest.fixture(scope="module")
def app(openapi_settings: Settings) -> Flask:
    return create_app(openapi_settings)


@pytest.fixture(scope="module")
def document(app: Flask) -> dict[str, Any]:
    response = app.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    return dict(orjson.loads(response.data))


@pytest.fixture(scope="module")
def clerk_key(openapi_settings: Settings) -> Iterator[str]:
    engine = create_engine(openapi_settings)
    with engine.begin() as conn:
        key = create_api_key(conn, "registratura", "clerk")
    engine.dispose()
    yield key


def _routes(app: Flask) -> set[tuple[str, str]]:
    """(OpenAPI path, method) of every route Flask serves under /api/v1."""
    found = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1") or rule.rule in NOT_OPERATIONS:
            continue
        path = _CONVERTER.sub(r"{\1}", rule.rule)
        for method in rule.methods or ():
            if method not in ("HEAD", "OPTIONS"):
                found.add((path, method.lower()))
    return found


def _documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "put", "post", "delete", "options", "head", "patch", "trace")
    }


def test_every_api_route_is_documented(app: Flask, document: dict[str, Any]) -> None:
    served = _routes(app)
    documented = _documented(document)
    # the acts and analysis routes are registered under /api/v1
    assert served >= ACT_OPERATIONS | ANALYSIS_OPERATIONS
    missing = sorted(served - documented)
    assert missing == [], f"routes served but not in the OpenAPI document: {missing}"
    stale = sorted(documented - served)
    assert stale == [], f"documented operations no route serves: {stale}"


def test_the_document_is_valid_openapi_31(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    errors = [
        f"{'/'.join(map(str, e.instance_path))}: {e.message}"
        for e in jsonschema_rs.Draft202012Validator(OPENAPI_31).iter_errors(document)
    ]
    assert errors == []
    for name, schema in document["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid(schema), name
    operation_ids = [
        operation["operationId"]
        for item in document["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict) and "operationId" in operation
    ]
    assert len(operation_ids) == len(set(operation_ids))
    schemes = document["components"]["securitySchemes"]
    for path, method in _documented(document):
        operation = document["paths"][path][method]
        for requirement in operation.get("security", []):
            assert set(requirement) <= set(schemes), (path, method)
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                assert "{" + parameter["name"] + "}" in path, (path, parameter["name"])
    for reference in _references(document):
        pointer = reference.removeprefix("#/").split("/")
        node: Any = document
        for part in pointer:
            assert part in node, f"unresolved $ref {reference}"
            node = node[part]


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for value in node:
            yield from _references(value)


def test_acts_operations_state_security_and_errors(document: dict[str, Any]) -> None:
    for path, method in ACT_OPERATIONS:
        operation = document["paths"][path][method]
        assert operation["security"] == [{"ApiKey": []}, {"StaffSession": []}]
        responses = operation["responses"]
        for status in ("401", "403"):
            assert responses[status]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"
            }, (path, method, status)
        if method != "get":
            names = {p["name"] for p in operation.get("parameters", [])}
            assert "X-CSRF-Token" in names, (path, method)
            if path != "/api/v1/acts":
                assert {"404", "409"} <= set(responses), (path, method)
            assert "400" in responses, (path, method)


# -- the answers match the document -----------------------------------------------------
class Checked:
    """Calls the app and validates each JSON answer against the documented schema."""

    def __init__(self, client: FlaskClient, document: dict[str, Any], headers: dict[str, str]):
        self.client = client
        self.document = document
        self.headers = headers
        self.seen: set[tuple[str, str, str]] = set()

    def call(self, method: str, template: str, status: int, body: object = None, **ids: int) -> Any:
        url = template.format(**ids)
        kwargs: dict[str, Any] = {"headers": self.headers}
        if body is not None:
            kwargs["json"] = body
        response: TestResponse = getattr(self.client, method)(url, **kwargs)
        text = response.get_data(as_text=True)
        assert response.status_code == status, f"{method} {url}: {text[:300]}"
        self._validate(template.split("?")[0], method, str(status), response)
        return response.get_json()

    def _validate(self, path: str, method: str, status: str, response: TestResponse) -> None:
        operation = self.document["paths"][path][method]
        assert status in operation["responses"], f"{method} {path} answered undocumented {status}"
        documented = operation["responses"][status]
        schema = documented["content"]["application/json"]["schema"]
        assert response.mimetype == "application/json"
        validator = jsonschema_rs.Draft202012Validator(
            {**schema, "components": self.document["components"]}, validate_formats=True
        )
        errors = [
            f"{'/'.join(map(str, e.instance_path))}: {e.message}"
            for e in validator.iter_errors(response.get_json())
        ]
        assert errors == [], f"{method} {path} {status}: {errors}"
        for header in documented.get("headers", {}):
            assert header in response.headers, (method, path, status, header)
        self.seen.add((path, method, status))


def test_acts_answers_match_the_document(
    app: Flask, document: dict[str, Any], clerk_key: str
) -> None:
    api = Checked(app.test_client(), document, {"X-API-Key": clerk_key})
    act = api.call(
        "post",
        "/api/v1/acts",
        201,
        {
            "kind": "CU",
            "number": "501",
            "issued_on": "2024-03-15",
            "validity_months": 12,
            "purpose": "Construire locuință",
            "cadastral_numbers": ["870001"],
            "location": {"type": "Point", "coordinates": [396_010, 585_010]},
            "footprint": {"type": "Polygon", "coordinates": [SITE_PLAN]},
            "crs": "EPSG:3844",
            "applicant": {"name": "Exemplescu Maria", "national_id": "2900101123456"},
        },
    )
    one = "/api/v1/acts/{act_id}"
    assert act["links"] and act["location"]["type"] == "Point"
    api.call("get", one, 200, act_id=act["id"])
    api.call("get", one, 404, act_id=999_999)
    saved = api.call("patch", one, 200, {"version": 1, "purpose": "Alipire"}, act_id=act["id"])
    api.call("patch", one, 409, {"version": 1, "purpose": "Dezmembrare"}, act_id=act["id"])
    api.call("patch", one, 400, {"purpose": "fără versiune"}, act_id=act["id"])
    api.call("patch", one, 422, {"version": 2, "colour": "roșu"}, act_id=act["id"])
    api.call("post", "/api/v1/acts", 409, {"kind": "CU", "number": "501",
             "issued_on": "2024-05-01", "validity_months": 12})  # fmt: skip
    api.call("post", "/api/v1/acts", 422, {"kind": "XX", "number": "502"})
    extend = one + "/extend"
    api.call("post", extend, 422, {"version": saved["version"], "months": 6,
             "requested_on": "2025-03-10"}, act_id=act["id"])  # fmt: skip
    extended = api.call("post", extend, 200, {"version": saved["version"], "months": 6,
                        "requested_on": "2025-01-10"}, act_id=act["id"])  # fmt: skip
    cancel = one + "/cancel"
    api.call("post", cancel, 409, {"version": 1, "reason": "anulat"}, act_id=act["id"])
    api.call(
        "post", cancel, 200, {"version": extended["version"], "reason": "anulat"}, act_id=act["id"]
    )
    api.call("post", cancel, 404, {"version": 1, "reason": "anulat"}, act_id=999_999)
    # The queue: an act citing an unknown imobil waits for a clerk.
    lost = api.call("post", "/api/v1/acts", 201, {"kind": "CU", "number": "503",
                    "requested_on": "2024-02-01", "cadastral_numbers": "879999"})  # fmt: skip
    queue = api.call("get", "/api/v1/acts/queue", 200)
    (item,) = [i for i in queue["items"] if i["act_id"] == lost["id"]]
    api.call("get", "/api/v1/acts/queue?limit=0", 400)
    resolve = "/api/v1/acts/queue/{item_id}/resolve"
    api.call("post", resolve, 422, {"cadastral_numbers": ["879999"]}, item_id=item["id"])
    api.call("post", resolve, 200, {"cadastral_numbers": ["870002"]}, item_id=item["id"])
    api.call("post", resolve, 409, {"cadastral_numbers": ["870002"]}, item_id=item["id"])
    dismiss = "/api/v1/acts/queue/{item_id}/dismiss"
    api.call("post", dismiss, 404, {"note": "nu e în registru"}, item_id=999_999)
    api.call("post", dismiss, 409, {"note": "nu e în registru"}, item_id=item["id"])
    api.call("post", dismiss, 400, None, item_id=item["id"])
    other = api.call("post", "/api/v1/acts", 201, {"kind": "CU", "number": "505",
                     "requested_on": "2024-02-03", "cadastral_numbers": "879998"})  # fmt: skip
    (waiting,) = [
        i for i in api.call("get", "/api/v1/acts/queue", 200)["items"] if i["act_id"] == other["id"]
    ]
    api.call("post", dismiss, 422, {"note": " "}, item_id=waiting["id"])
    api.call("post", dismiss, 200, {"note": "nu e în registru"}, item_id=waiting["id"])

    anonymous = Checked(app.test_client(), document, {})
    for path, method in sorted(ACT_OPERATIONS):
        ids = {"act_id": act["id"], "item_id": item["id"]}
        anonymous.call(method, path, 401, {} if method != "get" else None, **ids)
    wrong_key = Checked(app.test_client(), document, {"X-API-Key": "ug_not-a-real-key"})
    wrong_key.call("get", "/api/v1/acts/queue", 401)

    planner = app.test_client()
    assert planner.post(
        "/auth/login", json={"login": "radu", "password": "parola-radu-1"}
    ).status_code == 200  # fmt: skip
    Checked(planner, document, {}).call("get", "/api/v1/acts/queue", 403)
    clerk = app.test_client()
    clerk.post("/auth/login", json={"login": "dana", "password": "parola-dana-1"})
    browser = Checked(clerk, document, {})
    token = browser.call("get", "/api/v1/acts/csrf", 200)["csrf_token"]
    browser.call("post", "/api/v1/acts", 403, {"kind": "CU", "number": "504"})
    browser.headers = {"X-CSRF-Token": token}
    browser.call("post", "/api/v1/acts", 201, {"kind": "CU", "number": "504",
                 "requested_on": "2024-02-02"})  # fmt: skip

    statuses: dict[tuple[str, str], set[str]] = {key: set() for key in ACT_OPERATIONS}
    for checked in (api, anonymous, wrong_key, browser):
        for path, method, status in checked.seen:
            statuses[(path, method)].add(status)
    assert all("401" in seen for seen in statuses.values())
    assert all(any(s.startswith("2") for s in seen) for seen in statuses.values()), statuses
