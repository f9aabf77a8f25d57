"""Vector tiles: content decoded by GDAL's MVT driver, caching, ETags, invalidation."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pyogrio
import pytest
import sqlalchemy as sa
from flask import Flask

from gis_core.db import create_engine
from gis_core.settings import Settings
from layers.tile_cache import TileCache, TileKey
from layers.tiles import TileAddress, tile_matrix_set
from tests.test_layers_data import GRID, layers_app, layers_settings
from webmap.app import state
from webmap.auth import KEYS, create_api_key
from webmap.ogc_features import layer_services
from webmap.tiles import CachedTiles

__all__ = ["layers_settings"]
LON, LAT = 23.5875, 46.767  # the centre of the synthetic municipality


def tile_of(z: int, lon: float = LON, lat: float = LAT) -> tuple[int, int, int]:
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


def decode(data: bytes, tmp_path: Path, z: int, x: int, y: int) -> dict[str, Any]:
    """Layer name → GeoDataFrame, read back by GDAL (the tile's z/x/y are in the path)."""
    path = tmp_path / str(z) / str(x) / f"{y}.pbf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {
        str(name): pyogrio.read_dataframe(path, layer=str(name))
        for name, _ in pyogrio.list_layers(path)
    }


@pytest.fixture(scope="module")
def app(layers_settings: Settings) -> Flask:
    return layers_app(layers_settings)


def test_parcel_tile_holds_the_parcels_of_the_tile(app: Flask, tmp_path: Path) -> None:
    z, x, y = tile_of(16)
    response = app.test_client().get(f"/tiles/parcels/{z}/{x}/{y}.mvt")
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.mapbox-vector-tile"
    layers = decode(response.data, tmp_path, z, x, y)
    parcels = layers["parcels"]
    assert 0 < len(parcels) <= GRID * GRID
    assert {"cadastral_number", "measured_area", "address"} <= set(parcels.columns)
    assert "owners" not in parcels.columns and "notes" not in parcels.columns


def test_fields_follow_the_zoom(app: Flask, tmp_path: Path) -> None:
    z, x, y = tile_of(14)
    data = app.test_client().get(f"/tiles/parcels/{z}/{x}/{y}.mvt").data
    columns = set(decode(data, tmp_path, z, x, y)["parcels"].columns)
    assert "cadastral_number" in columns and "address" not in columns


def test_features_are_identified_once(app: Flask, tmp_path: Path) -> None:
    """Parcels are identified by their cadastral number, so their tiles leave out the MVT
    feature id that would repeat it; zones carry their row id as the feature id."""
    z, x, y = tile_of(15)
    data = app.test_client().get(f"/tiles/zones,parcels/{z}/{x}/{y}.mvt").data
    layers = decode(data, tmp_path, z, x, y)
    parcels, zones = layers["parcels"], layers["zones"]
    assert parcels["cadastral_number"].is_unique and parcels["cadastral_number"].notna().all()
    assert parcels["mvt_id"].isna().all() and "id" not in parcels.columns
    assert zones["mvt_id"].notna().all() and zones["mvt_id"].is_unique


def test_several_layers_in_one_tile(app: Flask, tmp_path: Path) -> None:
    z, x, y = tile_of(15)
    data = app.test_client().get(f"/tiles/zones,parcels,restrictions/{z}/{x}/{y}.mvt").data
    layers = decode(data, tmp_path, z, x, y)
    assert {"zones", "parcels", "restrictions"} <= set(layers)
    assert "DRAFT1" not in set(layers["zones"]["utr_code"])


def test_empty_tiles_cost_nothing_and_say_so(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/tiles/parcels/15/0/0.mvt").status_code == 204
    z, x, y = tile_of(10)  # parcels start at zoom 13
    assert client.get(f"/tiles/parcels/{z}/{x}/{y}.mvt").status_code == 204


@pytest.mark.parametrize(
    "url", ["/tiles/parcels/23/0/0.mvt", "/tiles/parcels/3/8/0.mvt", "/tiles/parcels/3/0/9.mvt"]
)
def test_tile_addresses_are_checked(app: Flask, url: str) -> None:
    assert app.test_client().get(url).status_code == 400


def test_unknown_and_repeated_layers(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/tiles/nope/15/0/0.mvt").status_code == 404
    assert client.get("/tiles/parcels,parcels/15/0/0.mvt").status_code == 400


def test_etag_and_not_modified(app: Flask) -> None:
    z, x, y = tile_of(16)
    client = app.test_client()
    first = client.get(f"/tiles/parcels/{z}/{x}/{y}.mvt")
    etag = first.headers["ETag"]
    assert etag.startswith('W/"'), "a version's renderings may differ in feature order"
    assert first.headers["Cache-Control"].startswith("public")
    again = client.get(f"/tiles/parcels/{z}/{x}/{y}.mvt", headers={"If-None-Match": etag})
    assert again.status_code == 304 and not again.data
    strong = etag.removeprefix("W/")  # If-None-Match compares weakly (RFC 9110)
    third = client.get(f"/tiles/parcels/{z}/{x}/{y}.mvt", headers={"If-None-Match": strong})
    assert third.status_code == 304


def test_cache_is_invalidated_when_the_data_changes(
    app: Flask, layers_settings: Settings, tmp_path: Path
) -> None:
    services = layer_services(app)
    services.catalog.check_interval = 0.0
    z, x, y = tile_of(16)
    client = app.test_client()
    url = f"/tiles/parcels/{z}/{x}/{y}.mvt"
    before = client.get(url)
    hits = services.tiles.hits
    assert client.get(url).data == before.data and services.tiles.hits == hits + 1
    engine = create_engine(layers_settings)
    change = "UPDATE cadastre.parcel SET use_category = :u WHERE cadastral_number = '200044'"
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(change), {"u": "tile-cache-probe"})
        after = client.get(url)
        assert after.headers["ETag"] != before.headers["ETag"]
        uses = set(decode(after.data, tmp_path, z, x, y)["parcels"]["use_category"])
        assert "tile-cache-probe" in uses
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(change), {"u": "curți construcții"})
        engine.dispose()
        services.catalog.check_interval = 1.0


