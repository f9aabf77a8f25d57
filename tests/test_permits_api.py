"""HTTP: clerk endpoints (roles, CSRF, 409 on stale saves) and the public register.

The public side is checked for personal data: the register (HTML, CSV, GeoJSON) and the
OGC API Features "acts" collection never carry an applicant's name or CNP unless the
deployment opts in to publishing names (and then only the name).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import URL

from gis_core import migrate
from gis_core.access import create_api_key
from gis_core.db import create_engine
from gis_core.settings import Settings
from tests.conftest import drop_database, fresh_database, settings_for, unique_database_name
from tests.test_permits_public import add_parcel
from webmap.app import create_app
from webmap.auth import create_staff_user

NAME = "Exemplescu Maria"
CNP = "2900101123456"


@pytest.fixture(scope="module")
def api_settings(server_url: URL) -> Iterator[Settings]:
    name = unique_database_name("permits_api")  # concurrent runs never share it
    settings = settings_for(fresh_database(server_url, name), 3844)
    engine = create_engine(settings)
    migrate.upgrade(engine, 3844)
    with engine.begin() as conn:
        for index, number in enumerate(("830001", "830002", "830003")):
            add_parcel(conn, number, x=393_000 + 40 * index)
        create_staff_user(conn, "ana", "parola-ana-1", "clerk")
        create_staff_user(conn, "ion", "parola-ion-1", "clerk")
        create_staff_user(conn, "vlad", "parola-vlad-1", "planner")
    engine.dispose()
    yield settings
    drop_database(server_url, name)


@pytest.fixture(scope="module")
def app(api_settings: Settings) -> Flask:
    return create_app(api_settings)


def _login(app: Flask, login: str, password: str) -> tuple[FlaskClient, str]:
    client = app.test_client()
    response = client.post("/auth/login", json={"login": login, "password": password})
    assert response.status_code == 200, response.get_data(as_text=True)
    token = client.get("/api/v1/acts/csrf").get_json()["csrf_token"]
    return client, token


def _create(client: FlaskClient, token: str, **fields: object) -> dict:
    body = {
        "kind": "CU",
        "number": "1",
        "issued_on": "2024-03-15",
        "validity_months": 12,
        "purpose": "Construire locuință",
        "cadastral_numbers": ["830001"],
        "applicant": {"name": NAME, "national_id": CNP, "phone": "0700000000"},
        **fields,
    }
    response = client.post("/api/v1/acts", json=body, headers={"X-CSRF-Token": token})
    assert response.status_code == 201, response.get_data(as_text=True)
    return dict(response.get_json())


def test_only_clerks_manage_acts(app: Flask, api_settings: Settings) -> None:
    anonymous = app.test_client()
    assert anonymous.post("/api/v1/acts", json={}).status_code == 401
    assert anonymous.get("/api/v1/acts/queue").status_code == 401
    client = app.test_client()
    client.post("/auth/login", json={"login": "vlad", "password": "parola-vlad-1"})
    assert client.get("/api/v1/acts/queue").status_code == 403
    engine = create_engine(api_settings)
    with engine.begin() as conn:
        portal_key = create_api_key(conn, "portal", "portal")
        clerk_key = create_api_key(conn, "registratura", "clerk")
    engine.dispose()
    assert (
        app.test_client().get("/api/v1/acts/queue", headers={"X-API-Key": portal_key}).status_code
        == 403
    )
    # An API key carries no ambient credentials: no CSRF token needed.
    response = app.test_client().post(
        "/api/v1/acts",
        json={"kind": "CU", "number": "900", "requested_on": "2024-02-01"},
        headers={"X-API-Key": clerk_key},
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["status"] == "requested"


def test_csrf_protects_signed_in_browsers(app: Flask) -> None:
    client, token = _login(app, "ana", "parola-ana-1")
    body = {"kind": "CU", "number": "901", "requested_on": "2024-02-01"}
    assert client.post("/api/v1/acts", json=body).status_code == 403
    wrong = client.post("/api/v1/acts", json=body, headers={"X-CSRF-Token": "x" * 43})
    assert wrong.status_code == 403
    assert "CSRF" in wrong.get_json()["description"]
    page = client.get("/clerk/queue", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert f'name="csrf_token" value="{token}"' in page.get_data(as_text=True)


def test_two_clerks_saving_the_same_act(app: Flask) -> None:
    ana, ana_token = _login(app, "ana", "parola-ana-1")
    ion, ion_token = _login(app, "ion", "parola-ion-1")
    act = _create(ana, ana_token, number="10")
    url = f"/api/v1/acts/{act['id']}"
    seen_by_ana = ana.get(url).get_json()
    seen_by_ion = ion.get(url).get_json()
    assert seen_by_ana["version"] == seen_by_ion["version"] == 1
    saved = ana.patch(
        url,
        json={"version": 1, "purpose": "Alipire imobile"},
        headers={"X-CSRF-Token": ana_token},
    )
    assert saved.status_code == 200 and saved.headers["ETag"] == '"2"'
    late = ion.patch(
        url,
        json={"purpose": "Dezmembrare"},
        headers={"X-CSRF-Token": ion_token, "If-Match": '"1"'},
    )
    assert late.status_code == 409
    assert "version 2" in late.get_json()["description"]
    assert ion.get(url).get_json()["purpose"] == "Alipire imobile"
    retry = ion.patch(
        url,
        json={"purpose": "Dezmembrare", "version": 2},
        headers={"X-CSRF-Token": ion_token},
    )
    assert retry.status_code == 200 and retry.get_json()["version"] == 3


def test_extend_and_cancel_over_http(app: Flask) -> None:
    ana, token = _login(app, "ana", "parola-ana-1")
    act = _create(ana, token, number="20")
    url = f"/api/v1/acts/{act['id']}"
    late = ana.post(
        f"{url}/extend",
        json={"version": 1, "months": 6, "requested_on": "2025-03-10"},
        headers={"X-CSRF-Token": token},
    )
    assert late.status_code == 422
    assert late.get_json()["locator"] == "requested_on"
    ok = ana.post(
        f"{url}/extend",
        json={"version": 1, "months": 6, "requested_on": "2025-01-10"},
        headers={"X-CSRF-Token": token},
    )
    assert ok.status_code == 200 and ok.get_json()["extended_until"] == "2025-09-14"
    cancelled = ana.post(
        f"{url}/cancel", json={"version": 2, "reason": "anulat de instanță"},
        headers={"X-CSRF-Token": token},
    )  # fmt: skip
    assert cancelled.get_json()["status"] == "cancelled"


def test_queue_over_http(app: Flask) -> None:
    ana, token = _login(app, "ana", "parola-ana-1")
    act = _create(ana, token, number="30", cadastral_numbers="839999")
    items = ana.get("/api/v1/acts/queue").get_json()["items"]
    (item,) = [i for i in items if i["act_id"] == act["id"]]
    bad = ana.post(
        f"/api/v1/acts/queue/{item['id']}/resolve",
        json={"cadastral_numbers": "830002"},
        headers={"X-CSRF-Token": token},
    )
    assert bad.status_code == 422
    form = ana.post(
        f"/clerk/queue/{item['id']}",
        data={"csrf_token": token, "cadastral_numbers": "830002"},
    )
    assert form.status_code == 303
    links = ana.get(f"/api/v1/acts/{act['id']}").get_json()["links"]
    assert [(link["cadastral_number"], link["method"]) for link in links] == [("830002", "manual")]
    forged = app.test_client().post(f"/clerk/queue/{item['id']}", data={"csrf_token": token})
    assert forged.status_code == 401


def _register_outputs(client: FlaskClient) -> list[str]:
    pages = [
        client.get("/register/", headers={"Accept": "text/html"}),
        client.get("/register/CU/2024/3", headers={"Accept": "text/html"}),
        client.get("/register/CU/2024/3.csv"),
        client.get("/register/CU/2024/3.geojson"),
        client.get("/register/AC/2024/3.geojson"),
        client.get(
            "/ogc/features/collections/acts/items?limit=1000",
            headers={"Accept": "application/geo+json"},
        ),
    ]
    for page in pages:
        assert page.status_code == 200, page.get_data(as_text=True)[:300]
    return [page.get_data(as_text=True) for page in pages]


def test_public_register_lists_the_month_without_personal_data(
    app: Flask, api_settings: Settings
) -> None:
    ana, token = _login(app, "ana", "parola-ana-1")
    _create(ana, token, number="41", issued_on="2024-03-20", cadastral_numbers="830003")
    _create(ana, token, number="40", issued_on="2024-03-05", cadastral_numbers="830003")
    public = app.test_client()
    html, month, text, geojson, _, features = _register_outputs(public)
    for output in (html, month, text, geojson, features):
        assert NAME not in output and CNP not in output and "0700000000" not in output
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff")), delimiter=";"))
    march = [row for row in rows if row["number"] in ("40", "41")]
    assert [row["number"] for row in march] == ["40", "41"]  # order of issue
    assert march[0]["issued_on"] == "05.03.2024"
    assert march[0]["cadastral_numbers"] == "830003"
    assert "applicant" not in rows[0]
    collection = orjson.loads(geojson)
    numbers = [f["properties"]["number"] for f in collection["features"]]
    assert numbers.index("40") < numbers.index("41")
    assert all(f["geometry"]["type"] == "MultiPolygon" for f in collection["features"])
    # The register only lists acts issued in that month.
    assert public.get("/register/CU/2024/4.csv").get_data(as_text=True).count("\n") == 1
    assert public.get("/register/XX/2024/3.csv").status_code == 400
    # Staff see the applicant in the OGC collection; the public does not.
    staff = ana.get(
        "/ogc/features/collections/acts/items?limit=1000",
        headers={"Accept": "application/geo+json"},
    )
    assert NAME in staff.get_data(as_text=True)


def test_names_only_when_the_deployment_allows(api_settings: Settings) -> None:
    settings = api_settings.model_copy(update={"publish_applicant_names": True})
    client = create_app(settings).test_client()
    text = client.get("/register/CU/2024/3.csv").get_data(as_text=True)
    assert NAME in text and CNP not in text and "0700000000" not in text
    assert "applicant" in text.splitlines()[0]


def test_lon_lat_outputs_of_an_act_are_its_transdatro_twin(app: Flask) -> None:
    """The clerk's view, the register's GeoJSON and the OGC acts collection all give the
    site plan transformed with TransDatRO (the ETRS89 twin), not PROJ's default path."""
    import numpy as np
    import shapely

    from gis_core.crs.transform import transform_geometries

    ring = [[393_082.0, 585_002.0], [393_098.0, 585_002.0], [393_098.0, 585_018.0],
            [393_082.0, 585_002.0]]  # fmt: skip
    ana, token = _login(app, "ana", "parola-ana-1")
    act = _create(
        ana,
        token,
        number="60",
        issued_on="2024-05-06",
        cadastral_numbers="830003",
        footprint={"type": "Polygon", "coordinates": [ring]},
        crs="EPSG:3844",
    )
    expected = transform_geometries(np.array([shapely.Polygon(ring)], dtype=object), 3844, 4258)[
        0
    ].exterior.coords

    def assert_twin(geometry: dict) -> None:
        assert geometry["type"] == "MultiPolygon" and "crs" not in geometry
        got = geometry["coordinates"][0][0]
        assert len(got) == len(expected)
        for (lon, lat), (x, y) in zip(got, expected, strict=True):
            assert abs(lon - x) < 2e-7 and abs(lat - y) < 2e-7  # ~2 cm; PROJ is ~1 m off

    assert_twin(act["footprint"])
    public = app.test_client()
    register = orjson.loads(public.get("/register/CU/2024/5.geojson").data)
    (feature,) = [f for f in register["features"] if f["properties"]["number"] == "60"]
    assert_twin(feature["geometry"])
    collection = orjson.loads(
        public.get(
            "/ogc/features/collections/acts/items?limit=1000",
            headers={"Accept": "application/geo+json"},
        ).data
    )
    (item,) = [f for f in collection["features"] if f["properties"]["number"] == "60"]
    assert_twin(item["geometry"])
