"""The Flask app: factory, /healthz, the first map page, its GeoJSON layers and errors.

The app under test uses its own engine (its own connections), so the rows the map must
show are committed by a module fixture and deleted again afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from flask import Flask, Response
from flask.testing import FlaskClient
from sqlalchemy.engine import URL, Engine

from gis_core import migrate
from gis_core.errors import InvalidParameter, MissingParameter
from gis_core.settings import Settings
from tests.conftest import drop_database, fresh_database, unique_database_name
from webmap import first_map, health
from webmap.app import create_app, tile_host
from webmap.assets import assets_installed
from webmap.first_map import LAYERS, BBox, layer_geojson, parse_bbox

# A small block in Cluj-Napoca (ETRS89 degrees) where the fixture puts its features.
WEST, SOUTH, EAST, NORTH = 23.580, 46.760, 23.600, 46.775
INSIDE = f"{WEST},{SOUTH},{EAST},{NORTH}"
FAR_AWAY = "26.0,44.3,26.2,44.5"  # Bucharest: nothing of ours there
PARCEL_FIELDS = {"cadastral_number", "measured_area", "address_text"}


def _box(west: float, south: float, east: float, north: float) -> str:
    return (
        f"SRID=4258;MULTIPOLYGON((({west} {south},{east} {south},{east} {north},"
        f"{west} {north},{west} {south})))"
    )


@pytest.fixture(scope="module")
def map_rows(engine: Engine, settings: Settings) -> Iterator[dict[str, Any]]:
    """A UAT, its intravilan, a plan with zones, a restriction and parcels (committed)."""
    siruta = settings.uat_siruta
    ids: dict[str, Any] = {}
    insert_twinned = (
        "INSERT INTO {table} ({columns}, geom_etrs89, geom) VALUES ({values}, "
        "ST_GeomFromEWKT(:g), ST_Transform(ST_GeomFromEWKT(:g), 3844)) RETURNING id"
    )

    def add(conn: sa.Connection, table: str, row: dict[str, Any], geom: str) -> int:
        sql = insert_twinned.format(
            table=table, columns=", ".join(row), values=", ".join(f":{name}" for name in row)
        )
        return int(conn.execute(sa.text(sql), {**row, "g": geom}).scalar_one())

    with engine.begin() as conn:
        ids["admin_unit"] = add(
            conn,
            "core.admin_unit",
            {"siruta": siruta, "name": "Cluj-Napoca", "level": "uat"},
            _box(23.45, 46.70, 23.75, 46.85),
        )
        ids["intravilan"] = add(
            conn,
            "core.intravilan",
            {"uat_siruta": siruta, "name": "Intravilan test"},
            _box(23.50, 46.72, 23.70, 46.82),
        )
        plan = conn.execute(
            sa.text(
                "INSERT INTO urbanism.plan (uat_siruta, plan_type, title) "
                "VALUES (:s, 'PUG', 'PUG test webmap') RETURNING id"
            ),
            {"s": siruta},
        ).scalar_one()
        ids["plan"] = plan
        regulation = conn.execute(
            sa.text(
                "INSERT INTO urbanism.regulation (plan_id, utr_code, function, pot_max) "
                "VALUES (:p, 'L1a', 'locuire individuală', 35) RETURNING id"
            ),
            {"p": plan},
        ).scalar_one()
        add(
            conn,
            "urbanism.zone",
            {"plan_id": plan, "regulation_id": regulation, "utr_code": "L1a"},
            _box(WEST, SOUTH, EAST, NORTH),
        )
        ids["restriction"] = add(
            conn,
            "urbanism.restriction",
            {
                "uat_siruta": siruta,
                "kind": "heritage",
                "name": "Zona protejată test",
                "legal_source": "LMI 2015",
                "description": "internal note",
            },
            _box(23.585, 46.762, 23.595, 46.770),
        )
        parcels = []
        for index in range(3):
            west = WEST + 0.001 + index * 0.002
            parcels.append(
                add(
                    conn,
                    "cadastre.parcel",
                    {
                        "uat_siruta": siruta,
                        "cadastral_number": f"90000{index}",
                        "measured_area": 500 + index,
                        "address_text": f"Str. Test nr. {index + 1}",
                        "land_book_number": f"CF-secret-{index}",
                        "notes": "not for the public",
                    },
                    _box(west, SOUTH + 0.001, west + 0.001, SOUTH + 0.0015),
                )
            )
        # A closed (historical) version: never on the map, never counted.
        parcels.append(
            add(
                conn,
                "cadastre.parcel",
                {
                    "uat_siruta": siruta,
                    "cadastral_number": "899999",
                    "valid_from": "2020-01-01",
                    "valid_to": "2021-01-01",
                },
                _box(WEST + 0.01, SOUTH + 0.001, WEST + 0.011, SOUTH + 0.0015),
            )
        )
        ids["parcels"] = parcels
    yield ids
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM cadastre.parcel WHERE id = ANY(:ids)"), {"ids": parcels})
        conn.execute(
            sa.text("DELETE FROM urbanism.restriction WHERE id = :i"), {"i": ids["restriction"]}
        )
        conn.execute(sa.text("DELETE FROM urbanism.zone WHERE plan_id = :p"), {"p": plan})
        conn.execute(sa.text("DELETE FROM urbanism.plan WHERE id = :p"), {"p": plan})
        conn.execute(sa.text("DELETE FROM core.intravilan WHERE id = :i"), {"i": ids["intravilan"]})
        conn.execute(sa.text("DELETE FROM core.admin_unit WHERE id = :i"), {"i": ids["admin_unit"]})


@pytest.fixture(scope="module")
def app(settings: Settings) -> Flask:
    app = create_app(settings)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


# -- the factory -------------------------------------------------------------------------
def test_create_app_starts_no_database(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    assert {rule.rule for rule in app.url_map.iter_rules()} >= {
        "/",
        "/map",
        "/healthz",
        "/map/data/<layer>.geojson",
        "/static/vendor/<path:filename>",
    }
    assert list(tmp_path.iterdir()) == [], "create_app must not create or start a cluster"


def test_wsgi_app_is_built_on_first_access(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import webmap.wsgi

    monkeypatch.setattr(webmap.wsgi, "_app", None)
    monkeypatch.setenv("URBANGIS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("URBANGIS_UAT_NAME", "Turda")
    app = webmap.wsgi.app
    assert isinstance(app, Flask)
    assert webmap.wsgi.app is app, "one app per process"
    assert app.extensions["urbangis"].settings.uat_name == "Turda"
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(AttributeError):
        _ = webmap.wsgi.not_an_app


def test_security_headers(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "style-src 'self'" in policy
    assert "https://tile.openstreetmap.org" in policy.split("img-src")[1].split(";")[0]
    assert "unsafe-inline" not in policy


def test_a_view_keeps_the_security_header_it_set(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/framed")
    def framed() -> Response:
        response = Response("ok")
        response.headers["x-frame-options"] = "SAMEORIGIN"
        return response

    headers = app.test_client().get("/framed").headers
    assert headers.getlist("X-Frame-Options") == ["SAMEORIGIN"]
    assert headers.getlist("X-Content-Type-Options") == ["nosniff"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://tile.openstreetmap.org/{z}/{x}/{y}.png", "https://tile.openstreetmap.org"),
        ("https://{s}.tile.example.org/{z}/{x}/{y}.png", "https://*.tile.example.org"),
        ("http://10.0.0.5:8080/tiles/{z}/{x}/{y}.png", "http://10.0.0.5:8080"),
        ("/tiles/{z}/{x}/{y}.png", None),
        ("", None),
    ],
)
def test_tile_host_for_the_policy(url: str, expected: str | None) -> None:
    assert tile_host(url) == expected


# -- /healthz ----------------------------------------------------------------------------
def test_healthz_ok(client: FlaskClient, map_rows: dict[str, Any], engine: Engine) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["status"] == "ok"
    assert set(body["database"]) == {"postgresql", "postgis", "geos", "proj"}
    assert all(isinstance(value, str) and value for value in body["database"].values())
    assert body["schema"] == {
        "revision": migrate.head_revision(),
        "head": migrate.head_revision(),
        "up_to_date": True,
    }
    assert body["storage_srid"] == 3844
    assert body["uat_siruta"] == 54975
    assert isinstance(body["assets"], bool)
    assert body["counts_estimated"] is False
    assert set(body["counts"]) == {
        "parcels",
        "buildings",
        "zones",
        "restrictions",
        "plans",
        "addresses",
    }
    with engine.connect() as conn:
        current = conn.execute(
            sa.text("SELECT count(*) FROM cadastre.parcel WHERE valid_to IS NULL")
        ).scalar_one()
    assert body["counts"]["parcels"] == current >= 3  # the closed version is not counted
    assert body["counts"]["zones"] >= 1
    assert body["counts"]["restrictions"] >= 1


def test_healthz_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    settings = Settings(database_url="postgresql://nobody@127.0.0.1:1/x", data_dir=tmp_path)
    response = create_app(settings).test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "error"
    assert "database" in body["reason"]
    assert body["counts"] is None


@pytest.fixture
def empty_database(server_url: URL) -> Iterator[URL]:
    name = unique_database_name("empty")
    try:
        yield fresh_database(server_url, name)
    finally:
        drop_database(server_url, name)


def test_healthz_503_when_the_database_is_not_migrated(empty_database: URL, tmp_path: Path) -> None:
    settings = Settings(
        database_url=empty_database.render_as_string(hide_password=False), data_dir=tmp_path
    )
    app = create_app(settings)
    try:
        response = app.test_client().get("/healthz")
    finally:
        app.extensions["urbangis"].engine.dispose()
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "error"
    assert "urbangis db upgrade" in body["reason"]
    assert body["schema"]["up_to_date"] is False
    assert body["schema"]["revision"] is None
    assert "postgresql" in body["database"]


def test_counts_fall_back_to_statistics_for_big_tables(
    engine: Engine, map_rows: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health, "EXACT_LIMIT", 1)
    with engine.begin() as conn:
        # Stale statistics: the capped count notices the table is "big" by itself.
        rows, estimated = health.count_rows(conn, "cadastre.parcel", True)
        assert estimated is True
        assert rows >= 2
        conn.execute(sa.text("ANALYZE cadastre.parcel"))
        rows, estimated = health.count_rows(conn, "cadastre.parcel", True)
        assert estimated is True
        assert rows >= 3  # reltuples times the share of current rows, rounded


def test_assets_missing_is_visible(settings: Settings, tmp_path: Path) -> None:
    app = create_app(settings)
    app.config["URBANGIS_VENDOR_DIR"] = str(tmp_path / "no-vendor")
    client = app.test_client()
    assert client.get("/healthz").get_json()["assets"] is False
    page = client.get("/map")
    assert page.status_code == 200
    assert "scripts/install-assets" in page.get_data(as_text=True)
    assert client.get("/static/vendor/leaflet/leaflet.js").status_code == 404


# -- the page ----------------------------------------------------------------------------
class _Assets(HTMLParser):
    """Collects what a page loads: script sources and link targets."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.links: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script":
            if found.get("src"):
                self.scripts.append(found["src"] or "")
            else:
                self.inline_scripts += 1
        if tag == "link" and found.get("href"):
            self.links.append(found["href"] or "")


