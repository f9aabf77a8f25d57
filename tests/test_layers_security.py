"""Per-role fields and rows: personal data never reaches a public answer, for every layer.

The fixture municipality plants recognisable personal data (an owner's name and CNP, an
apartment number, an internal note); each test looks for those exact strings in the
raw bytes of items, single features, queryables and tiles of every layer.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from urllib.parse import quote

import orjson
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from gis_core.db import create_engine
from gis_core.settings import Settings
from layers.catalog import PERSONAL_DATA_ROLES, Catalog
from layers.roles import ROLES, row_filter, visible_fields
from tests.test_layers_data import (
    APARTMENT,
    APPLICANT_NAME,
    OWNER_NAME,
    SECRET_NOTE,
    layers_app,
    layers_settings,
)
from webmap.auth import KEYS, create_api_key, create_staff_user, revoke_api_key

__all__ = ["layers_settings"]
CATALOG = Catalog(3844)
LAYER_IDS = [layer.id for layer in CATALOG.layers()]
PERSONAL = (OWNER_NAME.encode(), APARTMENT.encode(), APPLICANT_NAME.encode())
STAFF_ONLY = (SECRET_NOTE.encode(),)


@pytest.fixture(scope="module")
def app(layers_settings: Settings) -> Flask:
    return layers_app(layers_settings)


@pytest.fixture(scope="module")
def keys(layers_settings: Settings) -> Iterator[dict[str, str]]:
    """One API key per role, and one staff account per staff role (removed afterwards)."""
    engine = create_engine(layers_settings)
    with engine.begin() as conn:
        made = {role: create_api_key(conn, f"test-{role}", role) for role in ROLES}
        for role in ("clerk", "planner", "admin"):
            create_staff_user(conn, f"test-{role}", f"secret-{role}", role)
    yield made
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM core.api_key WHERE name LIKE 'test-%'"))
        conn.execute(sa.text("DELETE FROM core.staff_user WHERE login LIKE 'test-%'"))
    engine.dispose()
    KEYS.forget()


def as_role(client: FlaskClient, keys: dict[str, str], role: str, url: str) -> bytes:
    headers = {} if role == "public" else {"X-API-Key": keys[role]}
    response = client.get(url, headers=headers)
    assert response.status_code in (200, 204), (url, role, response.data[:300])
    return response.data


def centre_tile(z: int) -> str:
    lon, lat = 23.5875, 46.767
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return f"{z}/{x}/{y}"


# -- the rule itself ---------------------------------------------------------------------
@pytest.mark.parametrize("layer_id", LAYER_IDS)
@pytest.mark.parametrize("role", ROLES)
def test_personal_fields_only_for_clerks_and_admins(layer_id: str, role: str) -> None:
    layer = CATALOG.get(layer_id)
    personal = {f.name for f in visible_fields(layer, role) if f.personal}
    if role not in PERSONAL_DATA_ROLES:
        assert personal == set()
    assert {f.name for f in visible_fields(layer, role)} <= {f.name for f in layer.fields}


def test_unknown_roles_are_refused() -> None:
    with pytest.raises(Exception, match="unknown role"):
        visible_fields(CATALOG.get("parcels"), "superuser")
    with pytest.raises(Exception, match="unknown role"):
        row_filter(CATALOG.get("parcels"), "root")


# -- every service, every layer ----------------------------------------------------------
@pytest.mark.parametrize("layer_id", LAYER_IDS)
@pytest.mark.parametrize("role", ["public", "portal", "planner"])
def test_no_personal_data_in_items_items_html_or_tiles(
    app: Flask, keys: dict[str, str], layer_id: str, role: str
) -> None:
    client = app.test_client()
    base = f"/ogc/features/collections/{layer_id}"
    bodies = [
        as_role(client, keys, role, f"{base}/items?limit=1000"),
        as_role(client, keys, role, f"{base}/items?limit=1000&f=html"),
        as_role(client, keys, role, f"{base}/queryables"),
        as_role(client, keys, role, f"/tiles/{layer_id}/{centre_tile(18)}.mvt"),
        as_role(client, keys, role, f"/tiles/{layer_id}/{centre_tile(15)}.mvt"),
    ]
    features = orjson.loads(bodies[0])["features"]
    if features:
        bodies.append(as_role(client, keys, role, f"{base}/items/{features[0]['id']}"))
    for body in bodies:
        for secret in PERSONAL:
            assert secret not in body
        if role == "public":
            for secret in STAFF_ONLY:
                assert secret not in body
    for name in (b"owners", b"apartment", b"applicant"):
        assert name not in bodies[0]


def test_clerks_see_the_owners_the_public_does_not(app: Flask, keys: dict[str, str]) -> None:
    client = app.test_client()
    url = "/ogc/features/collections/parcels/items?cadastral_number=200001"
    clerk = orjson.loads(as_role(client, keys, "clerk", url))["features"][0]["properties"]
    assert clerk["owners"] == OWNER_NAME and clerk["notes"] == SECRET_NOTE
    public = orjson.loads(as_role(client, keys, "public", url))["features"][0]["properties"]
    assert "owners" not in public and "notes" not in public
    addresses = as_role(client, keys, "admin", "/ogc/features/collections/addresses/items")
    assert APARTMENT.encode() in addresses


@pytest.mark.parametrize(
    "query",
    [
        "filter=" + quote("owners LIKE '" + OWNER_NAME[:3] + "%'"),
        "sortby=owners",
        "properties=owners",
        "owners=x",
        f"filter={quote('notes IS NOT NULL')}",
    ],
)
def test_hidden_fields_cannot_be_probed_through_filters_or_sorting(
    app: Flask, keys: dict[str, str], query: str
) -> None:
    response = app.test_client().get(f"/ogc/features/collections/parcels/items?{query}")
    assert response.status_code == 400
    assert set(orjson.loads(response.data)) >= {"code", "description"}


def test_register_of_acts_by_role(app: Flask, keys: dict[str, str]) -> None:
    """Issued acts are public, applications in progress are not; the applicant is
    personal data (clerks and administrators only)."""
    client = app.test_client()
    url = "/ogc/features/collections/acts/items"

    def acts(role: str) -> dict[str, dict[str, object]]:
        body = orjson.loads(as_role(client, keys, role, url))
        return {str(f["properties"]["number"]): f["properties"] for f in body["features"]}

    public = acts("public")
    assert set(public) == {"17/2024", "5/2020"}
    assert public["17/2024"]["cadastral_numbers"] == "200011"
    assert public["17/2024"]["status"] == "issued"
    assert public["5/2020"]["status"] == "expired"  # stored as issued; validity ran out
    assert "applicant" not in public["17/2024"] and "address" not in public["17/2024"]
    assert set(acts("portal")) == {"17/2024", "88/2025", "5/2020"}
    assert "applicant" not in acts("planner")["17/2024"]
    assert acts("clerk")["88/2025"]["applicant"] == APPLICANT_NAME
    requested = client.get(url + "?filter=" + quote("status = 'requested'"))
    assert orjson.loads(requested.data)["numberReturned"] == 0
    dated = client.get(f"{url}?issued_on=2024-03-01")
    assert orjson.loads(dated.data)["numberReturned"] == 1


def test_draft_plans_only_for_planners(app: Flask, keys: dict[str, str]) -> None:
    client = app.test_client()
    url = "/ogc/features/collections/zones/items?limit=100"

    def codes(role: str) -> set[str]:
        body = orjson.loads(as_role(client, keys, role, url))
        return {f["properties"]["utr_code"] for f in body["features"]}

    assert "DRAFT1" not in codes("public") and "DRAFT1" not in codes("clerk")
    assert "DRAFT1" in codes("planner") and "DRAFT1" in codes("admin")


def test_staff_login_gives_the_role_and_logout_takes_it_back(
    app: Flask, keys: dict[str, str]
) -> None:
    client = app.test_client()
    url = "/ogc/features/collections/zones/items?limit=100"
    assert b"DRAFT1" not in client.get(url).data
    bad = client.post("/auth/login", json={"login": "test-planner", "password": "wrong"})
    assert bad.status_code == 401
    good = client.post("/auth/login", json={"login": "test-planner", "password": "secret-planner"})
    assert good.status_code == 200 and orjson.loads(good.data)["role"] == "planner"
    assert b"DRAFT1" in client.get(url).data
    client.post("/auth/logout")
    assert b"DRAFT1" not in client.get(url).data


def test_bad_and_revoked_keys_are_refused(
    app: Flask, keys: dict[str, str], layers_settings: Settings
) -> None:
    client = app.test_client()
    url = "/ogc/features/collections"
    assert client.get(url, headers={"X-API-Key": "nonsense"}).status_code == 401
    assert client.get(url, headers={"X-API-Key": "abc.def"}).status_code == 401
    engine = create_engine(layers_settings)
    with engine.begin() as conn:
        key = create_api_key(conn, "test-revoked", "portal")
    assert client.get(url, headers={"X-API-Key": key}).status_code == 200
    with engine.begin() as conn:
        revoke_api_key(conn, key.split(".")[0])
    engine.dispose()
    assert client.get(url, headers={"X-API-Key": key}).status_code == 401


def test_api_keys_have_a_rate_limit(app: Flask, layers_settings: Settings) -> None:
    engine = create_engine(layers_settings)
    with engine.begin() as conn:
        key = create_api_key(conn, "test-limited", "portal", rate_limit_per_minute=3)
    engine.dispose()
    client = app.test_client()
    statuses = [
        client.get("/auth/whoami", headers={"X-API-Key": key}).status_code for _ in range(5)
    ]
    assert statuses == [200, 200, 200, 429, 429]


def test_only_hashes_are_stored(keys: dict[str, str], layers_settings: Settings) -> None:
    engine = create_engine(layers_settings)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT key_id || secret_sha256 FROM core.api_key")).scalars()
        hashes = conn.execute(sa.text("SELECT password_hash FROM core.staff_user")).scalars()
        text = " ".join([*stored, *hashes])
    engine.dispose()
    for key in keys.values():
        assert key.split(".")[1] not in text
    assert "secret-clerk" not in text
