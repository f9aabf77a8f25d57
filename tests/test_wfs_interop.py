"""Real clients against a live WFS: OWSLib's WebFeatureService (2.0.0 and 1.1.0) reads
capabilities, schemas and filtered features; GDAL's WFS driver lists the layers and
reads every parcel through result paging (the page size is kept small on purpose).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from lxml import etree
from owslib.fes2 import PropertyIsEqualTo, PropertyIsLike
from owslib.wfs import WebFeatureService

from gis_core.db import create_engine
from gis_core.settings import Settings
from tests.test_layers_data import layers_app, layers_settings, live_server

__all__ = ["layers_settings"]
PAGE = 23
GML = "{http://www.opengis.net/gml/3.2}"
U = "{https://urbangis.ro/ns/features}"


@pytest.fixture(scope="module")
def server(layers_settings: Settings) -> Iterator[str]:
    app = layers_app(layers_settings, URBANGIS_WFS_MAX_COUNT=PAGE)
    with live_server(app) as url:
        yield url + "/ogc/wfs"


@pytest.fixture(scope="module")
def current_parcels(layers_settings: Settings) -> int:
    engine = create_engine(layers_settings)
    with engine.connect() as conn:
        count = conn.execute(
            sa.text("SELECT count(*) FROM cadastre.parcel WHERE valid_to IS NULL")
        ).scalar_one()
    engine.dispose()
    return int(count)


def _numbers(data: bytes) -> list[str]:
    root = etree.fromstring(data)
    return [e.text or "" for e in root.iter(f"{U}cadastral_number")]


def test_owslib_20_reads_capabilities_schema_and_filtered_features(server: str) -> None:
    wfs = WebFeatureService(server, version="2.0.0")
    assert "urbangis:parcels" in wfs.contents
    parcels = wfs.contents["urbangis:parcels"]
    assert any("3844" in str(crs) for crs in parcels.crsOptions)
    schema = wfs.get_schema("urbangis:parcels")
    assert "cadastral_number" in schema["properties"]
    assert "owners" not in schema["properties"]
    flt = etree.tostring(PropertyIsEqualTo("cadastral_number", "200042").toXML()).decode()
    flt = f'<fes:Filter xmlns:fes="http://www.opengis.net/fes/2.0">{flt}</fes:Filter>'
    response = wfs.getfeature(typename=["urbangis:parcels"], filter=flt)
    assert _numbers(response.read()) == ["200042"]
    like = etree.tostring(PropertyIsLike("cadastral_number", "20009*", wildCard="*").toXML())
    like_filter = (
        f'<fes:Filter xmlns:fes="http://www.opengis.net/fes/2.0">{like.decode()}</fes:Filter>'
    )
    found = _numbers(wfs.getfeature(typename=["urbangis:parcels"], filter=like_filter).read())
    assert sorted(found) == [f"2000{90 + i}" for i in range(10)]


def test_owslib_20_bbox_and_stored_query(server: str) -> None:
    wfs = WebFeatureService(server, version="2.0.0")
    ids = [q.id for q in wfs.storedqueries]
    assert "urn:ogc:def:query:OGC-WFS::GetFeatureById" in ids
    # 50 m grid from E 392000, N 586000. OWSLib takes x/y and sends EPSG:3844's N, E order.
    response = wfs.getfeature(
        typename=["urbangis:parcels"],
        bbox=(392_010.0, 586_010.0, 392_090.0, 586_090.0, "urn:ogc:def:crs:EPSG::3844"),
    )
    assert sorted(_numbers(response.read())) == ["200000", "200001", "200010", "200011"]


def test_owslib_20_post_getfeature(server: str) -> None:
    """OWSLib's XML (POST) encoding of GetFeature: type name, filter and count."""
    wfs = WebFeatureService(server, version="2.0.0")
    like = etree.tostring(PropertyIsLike("cadastral_number", "20004*", wildCard="*").toXML())
    flt = f'<fes:Filter xmlns:fes="http://www.opengis.net/fes/2.0">{like.decode()}</fes:Filter>'
    response = wfs.getfeature(
        typename=["urbangis:parcels"], filter=flt, maxfeatures=5, method="Post"
    )
    found = _numbers(response.read())
    assert len(found) == 5 and all(n.startswith("20004") for n in found)


