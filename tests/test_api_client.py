"""The typed Python client against a real HTTP server (werkzeug, on a free port)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import date

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from gis_core.db import create_engine
from gis_core.settings import Settings
from webmap.app import create_app
from webmap.auth import create_api_key
from webmap.client import ApiError, UrbanGisClient


@pytest.fixture(scope="module")
def server(location_demo_settings: Settings) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(location_demo_settings)
    httpd = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def key(location_demo_settings: Settings) -> str:
    engine = create_engine(location_demo_settings)
    with engine.begin() as conn:
        made = create_api_key(conn, "client-test", "portal", rate_limit_per_minute=1000)
    engine.dispose()
    return made


@pytest.fixture(scope="module")
def known(location_demo_settings: Settings) -> tuple[str, str]:
    engine = create_engine(location_demo_settings)
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT cadastral_number, address_text FROM cadastre.parcel "
                "WHERE valid_to IS NULL AND address_text IS NOT NULL ORDER BY id LIMIT 1"
            )
        ).one()
    engine.dispose()
    return row[0], row[1]


def test_client_calls_every_endpoint(server: str, key: str, known: tuple[str, str]) -> None:
    number, address = known
    client = UrbanGisClient(server, api_key=key)
    answer = client.check_numbers([number, "999999999"], purpose="construire locuință")
    assert [p.cadastral_number for p in answer.parcels] == [number]
    assert answer.not_found == ("999999999",)
    assert answer.verdict in ("ok", "attention", "blocked")
    assert answer.map_url.endswith(f"/map?parcels={number}")
    assert answer.zones and answer.zones[0].plan_title
    assert answer.valid_for == date.today()
    assert client.parcel(number, as_of=date(2024, 1, 1)).valid_for == date(2024, 1, 1)
    by_address = client.check_address(address)
    assert by_address.parcels[0].cadastral_number == number
    found = client.addresses(address.split(",")[0], limit=3)
    assert found and found[0].cadastral_number == number
    lon, lat = found[0].lon, found[0].lat
    assert lon is not None and lat is not None
    point = client.check_geometry({"type": "Point", "coordinates": [lon, lat]})
    assert point.raw["query"]["geometry_type"] == "Point"


def test_client_errors_name_the_field(server: str) -> None:
    client = UrbanGisClient(server)
    with pytest.raises(ApiError) as caught:
        client.check_geometry({"type": "Point", "coordinates": [26.1, 44.43]})
    assert caught.value.status == 422 and caught.value.locator == "geometry"
    with pytest.raises(ApiError) as missing:
        client.parcel("999999999")
    assert missing.value.status == 404
    with pytest.raises(ApiError) as refused:
        UrbanGisClient(server, api_key="bad.key").parcel("1")
    assert refused.value.status == 401
    with pytest.raises(ApiError) as unreachable:
        UrbanGisClient("http://127.0.0.1:9", timeout=2).parcel("1")
    assert unreachable.value.status == 0
