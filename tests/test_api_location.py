"""The /api/v1 endpoints over HTTP (Flask's client on the real app and the demo database):
answers, every kind of bad input as a 400/422 naming the field, API keys, request
budgets, CORS, the statement timeout, the OpenAPI document and its interactive page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import shapely
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from gis_core.crs import transform_coords
from gis_core.db import create_engine
from gis_core.errors import DatabaseError
from gis_core.settings import Settings
from webmap.api.base import api_connection
from webmap.app import create_app
from webmap.auth import KEYS, create_api_key, create_staff_user, revoke_api_key

PORTAL = "https://portal.example.ro"


def make_app(settings: Settings, **overrides: Any) -> Flask:
    tuned = settings.model_copy(
        update={"api_cors_origins": (PORTAL,), "api_max_numbers": 5, **overrides}
    )
    app = create_app(tuned)
    app.testing = True
    return app


@pytest.fixture(scope="module")
def engine(location_demo_settings: Settings) -> Iterator[Engine]:
    engine = create_engine(location_demo_settings)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def app(location_demo_settings: Settings) -> Flask:
    return make_app(location_demo_settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="module")
def sample(engine: Engine) -> dict[str, Any]:
    """A current parcel with an address, and a point inside it (Stereo 70 and lon/lat)."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT cadastral_number, address_text, ST_X(ST_PointOnSurface(geom)) AS x, "
                "ST_Y(ST_PointOnSurface(geom)) AS y FROM cadastre.parcel "
                "WHERE valid_to IS NULL AND intravilan AND address_text IS NOT NULL "
                "ORDER BY id LIMIT 1"
            )
        ).one()
    lon, lat = transform_coords(3844, 4326, [row.x], [row.y])
    return {
        "number": row.cadastral_number,
        "address": row.address_text,
        "x": row.x,
        "y": row.y,
        "lon": float(lon[0]),
        "lat": float(lat[0]),
    }


def body(response: Any) -> Any:
    return orjson.loads(response.data)


# -- answers -------------------------------------------------------------------------------
def test_location_check_by_number(client: FlaskClient, sample: dict[str, Any]) -> None:
    response = client.post("/api/v1/location-check", json={"cadastral_numbers": [sample["number"]]})
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    answer = body(response)
    assert answer["parcels"][0]["cadastral_number"] == sample["number"]
    assert answer["map_url"] == f"http://localhost/map?parcels={sample['number']}"
    assert answer["verdict"] in ("ok", "attention", "blocked")
    assert answer["disclaimer"].startswith("Informație")
    assert "geometry" not in answer["parcels"][0]


def test_location_check_by_point_address_and_with_geometry(
    client: FlaskClient, sample: dict[str, Any]
) -> None:
    point = {"type": "Point", "coordinates": [sample["lon"], sample["lat"]]}
    by_point = body(client.post("/api/v1/location-check", json={"geometry": point}))
    assert [p["cadastral_number"] for p in by_point["parcels"]] == [sample["number"]]
    stereo = {"type": "Point", "coordinates": [sample["x"], sample["y"]]}
    same = body(
        client.post("/api/v1/location-check", json={"geometry": stereo, "crs": "EPSG:3844"})
    )
    assert same["parcels"] == by_point["parcels"]
    by_address = body(client.post("/api/v1/location-check", json={"address": sample["address"]}))
    assert by_address["parcels"][0]["cadastral_number"] == sample["number"]
    shaped = body(
        client.post(
            "/api/v1/location-check",
            json={"cadastral_numbers": [sample["number"]], "include_geometry": True},
        )
    )
    outline = shapely.geometry.shape(shaped["parcels"][0]["geometry"])
    assert outline.contains(shapely.Point(sample["lon"], sample["lat"]))


