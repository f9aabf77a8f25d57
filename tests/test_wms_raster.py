"""Raster layers in WMS: an orthophoto registered in ``core.raster_layer`` is listed in
the capabilities (not queryable) and drawn under the vector layers by Mapnik's GDAL
plugin, reprojected to the map's CRS.

The database is this module's own, so other suites never see the test raster.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
import sqlalchemy as sa
from flask.testing import FlaskClient
from lxml import etree
from PIL import Image
from rasterio.transform import Affine
from sqlalchemy.engine import URL

from gis_core import migrate
from gis_core.db import create_engine
from tests.conftest import _worker_suffix, drop_database, fresh_database, settings_for
from tests.test_layers_data import ORIGIN_E, ORIGIN_N, layers_app

WMS = "{http://www.opengis.net/wms}"
SIDE = 200.0  # metres of the synthetic orthophoto, 1 m pixels


def write_orthophoto(path: Path) -> None:
    """A 200 m RGB GeoTIFF in Stereo 70: red west half, blue east half."""
    pixels = np.zeros((3, int(SIDE), int(SIDE)), dtype=np.uint8)
    pixels[0, :, : int(SIDE) // 2] = 220
    pixels[2, :, int(SIDE) // 2 :] = 220
    profile = {
        "driver": "GTiff",
        "width": int(SIDE),
        "height": int(SIDE),
        "count": 3,
        "dtype": "uint8",
        "crs": "EPSG:3844",
        "transform": Affine(1.0, 0.0, ORIGIN_E, 0.0, -1.0, ORIGIN_N + SIDE),
        "tiled": True,
    }
    with rasterio.open(path, "w", **profile) as target:
        target.write(pixels)


@pytest.fixture(scope="module")
def client(server_url: URL, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlaskClient]:
    name = f"urbangis_wms_raster_{_worker_suffix()}"
    settings = settings_for(fresh_database(server_url, name), 3844)
    engine = create_engine(settings)
    migrate.upgrade(engine, 3844)
    tiff = tmp_path_factory.mktemp("raster") / "orthophoto.tif"
    write_orthophoto(tiff)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO core.raster_layer (name, title, path, source, source_sha256, srid, "
                "width, height, band_count, data_type, resolution, extent) VALUES "
                "('orthophoto', 'Ortofotoplan', :path, 'test', 'none', 3844, :w, :w, 3, "
                "'uint8', ARRAY[1.0, 1.0], ST_MakeEnvelope(:e, :n, :e + :s, :n + :s, 3844))"
            ),
            {"path": str(tiff), "w": int(SIDE), "e": ORIGIN_E, "n": ORIGIN_N, "s": SIDE},
        )
    engine.dispose()
    yield layers_app(settings).test_client()
    drop_database(server_url, name)


def test_raster_layer_in_capabilities(client: FlaskClient) -> None:
    root = etree.fromstring(client.get("/ogc/wms?SERVICE=WMS&REQUEST=GetCapabilities").data)
    layers = {
        e.findtext(f"{WMS}Name"): e
        for e in root.iter(f"{WMS}Layer")
        if e.find(f"{WMS}Name") is not None
    }
    assert layers["orthophoto"].get("queryable") == "0"
    assert layers["orthophoto"].findtext(f"{WMS}Title") == "Ortofotoplan"


@pytest.mark.parametrize("crs", ["EPSG:3844", "EPSG:3857"])
def test_raster_layer_is_drawn_in_place(client: FlaskClient, crs: str) -> None:
    from gis_core.crs import transform_coords

    if crs == "EPSG:3844":
        box = f"{ORIGIN_N},{ORIGIN_E},{ORIGIN_N + SIDE},{ORIGIN_E + SIDE}"
    else:
        lon, lat = transform_coords(
            3844, 4326, [ORIGIN_E, ORIGIN_E + SIDE], [ORIGIN_N, ORIGIN_N + SIDE]
        )
        x, y = transform_coords(4326, 3857, lon, lat)
        box = f"{float(x[0])},{float(y[0])},{float(x[1])},{float(y[1])}"
    response = client.get(
        "/ogc/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=orthophoto&STYLES="
        f"&CRS={crs}&BBOX={box}&WIDTH=100&HEIGHT=100&FORMAT=image/png"
    )
    assert response.status_code == 200 and response.content_type == "image/png", response.data[:300]
    picture = Image.open(io.BytesIO(response.data)).convert("RGB")
    west = picture.getpixel((20, 50))
    east = picture.getpixel((80, 50))
    assert west[0] > 150 and west[2] < 80  # type: ignore[index]
    assert east[2] > 150 and east[0] < 80  # type: ignore[index]
