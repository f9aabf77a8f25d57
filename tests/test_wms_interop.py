"""Real clients against a live WMS: OWSLib's WebMapService (1.3.0 and 1.1.1) reads the
capabilities, a map and feature info; GDAL's WMS driver (``gdal_translate WMS:...``)
turns a GetMap into a georeferenced image whose pixels fall where the parcels are.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from owslib.wms import WebMapService
from PIL import Image

from gis_core.crs import transform_coords
from gis_core.settings import Settings
from tests.test_layers_data import (
    GRID,
    ORIGIN_E,
    ORIGIN_N,
    SIZE,
    layers_app,
    layers_settings,
    live_server,
)

__all__ = ["layers_settings"]
SIDE = GRID * SIZE
BOX = (ORIGIN_E - 50, ORIGIN_N - 50, ORIGIN_E + SIDE + 50, ORIGIN_N + SIDE + 50)


@pytest.fixture(scope="module")
def server(layers_settings: Settings) -> Iterator[str]:
    with live_server(layers_app(layers_settings)) as url:
        yield url + "/ogc/wms"


def _alpha_at(data: bytes, x: int, y: int) -> int:
    picture = Image.open(io.BytesIO(data)).convert("RGBA")
    return int(picture.getpixel((x, y))[3])  # type: ignore[index]


@pytest.mark.parametrize("version", ["1.3.0", "1.1.1"])
def test_owslib_reads_capabilities_map_and_feature_info(server: str, version: str) -> None:
    wms = WebMapService(server, version=version)
    assert {"parcels", "zones", "buildings"} <= set(wms.contents)
    parcels = wms["parcels"]
    assert "EPSG:3844" in parcels.crsOptions
    assert parcels.queryable == 1
    assert list(parcels.styles) == ["default", "outline"]
    assert "GetLegendGraphic" in parcels.styles["default"]["legend"]
    # OWSLib takes x/y boxes and swaps them itself for 1.3.0 lat/lon-first CRSs.
    image = wms.getmap(
        layers=["parcels"],
        styles=[""],
        srs="EPSG:3844",
        bbox=BOX,
        size=(300, 300),
        format="image/png",
        transparent=True,
    )
    data = image.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    # EPSG:3844 is northing-first: OWSLib must have sent the axes the way we read them.
    centre = _alpha_at(data, 150, 150)
    corner = _alpha_at(data, 5, 295)
    assert centre > 0 and corner == 0
    info = wms.getfeatureinfo(
        layers=["parcels"],
        srs="EPSG:3844",
        bbox=BOX,
        size=(300, 300),
        format="image/png",
        query_layers=["parcels"],
        info_format="application/json",
        xy=(39, 261),  # 25 m east and north of the grid origin: parcel 200000
    )
    features = json.loads(info.read())["features"]
    assert [f["properties"]["cadastral_number"] for f in features] == ["200000"]


def _gdal(*args: str) -> str:
    result = subprocess.run([*args], capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def _box_in(srid: int) -> tuple[float, float, float, float]:
    """BOX (Stereo 70) in ``srid`` as x/y, through the platform's transformation."""
    if srid == 3844:
        return BOX
    xs, ys = transform_coords(3844, srid, np.array([BOX[0], BOX[2]]), np.array([BOX[1], BOX[3]]))
    return (float(xs[0]), float(ys[0]), float(xs[1]), float(ys[1]))


@pytest.mark.skipif(shutil.which("gdal_translate") is None, reason="gdal-bin is not installed")
@pytest.mark.parametrize(("version", "srid"), [("1.3.0", 3857), ("1.1.1", 3844), ("1.1.1", 4326)])
def test_gdal_translate_produces_a_georeferenced_map(
    server: str, tmp_path: Path, version: str, srid: int
) -> None:
    """GDAL 3.6's WMS driver sends the BBOX of its connection string verbatim and reads
    it as x/y, so with 1.3.0 it is only right for CRSs whose axes are x/y (EPSG:3857);
    1.3.0 with the latitude- or northing-first EPSG:4326/3844 is OWSLib's test above."""
    minx, miny, maxx, maxy = _box_in(srid)
    target = tmp_path / "map.tif"
    crs = "CRS" if version == "1.3.0" else "SRS"
    url = (
        f"WMS:{server}?SERVICE=WMS&VERSION={version}&REQUEST=GetMap&LAYERS=parcels&STYLES="
        f"&{crs}=EPSG:{srid}&BBOX={minx},{miny},{maxx},{maxy}&FORMAT=image/png&TRANSPARENT=TRUE"
    )
    _gdal("gdal_translate", "-q", "-of", "GTiff", "-outsize", "300", "300", url, str(target))
    info = json.loads(_gdal("gdalinfo", "-json", str(target)))
    corner = info["cornerCoordinates"]
    tolerance = 1e-6 if srid == 4326 else 0.01
    assert corner["upperLeft"] == pytest.approx([minx, maxy], abs=tolerance)
    assert corner["lowerRight"] == pytest.approx([maxx, miny], abs=tolerance)
    png = tmp_path / "map.png"
    _gdal("gdal_translate", "-q", "-of", "PNG", str(target), str(png))
    data = png.read_bytes()
    # the grid fills the middle of the box; its 50 m margin stays empty
    assert _alpha_at(data, 150, 150) > 0 and _alpha_at(data, 5, 295) == 0