def test_parcel_status_and_identify(client: FlaskClient, sample: dict[str, Any]) -> None:
    status = client.get(f"/api/v1/parcels/{sample['number']}?as_of=2024-05-01")
    assert status.status_code == 200
    assert body(status)["valid_for"] == "2024-05-01"
    missing = client.get("/api/v1/parcels/999999999")
    assert missing.status_code == 404
    assert "999999999" in body(missing)["description"]
    assert body(missing)["locator"] == "cadastral_number"
    here = body(client.get(f"/api/v1/parcels?lon={sample['lon']}&lat={sample['lat']}"))
    assert [p["cadastral_number"] for p in here["parcels"]] == [sample["number"]]
    assert here["parcels"][0]["status_url"].endswith(f"/api/v1/parcels/{sample['number']}")
    by_xy = body(client.get(f"/api/v1/parcels?x={sample['x']}&y={sample['y']}&crs=EPSG:3844"))
    assert by_xy["parcels"] == here["parcels"]


def test_address_search_ignores_diacritics_and_case(client: FlaskClient, engine: Engine) -> None:
    with engine.connect() as conn:
        street = conn.execute(
            sa.text(
                "SELECT street_name FROM cadastre.address "
                "WHERE street_name ~ '[șțăîâ]' ORDER BY id LIMIT 1"
            )
        ).scalar_one()
    plain = street.translate(str.maketrans("ăâîșț", "aaist")).upper()
    with_marks = body(client.get("/api/v1/addresses", query_string={"q": street}))
    without = body(client.get("/api/v1/addresses", query_string={"q": plain, "limit": 10}))
    assert with_marks["addresses"], street
    assert [a["id"] for a in without["addresses"]] == [a["id"] for a in with_marks["addresses"]]
    assert all(street in a["address"] for a in without["addresses"])
    first = without["addresses"][0]
    assert set(first) >= {"address", "cadastral_number", "lon", "lat"}
    assert client.get("/api/v1/addresses?q=a").status_code == 400


# -- bad input -------------------------------------------------------------------------------
SELF_CROSSING = {
    "type": "Polygon",
    "coordinates": [
        [[23.59, 46.77], [23.591, 46.771], [23.591, 46.77], [23.59, 46.771], [23.59, 46.77]]
    ],
}
HUGE = {
    "type": "Polygon",
    "coordinates": [
        [[23.50, 46.72], [23.70, 46.72], [23.70, 46.82], [23.50, 46.82], [23.50, 46.72]]
    ],
}
TINY = {
    "type": "Polygon",
    "coordinates": [[[23.59, 46.77], [23.590001, 46.77], [23.590001, 46.770001], [23.59, 46.77]]],
}
POINT = {"type": "Point", "coordinates": [23.59, 46.77]}