def test_owslib_110_reads_capabilities_and_features(server: str) -> None:
    wfs = WebFeatureService(server, version="1.1.0")
    assert "urbangis:zones" in wfs.contents
    assert wfs.contents["urbangis:zones"].boundingBoxWGS84 is not None
    response = wfs.getfeature(typename=["urbangis:parcels"], maxfeatures=5)
    root = etree.fromstring(response.read())
    assert root.tag == "{http://www.opengis.net/wfs}FeatureCollection"
    assert len(list(root.iter(f"{U}cadastral_number"))) == 5


def test_owslib_100_reads_capabilities_and_features(server: str) -> None:
    wfs = WebFeatureService(server, version="1.0.0")
    assert "urbangis:parcels" in wfs.contents
    root = etree.fromstring(wfs.getfeature(typename=["urbangis:parcels"], maxfeatures=5).read())
    assert root.tag == "{http://www.opengis.net/wfs}FeatureCollection"
    assert len(list(root.iter(f"{U}cadastral_number"))) == 5
    # WFS 1.0.0 boxes are x/y (east, north) in the layer's CRS.
    response = wfs.getfeature(
        typename=["urbangis:parcels"], bbox=(392_010.0, 586_010.0, 392_090.0, 586_090.0)
    )
    assert sorted(_numbers(response.read())) == ["200000", "200001", "200010", "200011"]


def _gdal(*args: str) -> str:
    result = subprocess.run([*args], capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="gdal-bin is not installed")
def test_ogrinfo_lists_the_layers(server: str) -> None:
    listing = _gdal("ogrinfo", "-ro", "-so", f"WFS:{server}")
    for name in ("urbangis:parcels", "urbangis:zones", "urbangis:buildings"):
        assert name in listing


@pytest.mark.skipif(shutil.which("ogr2ogr") is None, reason="gdal-bin is not installed")
@pytest.mark.parametrize("version", ["2.0.0", "1.1.0"])
def test_gdal_reads_every_parcel_through_paging(
    server: str, current_parcels: int, tmp_path: Path, version: str
) -> None:
    target = tmp_path / "parcels.geojson"
    _gdal(
        "ogr2ogr",
        "-f",
        "GeoJSON",
        str(target),
        f"WFS:{server}?VERSION={version}",
        "urbangis:parcels",
        "--config",
        "OGR_WFS_PAGING_ALLOWED",
        "ON",
        "--config",
        "OGR_WFS_PAGE_SIZE",
        str(PAGE),
        "--config",
        "OGR_WFS_LOAD_MULTIPLE_LAYER_DEFN",
        "NO",
    )
    features = json.loads(target.read_text())["features"]
    assert len(features) == current_parcels
    assert len({f["properties"]["cadastral_number"] for f in features}) == current_parcels


@pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="gdal-bin is not installed")
def test_ogrinfo_counts_and_filters(server: str, current_parcels: int) -> None:
    summary = _gdal("ogrinfo", "-ro", "-so", f"WFS:{server}", "urbangis:parcels")
    assert f"Feature Count: {current_parcels}" in summary
    output = _gdal(
        "ogrinfo",
        "-ro",
        "-q",
        f"WFS:{server}",
        "urbangis:parcels",
        "-where",
        "cadastral_number = '200042'",
    )
    assert "200042" in output and "200041" not in output


@pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="gdal-bin is not installed")
def test_gdal_reads_wfs_100_with_a_filter(server: str) -> None:
    listing = _gdal("ogrinfo", "-ro", "-so", f"WFS:{server}?VERSION=1.0.0")
    assert "urbangis:parcels" in listing
    output = _gdal(
        "ogrinfo",
        "-ro",
        "-q",
        f"WFS:{server}?VERSION=1.0.0",
        "urbangis:parcels",
        "-where",
        "cadastral_number = '200042'",
    )
    assert "200042" in output and "200041" not in output
    assert "MULTIPOLYGON (((392" in output  # x/y: east first
