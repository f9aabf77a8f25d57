"""The HTTP behaviours the services rely on, through each real server ``urbangis serve``
can run: streamed feature pages, HEAD, ETag/304 on tiles (answered by the cached-tile
middleware on the second hit), XML POST bodies, and error answers.

Flask's test client cannot show these: a server may buffer, drop or reframe a streamed
body, mishandle a body-less status, or read a POST body short.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from lxml import etree

from gis_core.settings import Settings
from tests.test_layers_data import PARCEL_COUNT, layers_settings
from tests.test_serve import free_port, server_environment, stop_server
from tests.test_serve_threads import wait_ready
from tests.test_tiles import tile_of

__all__ = ["layers_settings"]
URBANGIS = Path(sys.executable).parent / "urbangis"
WFS = "http://www.opengis.net/wfs/2.0"


@pytest.fixture(scope="module", params=["granian", "gunicorn"])
def port(
    request: pytest.FixtureRequest,
    layers_settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[int]:
    """``urbangis serve`` with the given server on the fixture municipality."""
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    environment = server_environment(
        layers_settings, HOST="127.0.0.1", PORT=str(port), WORKERS="1", SERVER=request.param
    )
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(URBANGIS), "serve"], env=environment, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            wait_ready(port, process, log)
            yield port
        finally:
            stop_server(process)
    assert process.returncode == 0, log.read_text()


def exchange(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_a_big_feature_page_streams_whole(port: int) -> None:
    path = f"/ogc/features/collections/parcels/items?limit={PARCEL_COUNT + 10}"
    status, headers, body = exchange(port, "GET", path)
    assert status == 200, body[:300]
    assert headers["content-type"].startswith("application/geo+json")
    page = orjson.loads(body)
    assert page["numberReturned"] == len(page["features"]) > 0


def test_head_answers_headers_without_a_body(port: int) -> None:
    status, headers, body = exchange(port, "HEAD", "/ogc/features/collections")
    assert (status, body) == (200, b"")
    assert headers["content-type"].startswith("application/json")


def test_tiles_answer_304_to_their_etag(port: int) -> None:
    z, x, y = tile_of(16)
    path = f"/tiles/parcels/{z}/{x}/{y}.mvt"
    status, headers, body = exchange(port, "GET", path)
    assert status == 200 and body
    cached_status, cached_headers, cached_body = exchange(port, "GET", path)
    assert (cached_status, cached_body) == (200, body), "the cached tile is the same tile"
    assert cached_headers["etag"] == headers["etag"]
    status, _, body = exchange(port, "GET", path, headers={"If-None-Match": headers["etag"]})
    assert (status, body) == (304, b"")


def test_xml_post_bodies_are_read_whole(port: int) -> None:
    query = f'<wfs:Query typeNames="parcels" xmlns:wfs="{WFS}"/>'
    padding = "<!--" + "x" * 200_000 + "-->"  # past one socket read
    document = (
        f'<wfs:GetFeature service="WFS" version="2.0.0" count="3" xmlns:wfs="{WFS}">'
        f"{padding}{query}</wfs:GetFeature>"
    )
    status, _, body = exchange(
        port, "POST", "/ogc/wfs", document.encode(), {"Content-Type": "application/xml"}
    )
    assert status == 200, body[:300]
    root = etree.fromstring(body)
    assert root.get("numberReturned") == "3"


def test_errors_are_answers_not_dropped_connections(port: int) -> None:
    status, headers, body = exchange(port, "GET", "/ogc/features/collections/nope/items")
    assert status == 404
    assert headers["content-type"].startswith("application/")
    assert body