BAD_BODIES = [
    ("malformed JSON", b'{"cadastral_numbers": [', 400, "body"),
    ("empty body", b"", 400, "body"),
    ("not an object", b"[1, 2]", 400, "body"),
    ("unknown field", {"cadastral_numbers": ["1"], "colour": "red"}, 400, "colour"),
    ("nothing to check", {"as_of": "2024-01-01"}, 400, "cadastral_numbers"),
    ("two subjects", {"cadastral_numbers": ["1"], "address": "Str. X 1"}, 400, "address"),
    ("numbers not a list", {"cadastral_numbers": "123"}, 400, "cadastral_numbers"),
    ("empty list", {"cadastral_numbers": []}, 400, "cadastral_numbers"),
    (
        "too many numbers",
        {"cadastral_numbers": [str(n) for n in range(6)]},
        400,
        "cadastral_numbers",
    ),
    ("a number of wrong type", {"cadastral_numbers": ["1", {"n": 2}]}, 400, "cadastral_numbers[1]"),
    (
        "a number with odd characters",
        {"cadastral_numbers": ["25#123"]},
        400,
        "cadastral_numbers[0]",
    ),
    ("two numbers in one string", {"cadastral_numbers": ["1; 2"]}, 400, "cadastral_numbers[0]"),
    ("unknown CRS", {"geometry": POINT, "crs": "EPSG:999999"}, 400, "crs"),
    ("CRS that is not a CRS", {"geometry": POINT, "crs": "banana"}, 400, "crs"),
    ("CRS not accepted", {"geometry": POINT, "crs": "EPSG:32635"}, 400, "crs"),
    ("crs without geometry", {"cadastral_numbers": ["1"], "crs": "EPSG:4326"}, 400, "crs"),
    (
        "outside the UAT",
        {"geometry": {"type": "Point", "coordinates": [26.1, 44.43]}},
        422,
        "geometry",
    ),
    (
        "outside the grid",
        {"geometry": {"type": "Point", "coordinates": [-71.1, 42.37]}},
        422,
        "geometry",
    ),
    (
        "swapped axes",
        {"geometry": {"type": "Point", "coordinates": [46.77, 23.59]}},
        422,
        "geometry",
    ),
    ("self-intersecting polygon", {"geometry": SELF_CROSSING}, 422, "geometry"),
    ("absurd area", {"geometry": HUGE}, 422, "geometry"),
    ("degenerate polygon", {"geometry": TINY}, 422, "geometry"),
    (
        "line",
        {"geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}},
        400,
        "geometry.type",
    ),
    ("no coordinates", {"geometry": {"type": "Point"}}, 400, "geometry.coordinates"),
    (
        "text coordinates",
        {"geometry": {"type": "Point", "coordinates": ["a", "b"]}},
        400,
        "geometry.coordinates",
    ),
    (
        "huge coordinates",
        {"geometry": {"type": "Point", "coordinates": [1e300, 1]}},
        400,
        "geometry.coordinates",
    ),
    (
        "open ring",
        {"geometry": {"type": "Polygon", "coordinates": [[[23.59, 46.77], [23.6, 46.77]]]}},
        400,
        "geometry.coordinates",
    ),
    ("geometry not an object", {"geometry": "POINT(1 2)"}, 400, "geometry"),
    ("bad date", {"cadastral_numbers": ["1"], "as_of": "2024-02-30"}, 400, "as_of"),
    ("date of wrong type", {"cadastral_numbers": ["1"], "as_of": 20240101}, 400, "as_of"),
    ("absurd date", {"cadastral_numbers": ["1"], "as_of": "0001-01-01"}, 400, "as_of"),
    (
        "flag not boolean",
        {"cadastral_numbers": ["1"], "include_geometry": "yes"},
        400,
        "include_geometry",
    ),
    ("purpose too long", {"cadastral_numbers": ["1"], "purpose": "x" * 400}, 400, "purpose"),
    ("address too short", {"address": "ab"}, 400, "address"),
    ("unknown address", {"address": "Strada Nicăieri 12345"}, 422, "address"),
]


@pytest.mark.parametrize(
    ("case", "payload", "status", "locator"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES]
)
def test_bad_location_checks_name_the_field(
    client: FlaskClient, case: str, payload: Any, status: int, locator: str
) -> None:
    data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    response = client.post("/api/v1/location-check", data=data, content_type="application/json")
    assert response.status_code == status, (case, response.data)
    error = body(response)
    assert error["locator"] == locator, (case, error)
    assert error["description"] and "Traceback" not in error["description"]


BAD_QUERIES = [
    ("/api/v1/parcels?lon=23.59", 400, "lat"),
    ("/api/v1/parcels?lon=abc&lat=46.77", 400, "lon"),
    ("/api/v1/parcels?lon=23.59&lat=46.77&x=1", 400, "lon"),
    ("/api/v1/parcels?lon=190&lat=46.77", 400, "lon"),
    ("/api/v1/parcels?lon=nan&lat=46.77", 400, "lon"),
    ("/api/v1/parcels?lon=26.1&lat=44.43", 422, "lon"),
    ("/api/v1/parcels?x=1&y=2&crs=EPSG:1", 400, "crs"),
    ("/api/v1/parcels?lon=23.59&lat=46.77&zoom=3", 400, "zoom"),
    ("/api/v1/parcels/123?as_of=yesterday", 400, "as_of"),
    ("/api/v1/parcels/123?include_geometry=maybe", 400, "include_geometry"),
    ("/api/v1/parcels/12%2334", 400, "cadastral_number"),
    ("/api/v1/addresses", 400, "q"),
    ("/api/v1/addresses?q=main&limit=0", 400, "limit"),
    ("/api/v1/addresses?q=main&limit=x", 400, "limit"),
    ("/api/v1/addresses?q=main&sort=1", 400, "sort"),
]


@pytest.mark.parametrize(("url", "status", "locator"), BAD_QUERIES)
def test_bad_queries_name_the_parameter(
    client: FlaskClient, url: str, status: int, locator: str
) -> None:
    response = client.get(url)
    assert response.status_code == status, response.data
    assert body(response)["locator"] == locator


# -- keys, budgets, CORS ------------------------------------------------------------------
def test_api_keys_and_their_budget(
    client: FlaskClient, engine: Engine, sample: dict[str, Any]
) -> None:
    with engine.begin() as conn:
        key = create_api_key(conn, "portal-test", "portal", rate_limit_per_minute=3)
    url = f"/api/v1/parcels/{sample['number']}"
    first = client.get(url, headers={"X-API-Key": key})
    assert first.status_code == 200
    assert first.headers["X-RateLimit-Limit"] == "3"
    assert first.headers["X-RateLimit-Remaining"] == "2"
    statuses = [client.get(url, headers={"X-API-Key": key}).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = client.get(url, headers={"X-API-Key": key})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert body(refused)["code"] == "TooManyRequests"
    assert client.get(url, headers={"X-API-Key": "nonsense"}).status_code == 401
    assert client.get(url, headers={"X-API-Key": key.split(".")[0] + ".wrong"}).status_code == 401
    with engine.begin() as conn:
        other = create_api_key(conn, "portal-revoked", "portal")
    assert client.get(url, headers={"X-API-Key": other}).status_code == 200
    with engine.begin() as conn:
        revoke_api_key(conn, other.split(".")[0])
    assert client.get(url, headers={"X-API-Key": other}).status_code == 401
    KEYS.forget()


def test_anonymous_callers_can_get_a_budget(
    location_demo_settings: Settings, tmp_path: Path
) -> None:
    app = make_app(location_demo_settings, api_rate_limit_per_minute=2, data_dir=tmp_path)
    client = app.test_client()
    address = {"REMOTE_ADDR": "192.0.2.77"}
    statuses = [
        client.get("/api/v1/addresses?q=strada", environ_base=address).status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    other = client.get("/api/v1/addresses?q=strada", environ_base={"REMOTE_ADDR": "192.0.2.78"})
    assert other.status_code == 200


def test_budgets_are_not_shared_between_databases(
    location_demo_settings: Settings, settings: Settings, tmp_path: Path
) -> None:
    """Two deployments (or two concurrent test runs) with one data folder but their own
    databases count their clients' requests apart; the workers of one deployment (two
    apps on the same settings) share one count."""
    from webmap.auth import budget_folder

    first = make_app(location_demo_settings, api_rate_limit_per_minute=2, data_dir=tmp_path)
    twin = make_app(location_demo_settings, api_rate_limit_per_minute=2, data_dir=tmp_path)
    other = make_app(settings, api_rate_limit_per_minute=2, data_dir=tmp_path)
    address = {"REMOTE_ADDR": "192.0.2.90"}

    def status(app: Flask) -> int:
        return app.test_client().get("/api/v1/addresses?q=strada", environ_base=address).status_code

    assert [status(first), status(twin), status(first)] == [200, 200, 429]
    assert [status(other), status(other), status(other)] == [200, 200, 429]
    folders = {budget_folder(app.extensions["urbangis"].settings) for app in (first, twin, other)}
    assert len(folders) == 2 and all(f.parent == tmp_path.resolve() / "ratelimit" for f in folders)


def test_cors_for_the_configured_origins(client: FlaskClient, sample: dict[str, Any]) -> None:
    url = f"/api/v1/parcels/{sample['number']}"
    allowed = client.get(url, headers={"Origin": PORTAL})
    assert allowed.headers["Access-Control-Allow-Origin"] == PORTAL
    assert "Origin" in allowed.headers["Vary"]
    foreign = client.get(url, headers={"Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in foreign.headers
    preflight = client.options(
        "/api/v1/location-check",
        headers={
            "Origin": PORTAL,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-api-key",
        },
    )
    assert preflight.status_code == 200
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "X-API-Key" in preflight.headers["Access-Control-Allow-Headers"]
    error = client.post("/api/v1/location-check", data=b"{", headers={"Origin": PORTAL})
    assert error.status_code == 400 and error.headers["Access-Control-Allow-Origin"] == PORTAL
    indicators = client.get("/api/v1/indicators", headers={"Origin": PORTAL})
    assert indicators.status_code == 200
    assert indicators.headers["Access-Control-Allow-Origin"] == PORTAL, "every /api/v1 route"


def test_api_queries_run_under_the_statement_timeout(location_demo_settings: Settings) -> None:
    app = make_app(location_demo_settings, api_statement_timeout_ms=150)
    with app.test_request_context("/api/v1/"):
        with api_connection() as conn:
            assert conn.execute(sa.text("SHOW statement_timeout")).scalar_one() == "150ms"
        with (
            pytest.raises(DatabaseError, match="longer than 150 ms"),
            api_connection() as conn,
        ):
            conn.execute(sa.text("SELECT pg_sleep(2)"))


# -- the document and its page -------------------------------------------------------------
def test_openapi_document_describes_every_route(client: FlaskClient, app: Flask) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = body(response)
    assert document["openapi"].startswith("3.1")
    routes = {
        rule.rule.replace("<path:cadastral_number>", "{cadastral_number}")
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/") and rule.endpoint.startswith("api_v1.")
    }
    documented = set(document["paths"]) | {"/api/v1/", "/api/v1/openapi.json", "/api/v1/docs"}
    assert routes <= documented
    request_schema = document["components"]["schemas"]["LocationCheckRequest"]
    numbers = request_schema["oneOf"][0]["properties"]["cadastral_numbers"]
    assert numbers["maxItems"] == 5  # the app's setting


def test_docs_page_uses_local_assets_only(client: FlaskClient) -> None:
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    html = response.data.decode()
    assert "/api/v1/openapi.json" in html
    assert "https://" not in html.replace("http://localhost/api/v1/openapi.json", "")
    if "swagger-ui-bundle.js" in html:
        script = client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js")
        assert script.status_code == 200
    assert client.get("/static/api-docs.js").status_code == 200


def test_clerk_validation_needs_a_clerk(
    client: FlaskClient, engine: Engine, sample: dict[str, Any]
) -> None:
    payload = {"kind": "AC", "cadastral_numbers": [sample["number"]]}
    assert client.post("/api/v1/validations/location", json=payload).status_code == 403
    with engine.begin() as conn:
        create_staff_user(conn, "clerk-api-test", "secret-clerk", "clerk")
    try:
        assert (
            client.post(
                "/auth/login", json={"login": "clerk-api-test", "password": "secret-clerk"}
            ).status_code
            == 200
        )
        report = client.post("/api/v1/validations/location", json=payload)
        assert report.status_code == 200
        assert {c["rule"] for c in body(report)["checks"]} >= {"parcels_exist", "zones"}
        form = client.post(
            "/api/v1/validations/location",
            data=orjson.dumps(payload),
            content_type="text/plain",
        )
        assert form.status_code == 400 and body(form)["locator"] == "Content-Type"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM core.staff_user WHERE login = 'clerk-api-test'"))
