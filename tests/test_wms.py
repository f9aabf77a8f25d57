"""WMS 1.3.0 and 1.1.1 against the fixture municipality: capabilities, maps rendered by
Mapnik (pixels checked where the data is), axis order, feature info with per-role
fields, legends and the three exception formats.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import orjson
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from PIL import Image

from gis_core.crs import transform_coords
from gis_core.db import create_engine
from gis_core.settings import Settings
from layers import render, styles
from layers.catalog import Catalog
from tests.test_layers_data import (
    GRID,
    ORIGIN_E,
    ORIGIN_N,
    OWNER_NAME,
    SECRET_NOTE,
    SIZE,
    layers_app,
    layers_settings,
)
from webmap.auth import KEYS, create_api_key

__all__ = ["layers_settings"]
WMS = "{http://www.opengis.net/wms}"
OGC = "{http://www.opengis.net/ogc}"
SIDE = GRID * SIZE  # the parcel grid is 500 m wide
# The grid in Stereo 70 (x/y = east/north), with a 50 m margin around it.
MIN_E, MIN_N = ORIGIN_E - 50, ORIGIN_N - 50
MAX_E, MAX_N = ORIGIN_E + SIDE + 50, ORIGIN_N + SIDE + 50


@pytest.fixture(scope="module")
def app(layers_settings: Settings) -> Flask:
    return layers_app(layers_settings)


@pytest.fixture(scope="module")
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="module")
def keys(layers_settings: Settings) -> Iterator[dict[str, str]]:
    engine = create_engine(layers_settings)
    with engine.begin() as conn:
        made = {role: create_api_key(conn, f"wms-{role}", role) for role in ("clerk", "planner")}
    yield made
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM core.api_key WHERE name LIKE 'wms-%'"))
    engine.dispose()
    KEYS.forget()


def get(
    client: FlaskClient, query: str, key: str | None = None, status: int = 200
) -> tuple[bytes, str]:
    headers = {"X-API-Key": key} if key else {}
    response = client.get("/ogc/wms?SERVICE=WMS&" + query, headers=headers)
    assert response.status_code == status, response.data[:500]
    return response.data, response.content_type


def stereo_box_130() -> str:
    """EPSG:3844 in WMS 1.3.0 is northing first."""
    return f"{MIN_N},{MIN_E},{MAX_N},{MAX_E}"


def map_query(
    layers: str, box: str, crs: str = "EPSG:3844", version: str = "1.3.0", **extra: str
) -> str:
    crs_name = "CRS" if version == "1.3.0" else "SRS"
    params = {
        "VERSION": version,
        "REQUEST": "GetMap",
        "LAYERS": layers,
        "STYLES": "",
        crs_name: crs,
        "BBOX": box,
        "WIDTH": "300",
        "HEIGHT": "300",
        "FORMAT": "image/png",
        **extra,
    }
    return "&".join(f"{k}={v}" for k, v in params.items())


def pixel_of(e: float, n: float, size: int = 300) -> tuple[int, int]:
    x = (e - MIN_E) / (MAX_E - MIN_E) * size
    y = (MAX_N - n) / (MAX_N - MIN_N) * size
    return int(x), int(y)


def image(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGBA")


def rgba(picture: Image.Image, xy: tuple[int, int]) -> tuple[int, int, int, int]:
    r, g, b, a = picture.getpixel(xy)  # type: ignore[misc]
    return (int(r), int(g), int(b), int(a))


def extrema(picture: Image.Image, band: int) -> tuple[int, int]:
    low, high = picture.getextrema()[band]  # type: ignore[misc]
    return (int(low), int(high))


# -- capabilities -----------------------------------------------------------------------
def test_capabilities_130(client: FlaskClient) -> None:
    data, content_type = get(client, "REQUEST=GetCapabilities")
    assert content_type.startswith("text/xml")
    root = etree.fromstring(data)
    assert root.get("version") == "1.3.0"
    layers = {
        e.findtext(f"{WMS}Name"): e
        for e in root.iter(f"{WMS}Layer")
        if e.find(f"{WMS}Name") is not None
    }
    assert {"parcels", "zones", "buildings", "restrictions"} <= set(layers)
    parcels = layers["parcels"]
    crs = {e.text for e in parcels.findall(f"{WMS}CRS")}
    assert {"EPSG:3844", "EPSG:4258", "EPSG:4326", "EPSG:3857"} <= crs
    assert parcels.get("queryable") == "1"
    legend = parcels.find(f"{WMS}Style/{WMS}LegendURL/{WMS}OnlineResource")
    assert legend is not None and "GetLegendGraphic" in legend.get(
        "{http://www.w3.org/1999/xlink}href", ""
    )
    box = next(b for b in parcels.findall(f"{WMS}BoundingBox") if b.get("CRS") == "EPSG:4326")
    # 1.3.0 EPSG:4326 boxes are latitude first
    assert 46 < float(box.get("minx", "0")) < 47.5 and 23 < float(box.get("miny", "0")) < 24
    info_formats = {e.text for e in root.iterfind(f".//{WMS}GetFeatureInfo/{WMS}Format")}
    assert {"application/json", "text/html", "application/vnd.ogc.gml"} <= info_formats


def test_capabilities_111(client: FlaskClient) -> None:
    data, content_type = get(client, "VERSION=1.1.1&REQUEST=GetCapabilities")
    assert content_type.startswith("application/vnd.ogc.wms_xml")
    root = etree.fromstring(data)
    assert root.tag == "WMT_MS_Capabilities" and root.get("version") == "1.1.1"
    assert root.find(".//Layer/Layer/LatLonBoundingBox") is not None


# -- GetMap -----------------------------------------------------------------------------
def test_getmap_draws_parcels_where_they_are(client: FlaskClient) -> None:
    data, content_type = get(client, map_query("parcels", stereo_box_130(), TRANSPARENT="TRUE"))
    assert content_type == "image/png"
    picture = image(data)
    assert picture.size == (300, 300)
    inside = rgba(picture, pixel_of(ORIGIN_E + 125, ORIGIN_N + 125))
    outside = rgba(picture, pixel_of(ORIGIN_E - 30, ORIGIN_N - 30))
    assert inside[3] > 0 and outside[3] == 0


def test_axis_order_epsg4326_130_vs_111(client: FlaskClient) -> None:
    lon1, lat1 = (float(v) for v in transform_coords(3844, 4326, MIN_E, MIN_N))
    lon2, lat2 = (float(v) for v in transform_coords(3844, 4326, MAX_E, MAX_N))
    new, _ = get(
        client,
        map_query("parcels", f"{lat1},{lon1},{lat2},{lon2}", "EPSG:4326", TRANSPARENT="TRUE"),
    )
    old, _ = get(
        client,
        map_query(
            "parcels", f"{lon1},{lat1},{lon2},{lat2}", "EPSG:4326", "1.1.1", TRANSPARENT="TRUE"
        ),
    )
    crs84, _ = get(
        client, map_query("parcels", f"{lon1},{lat1},{lon2},{lat2}", "CRS:84", TRANSPARENT="TRUE")
    )
    pixels = [rgba(image(d), (150, 150))[3] for d in (new, old, crs84)]
    assert all(alpha > 0 for alpha in pixels)
    swapped, _ = get(
        client,
        map_query("parcels", f"{lon1},{lat1},{lon2},{lat2}", "EPSG:4326", TRANSPARENT="TRUE"),
    )
    assert extrema(image(swapped), 3) == (0, 0)  # lon/lat read as lat/lon: nothing there


def test_formats_and_zone_colours(client: FlaskClient) -> None:
    jpeg, content_type = get(client, map_query("zones", stereo_box_130(), FORMAT="image/jpeg"))
    assert content_type == "image/jpeg" and jpeg[:2] == b"\xff\xd8"
    png8, _ = get(client, map_query("zones", stereo_box_130(), FORMAT="image/png; mode=8bit"))
    assert Image.open(io.BytesIO(png8)).mode == "P"
    picture = image(jpeg)
    residential = rgba(picture, pixel_of(ORIGIN_E + 60, ORIGIN_N + 60))  # L1a
    mixed = rgba(picture, pixel_of(ORIGIN_E + 440, ORIGIN_N + 60))  # M2
    green = rgba(picture, pixel_of(ORIGIN_E + 60, ORIGIN_N + 440))  # V1a
    assert len({residential[:3], mixed[:3], green[:3]}) == 3
    assert green[1] > green[0] and green[1] > green[2]


def test_draft_zone_drawn_only_for_planners(client: FlaskClient, keys: dict[str, str]) -> None:
    spot = pixel_of(ORIGIN_E + 440, ORIGIN_N + 440)  # the draft PUZ zone
    public, _ = get(client, map_query("zones", stereo_box_130(), TRANSPARENT="TRUE"))
    planner, _ = get(
        client, map_query("zones", stereo_box_130(), TRANSPARENT="TRUE"), keys["planner"]
    )
    assert rgba(image(public), spot)[3] == 0
    assert rgba(image(planner), spot)[3] > 0


def test_several_layers_and_styles(client: FlaskClient) -> None:
    data, _ = get(
        client,
        map_query("zones,parcels", stereo_box_130(), STYLES="default,outline", TRANSPARENT="TRUE"),
    )
    assert rgba(image(data), pixel_of(ORIGIN_E + 125, ORIGIN_N + 125))[3] > 0


def test_parcel_labels_only_for_public_fields() -> None:
    catalog = Catalog(3844)
    sql = render.layer_sql(catalog.get("parcels"), "clerk", use_twin=False)
    assert "cadastral_number" in sql and "parcel_owner" not in sql and "notes" not in sql
    zones = render.layer_sql(catalog.get("zones"), "public", use_twin=True)
    assert "approved" in zones and "geom_etrs89" in zones


# -- GetFeatureInfo ---------------------------------------------------------------------
def info(client: FlaskClient, fmt: str, key: str | None = None, **extra: str) -> bytes:
    i, j = pixel_of(ORIGIN_E + 75, ORIGIN_N + 25)  # parcel 200010 (column 1, row 0)
    query = map_query(
        "parcels",
        stereo_box_130(),
        REQUEST="GetFeatureInfo",
        QUERY_LAYERS="parcels",
        INFO_FORMAT=fmt,
        I=str(i),
        J=str(j),
        **extra,
    )
    return get(client, query, key)[0]


def test_feature_info_json_html_gml(client: FlaskClient) -> None:
    features = orjson.loads(info(client, "application/json"))["features"]
    assert [f["properties"]["cadastral_number"] for f in features] == ["200010"]
    assert features[0]["layer"] == "parcels"
    html = info(client, "text/html")
    assert b"200010" in html and b"<table" in html
    gml = etree.fromstring(info(client, "application/vnd.ogc.gml"))
    assert [e.text for e in gml.iter("{https://urbangis.ro/ns/features}cadastral_number")] == [
        "200010"
    ]


def test_feature_info_fields_follow_the_role(client: FlaskClient, keys: dict[str, str]) -> None:
    i, j = pixel_of(ORIGIN_E + 25, ORIGIN_N + 75)  # parcel 200001: owner and internal note
    query = map_query(
        "parcels",
        stereo_box_130(),
        REQUEST="GetFeatureInfo",
        QUERY_LAYERS="parcels",
        INFO_FORMAT="application/json",
        I=str(i),
        J=str(j),
    )
    public = get(client, query)[0]
    clerk = get(client, query, keys["clerk"])[0]
    assert (
        b"200001" in public
        and OWNER_NAME.encode() not in public
        and SECRET_NOTE.encode() not in public
    )
    assert OWNER_NAME.encode() in clerk and SECRET_NOTE.encode() in clerk


def test_feature_info_bad_point(client: FlaskClient) -> None:
    query = map_query(
        "parcels",
        stereo_box_130(),
        REQUEST="GetFeatureInfo",
        QUERY_LAYERS="parcels",
        INFO_FORMAT="application/json",
        I="999",
        J="1",
    )
    data, _ = get(client, query)
    assert etree.fromstring(data).find(f"{OGC}ServiceException").get("code") == "InvalidPoint"


# -- legends and exceptions -------------------------------------------------------------
def test_legend_has_a_row_per_zone_function(client: FlaskClient) -> None:
    data, content_type = get(
        client,
        "VERSION=1.3.0&REQUEST=GetLegendGraphic&LAYER=zones&FORMAT=image/png&SLD_VERSION=1.1.0",
    )
    assert content_type == "image/png"
    picture = image(data)
    rows = len(styles.legend_rules(styles.styles_for(Catalog(3844).get("zones"))[0]))
    assert picture.size == (240, rows * 22)
    assert rgba(picture, (10, 11))[3] > 0  # the first swatch is drawn


@pytest.mark.parametrize(
    ("query", "code"),
    [
        (map_query("nope", stereo_box_130()), "LayerNotDefined"),
        (map_query("parcels", stereo_box_130(), STYLES="nope"), "StyleNotDefined"),
        (map_query("parcels", stereo_box_130(), crs="EPSG:9999"), "InvalidCRS"),
        (map_query("parcels", stereo_box_130(), FORMAT="image/gif"), "InvalidFormat"),
        ("VERSION=1.3.0&REQUEST=Foo", "OperationNotSupported"),
    ],
)
def test_exceptions_xml_130(client: FlaskClient, query: str, code: str) -> None:
    data, content_type = get(client, query)
    assert content_type.startswith("text/xml")
    assert etree.fromstring(data).find(f"{OGC}ServiceException").get("code") == code


def test_exceptions_111_inimage_and_blank(client: FlaskClient) -> None:
    data, content_type = get(
        client, map_query("nope", f"{MIN_E},{MIN_N},{MAX_E},{MAX_N}", version="1.1.1")
    )
    assert content_type.startswith("application/vnd.ogc.se_xml")
    assert etree.fromstring(data).find("ServiceException").get("code") == "LayerNotDefined"
    inimage, content_type = get(client, map_query("nope", stereo_box_130(), EXCEPTIONS="INIMAGE"))
    assert content_type == "image/png"
    assert extrema(image(inimage), 0) != (255, 255)  # the message is drawn
    blank, content_type = get(
        client, map_query("nope", stereo_box_130(), EXCEPTIONS="BLANK", TRANSPARENT="TRUE")
    )
    assert content_type == "image/png" and extrema(image(blank), 3) == (0, 0)