def test_disk_cache_survives_a_new_process_cache(tmp_path: Path) -> None:
    key = TileKey("public", "parcels", "1", 16, 1, 2)
    TileCache(disk_dir=tmp_path).put(key, b"tile-bytes")
    fresh = TileCache(disk_dir=tmp_path)
    assert fresh.get(key) == b"tile-bytes"
    assert fresh.get(TileKey("public", "parcels", "2", 16, 1, 2)) is None


def test_disk_cache_is_configured_from_the_environment(
    layers_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("URBANGIS_TILE_CACHE_DIR", str(tmp_path / "tiles"))
    app = layers_app(layers_settings)
    with app.app_context():
        assert layer_services(app).tiles.disk_dir == tmp_path / "tiles"
    z, x, y = tile_of(16)
    assert app.test_client().get(f"/tiles/parcels/{z}/{x}/{y}.mvt").status_code == 200
    assert list((tmp_path / "tiles" / "public" / "parcels").rglob(f"{y}.mvt"))


def test_lru_is_bounded_in_bytes() -> None:
    cache = TileCache(max_bytes=10)
    for i in range(5):
        cache.put(TileKey("public", "p", "1", 0, 0, i), b"12345")
    assert cache.get(TileKey("public", "p", "1", 0, 0, 0)) is None
    assert cache.get(TileKey("public", "p", "1", 0, 0, 4)) == b"12345"


def test_tilejson_and_ogc_tiles_descriptions(app: Flask) -> None:
    client = app.test_client()
    tilejson = orjson.loads(client.get("/tiles/zones,parcels.json").data)
    assert tilejson["tilejson"] == "3.0.0"
    assert tilejson["tiles"][0].endswith("/tiles/zones,parcels/{z}/{x}/{y}.mvt")
    assert [layer["id"] for layer in tilejson["vector_layers"]] == ["zones", "parcels"]
    tileset = orjson.loads(
        client.get("/ogc/features/collections/parcels/tiles/WebMercatorQuad").data
    )
    assert tileset["dataType"] == "vector" and tileset["layers"][0]["id"] == "parcels"
    template = tileset["links"][0]["href"]
    z, x, y = tile_of(16)
    url = template.replace("{tileMatrix}", str(z)).replace("{tileRow}", str(y))
    url = url.replace("{tileCol}", str(x)).replace("http://localhost", "")
    assert client.get(url).status_code == 200
    tms = orjson.loads(client.get("/ogc/tileMatrixSets/WebMercatorQuad").data)
    assert tms == orjson.loads(orjson.dumps(tile_matrix_set()))
    assert tms["tileMatrices"][0]["scaleDenominator"] == pytest.approx(559082264.0287178)


def test_tile_bounds_match_web_mercator() -> None:
    minx, miny, maxx, maxy = TileAddress(1, 0, 0).bounds_3857()
    assert (minx, maxy) == pytest.approx((-20037508.342789244, 20037508.342789244))
    assert (maxx, miny) == pytest.approx((0.0, 0.0))


@contextmanager
def flask_calls(app: Flask) -> Iterator[list[str]]:
    """The paths that reached Flask behind the cache-hit middleware, with the catalog's
    version check held recent (as between two checks of a running server)."""
    middleware = app.wsgi_app
    assert isinstance(middleware, CachedTiles)
    inner = middleware.wrapped
    calls: list[str] = []

    def counting(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        calls.append(environ["PATH_INFO"])
        return inner(environ, start_response)

    middleware.wrapped = counting
    with app.app_context(), state().connect() as conn:
        services = layer_services(app)
        services.catalog.refresh(conn, force=True)  # versions as of now, kept from now on
    try:
        services.catalog.check_interval = 3600.0
        yield calls
    finally:
        middleware.wrapped = inner
        services.catalog.check_interval = 1.0


def test_cache_hits_never_reach_flask_and_carry_the_same_headers(app: Flask) -> None:
    z, x, y = tile_of(17, LON + 0.002)
    url = f"/tiles/parcels/{z}/{x}/{y}.mvt"
    client = app.test_client()
    with flask_calls(app) as calls:
        rendered = client.get(url)  # a miss: rendered by the app, then cached
        assert rendered.status_code == 200 and calls == [url]
        hit = client.get(url)
        assert calls == [url]
        assert hit.status_code == 200 and hit.data == rendered.data
        assert dict(hit.headers) == dict(rendered.headers)
        head = client.head(url)
        assert head.status_code == 200 and not head.data
        assert head.headers["Content-Length"] == str(len(rendered.data))
        etag = rendered.headers["ETag"]
        unchanged = client.get(url, headers={"If-None-Match": etag})
        assert unchanged.status_code == 304 and not unchanged.data
        strong = client.get(url, headers={"If-None-Match": etag.removeprefix("W/")})
        assert strong.status_code == 304
        assert calls == [url]
        layer_services(app).catalog.check_interval = 0.0  # now the app answers
        checked = client.get(url, headers={"If-None-Match": etag})
        assert calls == [url, url] and checked.status_code == 304
        assert dict(unchanged.headers) == dict(checked.headers)


def test_a_cached_tile_replaced_by_another_build_is_sent_with_its_own_length(
    app: Flask,
) -> None:
    """Two workers may build one tile with its features in another order; the copy
    cached last must go out with its length, not the first copy's (a wrong length
    corrupts the connection for every later answer on it)."""
    z, x, y = tile_of(18, LON + 0.002)
    url = f"/tiles/parcels/{z}/{x}/{y}.mvt"
    client = app.test_client()
    with flask_calls(app) as calls:
        first = client.get(url)
        assert first.status_code == 200 and first.data
        assert client.get(url).headers["Content-Length"] == str(len(first.data))
        services = layer_services(app)
        [key] = [k for k in services.tiles._entries if (k.z, k.x, k.y) == (z, x, y)]
        services.tiles.put(key, first.data + b"\x1a\x00")  # another build, two bytes more
        again = client.get(url)
        assert calls == [url], "answered from the cache"
        assert again.data == first.data + b"\x1a\x00"
        assert again.headers["Content-Length"] == str(len(again.data))
        assert again.headers["ETag"] == first.headers["ETag"]


def test_empty_cached_tiles_are_answered_alike(app: Flask) -> None:
    url = "/tiles/parcels,zones/17/1/1.mvt"
    client = app.test_client()
    with flask_calls(app) as calls:
        rendered = client.get(url)
        hit = client.get(url)
        assert calls == [url]
    assert rendered.status_code == hit.status_code == 204
    assert dict(hit.headers) == dict(rendered.headers)


def test_what_the_cache_cannot_decide_goes_to_the_app(
    app: Flask, layers_settings: Settings
) -> None:
    """Keys, logins, due version checks, hidden or unknown layers: the full path."""
    z, x, y = tile_of(17, LON - 0.002)
    url = f"/tiles/parcels/{z}/{x}/{y}.mvt"
    client = app.test_client()
    engine = create_engine(layers_settings)
    with engine.begin() as conn:
        key = create_api_key(conn, "test-tiles-clerk", "clerk")
    try:
        with flask_calls(app) as calls:
            clerk = client.get(url, headers={"X-API-Key": key})
            assert clerk.headers["Cache-Control"].startswith("private")
            public = client.get(url)  # the clerk's cached tile is not the public's
            assert len(calls) == 2 and public.data != clerk.data
            assert public.headers["ETag"] != clerk.headers["ETag"]
            assert client.get(url, headers={"X-API-Key": "nonsense"}).status_code == 401
            client.set_cookie("session", "not-a-login")
            assert client.get(url).status_code == 200
            client.delete_cookie("session")
            assert client.get("/tiles/nope/17/1/1.mvt").status_code == 404
            assert client.get("/tiles/parcels,parcels/17/1/1.mvt").status_code == 400
            assert len(calls) == 6
            assert client.get(url).data == public.data and len(calls) == 6
            layer_services(app).catalog.check_interval = 0.0  # a version check is due
            assert client.get(url).data == public.data and len(calls) == 7
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM core.api_key WHERE name = 'test-tiles-clerk'"))
        engine.dispose()
        KEYS.forget()


def test_while_one_request_checks_the_versions_the_others_keep_the_last_ones(app: Flask) -> None:
    z, x, y = tile_of(17, LON + 0.004)
    url = f"/tiles/parcels/{z}/{x}/{y}.mvt"
    client = app.test_client()
    middleware = app.wsgi_app
    assert isinstance(middleware, CachedTiles)
    with flask_calls(app) as calls:
        rendered = client.get(url)  # rendered, cached, its version seen fresh
        layer_services(app).catalog.check_interval = 0.0  # a check is due from now on
        with middleware._checking:  # as while another request checks
            assert client.get(url).data == rendered.data and calls == [url]
            middleware.STALE_FOR = 0.0  # the version seen last is now too old
            assert client.get(url).data == rendered.data and calls == [url, url]
        del middleware.STALE_FOR
        assert client.get(url).data == rendered.data and calls == [url, url, url]  # it checks
    assert not middleware._checking.locked()