@pytest.mark.parametrize("path", ["/map", "/"])
def test_map_page_loads_only_our_own_assets(
    client: FlaskClient, map_rows: dict[str, Any], path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    parsed = _Assets()
    parsed.feed(html)
    assert "/static/vendor/leaflet/leaflet.js" in parsed.scripts
    assert "/static/map.js" in parsed.scripts
    assert parsed.inline_scripts == 0, "the CSP forbids inline scripts"
    for url in parsed.scripts:
        assert url.startswith("/static/"), url
    for url in parsed.links:
        assert "http" not in url, url
    assert not re.search(r"<(script|link)[^>]+(src|href)=\"https?:", html)
    assert "Date sintetice" not in html  # the attribution line is built by map.js
    for url in [*parsed.scripts, *parsed.links]:
        if url.startswith("/static/") and (
            not url.startswith("/static/vendor/")
            or assets_installed(Path(client.application.config["URBANGIS_VENDOR_DIR"]))
        ):
            assert client.get(url).status_code == 200, url


def test_map_page_opens_on_the_uat(client: FlaskClient, map_rows: dict[str, Any]) -> None:
    html = client.get("/map").get_data(as_text=True)
    extent = re.search(r'data-extent="([^"]+)"', html)
    assert extent is not None
    west, south, east, north = (float(value) for value in extent.group(1).split(","))
    assert (west, south, east, north) == pytest.approx((23.45, 46.70, 23.75, 46.85), abs=1e-6)
    assert 'data-data-url="/map/data/{layer}.geojson"' in html


def test_map_page_renders_without_a_database(tmp_path: Path) -> None:
    settings = Settings(database_url="postgresql://nobody@127.0.0.1:1/x", data_dir=tmp_path)
    response = create_app(settings).test_client().get("/map")
    assert response.status_code == 200
    assert 'id="map"' in response.get_data(as_text=True)


# -- GeoJSON layers ----------------------------------------------------------------------
def _layer(client: FlaskClient, name: str, bbox: str = INSIDE) -> dict[str, Any]:
    response = client.get(f"/map/data/{name}.geojson", query_string={"bbox": bbox})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/geo+json"
    body: dict[str, Any] = response.get_json(force=True)
    assert body["type"] == "FeatureCollection"
    return body


def test_parcels_carry_public_fields_only(client: FlaskClient, map_rows: dict[str, Any]) -> None:
    body = _layer(client, "parcels")
    numbers = {feature["properties"]["cadastral_number"] for feature in body["features"]}
    assert {"900000", "900001", "900002"} <= numbers
    assert "899999" not in numbers, "closed versions are history, not the map"
    for feature in body["features"]:
        assert set(feature["properties"]) == PARCEL_FIELDS
        assert feature["geometry"]["type"] == "MultiPolygon"
        assert "crs" not in feature["geometry"]
        lon, lat = feature["geometry"]["coordinates"][0][0][0]
        assert WEST - 0.01 < lon < EAST + 0.01 and SOUTH - 0.01 < lat < NORTH + 0.01
    first = next(f for f in body["features"] if f["properties"]["cadastral_number"] == "900000")
    assert first["properties"] == {
        "cadastral_number": "900000",
        "measured_area": 500,
        "address_text": "Str. Test nr. 1",
    }
    assert body["limitReached"] is False
    assert body["numberReturned"] == len(body["features"])


def test_zones_carry_function_from_the_regulation(
    client: FlaskClient, map_rows: dict[str, Any]
) -> None:
    features = _layer(client, "zones")["features"]
    ours = [f for f in features if f["properties"]["plan"] == "PUG test webmap"]
    assert [f["properties"] for f in ours] == [
        {"utr_code": "L1a", "function": "locuire individuală", "plan": "PUG test webmap"}
    ]


@pytest.mark.parametrize(
    ("layer", "fields"),
    [
        ("restrictions", {"kind", "name", "legal_source"}),
        ("boundary", {"name", "siruta"}),
        ("intravilan", {"name"}),
    ],
)
def test_other_layers(
    client: FlaskClient, map_rows: dict[str, Any], layer: str, fields: set[str]
) -> None:
    features = _layer(client, layer)["features"]
    assert features
    for feature in features:
        assert set(feature["properties"]) == fields


def test_nothing_outside_the_bbox(client: FlaskClient, map_rows: dict[str, Any]) -> None:
    for name in LAYERS:
        assert _layer(client, name, FAR_AWAY)["features"] == []


def test_feature_limit_is_hard(
    engine: Engine, settings: Settings, map_rows: dict[str, Any]
) -> None:
    import orjson

    bbox = parse_bbox(INSIDE)
    with engine.connect() as conn:
        body = orjson.loads(
            layer_geojson(conn, LAYERS["parcels"], bbox, siruta=settings.uat_siruta, limit=1)
        )
    assert len(body["features"]) == 1
    assert body["numberReturned"] == 1
    assert body["limitReached"] is True
    assert first_map.FEATURE_LIMIT == 5_000


@pytest.mark.parametrize(
    "bbox",
    [
        None,
        "",
        "1,2,3",
        "1,2,3,4,5",
        "a,b,c,d",
        "nan,46,24,47",
        "23,46,inf,47",
        "24,46,23,47",
        "23,47,24,46",
        "23,46,23,47",
        "-181,46,24,47",
        "23,-91,24,47",
        "23,46,24,91",
    ],
)
def test_bad_bbox_is_a_400_naming_bbox(client: FlaskClient, bbox: str | None) -> None:
    query = {} if bbox is None else {"bbox": bbox}
    response = client.get("/map/data/parcels.geojson", query_string=query)
    assert response.status_code == 400
    body = response.get_json()
    assert body["code"] in ("InvalidParameterValue", "MissingParameterValue")
    assert "bbox" in body["description"]
    assert body["locator"] == "bbox"


def test_bad_bbox_for_a_browser_is_html(client: FlaskClient) -> None:
    response = client.get(
        "/map/data/parcels.geojson?bbox=x", headers={"Accept": "text/html,*/*;q=0.8"}
    )
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert "bbox" in response.get_data(as_text=True)


@pytest.mark.parametrize("layer", ["buildings", "persons", "parcels;drop table x", "PARCELS"])
def test_unknown_layer_is_a_404(client: FlaskClient, layer: str) -> None:
    response = client.get(f"/map/data/{layer}.geojson", query_string={"bbox": INSIDE})
    assert response.status_code == 404
    assert response.get_json()["code"] == "NotFound"


def test_unknown_url_is_a_json_404(client: FlaskClient) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response.get_json() == {
        "code": "NotFound",
        "description": response.get_json()["description"],
    }


def test_layer_data_when_the_database_is_down(tmp_path: Path) -> None:
    settings = Settings(database_url="postgresql://nobody@127.0.0.1:1/x", data_dir=tmp_path)
    response = (
        create_app(settings)
        .test_client()
        .get("/map/data/parcels.geojson", query_string={"bbox": INSIDE})
    )
    assert response.status_code == 503
    assert set(response.get_json()) == {"code", "description"}


# -- bbox parsing, without HTTP ----------------------------------------------------------
def test_parse_bbox() -> None:
    assert parse_bbox(" 23.5, 46.7 ,23.6,46.8") == BBox(23.5, 46.7, 23.6, 46.8)
    assert parse_bbox("-180,-90,180,90") == BBox(-180, -90, 180, 90)
    with pytest.raises(MissingParameter):
        parse_bbox(None)
    with pytest.raises(InvalidParameter, match="bbox"):
        parse_bbox("1e400,0,1,1")


def test_sessions_are_opened_without_a_signer_when_there_is_no_cookie(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_signer(_app: Flask) -> None:
        raise AssertionError("the cookie signer was built for a request without a cookie")

    client = app.test_client()
    with monkeypatch.context() as patched:
        patched.setattr(app.session_interface, "get_signing_serializer", no_signer)
        assert client.get("/healthz").status_code == 200
        assert orjson.loads(client.get("/auth/whoami").data)["role"] == "public"
    client.set_cookie(app.config["SESSION_COOKIE_NAME"], "forged.value.sig")
    answer = client.get("/auth/whoami")
    assert orjson.loads(answer.data)["role"] == "public", "a forged cookie gives nothing"
