"""Real clients against a live server: OWSLib's OGC API – Features client and GDAL's
OAPIF driver list the collections and read every feature through paging.

The Debian GDAL here is 3.6 (its command-line tools read in CRS84: the OAPIF ``CRS``
option of Part 2 came in 3.7); the GDAL inside pyogrio's wheel is newer and reads in
EPSG:3844 too. OWSLib reads in both CRS84 and EPSG:3844.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from owslib.ogcapi.features import Features

from gis_core.crs import transform_coords
from gis_core.db import create_engine
from gis_core.settings import Settings
from tests.test_layers_data import (
    ORIGIN_E,
    ORIGIN_N,
    SIZE,
    layers_app,
    layers_settings,
    live_server,
)

__all__ = ["layers_settings"]
EPSG_3844 = "http://www.opengis.net/def/crs/EPSG/0/3844"


@pytest.fixture(scope="module")
def server(layers_settings: Settings) -> Iterator[str]:
    with live_server(layers_app(layers_settings)) as url:
        yield url + "/ogc/features"


@pytest.fixture(scope="module")
def current_parcels(layers_settings: Settings) -> int:
    engine = create_engine(layers_settings)
    with engine.connect() as conn:
        count = conn.execute(
            sa.text("SELECT count(*) FROM cadastre.parcel WHERE valid_to IS NULL")
        ).scalar_one()
    engine.dispose()
    return int(count)


def read_all_with_owslib(api: Features, collection: str, **params: str) -> list[dict]:
    """Follow the pages the way a client does: offset by offset until a short page."""
    features: list[dict] = []
    offset = 0
    while True:
        page = api.collection_items(collection, limit=17, offset=offset, **params)
        features.extend(page["features"])
        if not any(link["rel"] == "next" for link in page["links"]):
            return features
        offset += 17


def test_owslib_lists_collections_and_queryables(server: str) -> None:
    api = Features(server)
    ids = {c["id"] for c in api.collections()["collections"]}
    assert {"parcels", "zones", "buildings", "restrictions"} <= ids
    assert (
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
        in (api.conformance()["conformsTo"])
    )
    assert "cadastral_number" in api.collection_queryables("parcels")["properties"]
    assert api.collection("parcels")["id"] == "parcels"


def test_owslib_reads_every_parcel_in_crs84_and_stereo70(server: str, current_parcels: int) -> None:
    api = Features(server)
    crs84 = read_all_with_owslib(api, "parcels")
    stereo = read_all_with_owslib(api, "parcels", crs=EPSG_3844)
    assert len(crs84) == len(stereo) == current_parcels
    assert len({f["id"] for f in crs84}) == current_parcels
    first = next(f for f in stereo if f["properties"]["cadastral_number"] == "200000")
    assert first["geometry"]["coordinates"][0][0][0] == [ORIGIN_N, ORIGIN_E]
    lon, lat = transform_coords(3844, 4326, ORIGIN_E, ORIGIN_N)
    geographic = next(f for f in crs84 if f["properties"]["cadastral_number"] == "200000")
    assert geographic["geometry"]["coordinates"][0][0][0] == pytest.approx(
        [float(lon), float(lat)], abs=1e-7
    )


def test_owslib_filters_with_cql2(server: str) -> None:
    api = Features(server)
    page = api.collection_items("parcels", filter="cadastral_number IN ('200001','200002')")
    assert sorted(f["properties"]["cadastral_number"] for f in page["features"]) == [
        "200001",
        "200002",
    ]


def _ogr(*args: str) -> str:
    result = subprocess.run([*args], capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="gdal-bin is not installed")
def test_gdal_oapif_lists_the_collections(server: str) -> None:
    listing = _ogr("ogrinfo", "-ro", "-so", f"OAPIF:{server}")
    for name in ("parcels", "zones", "buildings", "restrictions", "addresses"):
        assert name in listing
    summary = _ogr("ogrinfo", "-ro", "-al", "-so", f"OAPIF:{server}/collections/parcels")
    assert "cadastral_number" in summary and "Multi Polygon" in summary


@pytest.mark.skipif(shutil.which("ogr2ogr") is None, reason="gdal-bin is not installed")
def test_gdal_oapif_reads_every_parcel_through_paging(
    server: str, current_parcels: int, tmp_path: Path
) -> None:
    target = tmp_path / "parcels.geojson"
    _ogr(
        "ogr2ogr",
        "-f",
        "GeoJSON",
        str(target),
        f"OAPIF:{server}/collections/parcels",
        "-oo",
        "PAGE_SIZE=23",
    )
    features = json.loads(target.read_text())["features"]
    assert len(features) == current_parcels
    numbers = {f["properties"]["cadastral_number"] for f in features}
    assert len(numbers) == current_parcels


@pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="gdal-bin is not installed")
def test_gdal_oapif_pushes_attribute_and_spatial_filters(server: str) -> None:
    output = _ogr(
        "ogrinfo",
        "-ro",
        "-al",
        "-q",
        f"OAPIF:{server}/collections/parcels",
        "-where",
        "cadastral_number = '200042'",
    )
    assert "200042" in output and "200041" not in output


READ_WITH_PYOGRIO = """
import json, sys
import pyogrio
url, crs = sys.argv[1], sys.argv[2]
frame = pyogrio.read_dataframe(url, PAGE_SIZE="23", CRS=crs)
first = frame[frame["cadastral_number"] == "200000"].geometry.iloc[0]
print(json.dumps({"count": len(frame), "epsg": frame.crs.to_epsg(), "bounds": first.bounds}))
"""


def _read_with_newer_gdal(url: str, crs: str) -> dict:
    """pyogrio's GDAL in a child process: its HTTP client and our test server (a thread
    of this process) must not wait on each other."""
    result = subprocess.run(
        [sys.executable, "-c", READ_WITH_PYOGRIO, url, crs],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_gdal_oapif_reads_every_parcel_in_stereo70(server: str, current_parcels: int) -> None:
    """GDAL >= 3.7 speaks Part 2 (``CRS`` open option); pyogrio's wheel ships such a GDAL,
    so the OAPIF driver reads the parcels in EPSG:3844 as well as in CRS84."""
    url = f"OAPIF:{server}/collections/parcels"
    stereo = _read_with_newer_gdal(url, "EPSG:3844")
    # GDAL >= 3.7 reads in the collection's storageCrs unless told otherwise
    crs84 = _read_with_newer_gdal(url, "OGC:CRS84")
    assert stereo["count"] == crs84["count"] == current_parcels
    assert stereo["epsg"] == 3844
    # GDAL hands coordinates over in the GIS order (east, north) whatever the axis order
    assert stereo["bounds"] == pytest.approx(
        [ORIGIN_E, ORIGIN_N, ORIGIN_E + SIZE, ORIGIN_N + SIZE], abs=0.01
    )
    # the parcel's corners through TransDatRO (the twin): its lon/lat bounds
    corners_e = [ORIGIN_E, ORIGIN_E + SIZE, ORIGIN_E + SIZE, ORIGIN_E]
    corners_n = [ORIGIN_N, ORIGIN_N, ORIGIN_N + SIZE, ORIGIN_N + SIZE]
    lon, lat = transform_coords(3844, 4326, corners_e, corners_n)
    expected = [lon.min(), lat.min(), lon.max(), lat.max()]
    assert crs84["bounds"] == pytest.approx([float(v) for v in expected], abs=1e-7)
