"""WFS 2.0.0 and 1.1.0 against the fixture municipality: capabilities, schemas, features
with paging, FES filters, sorting, property selection, CRSs, stored queries, per-role
fields and rows, and exception reports (never SQL) for bad input.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import orjson
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree

from gis_core.crs import transform_coords
from gis_core.db import create_engine
from gis_core.settings import Settings
from layers import fes, wfs_gml
from tests.test_layers_data import (
    ORIGIN_E,
    ORIGIN_N,
    OWNER_NAME,
    PARCEL_COUNT,
    SECRET_NOTE,
    layers_app,
    layers_settings,
    page_failing_on_skipped_row,
)
from webmap.auth import KEYS, create_api_key

__all__ = ["layers_settings"]
NS = {
    "wfs": "http://www.opengis.net/wfs/2.0",
    "wfs11": "http://www.opengis.net/wfs",
    "gml": "http://www.opengis.net/gml/3.2",
    "gml31": "http://www.opengis.net/gml",
    "ows": "http://www.opengis.net/ows/1.1",
    "ows10": "http://www.opengis.net/ows",
    "u": "https://urbangis.ro/ns/features",
    "xsd": "http://www.w3.org/2001/XMLSchema",
}
BASE = "/ogc/wfs?SERVICE=WFS&VERSION=2.0.0&"
PAGE = 37


@pytest.fixture(scope="module")
def app(layers_settings: Settings) -> Flask:
    return layers_app(layers_settings, URBANGIS_WFS_MAX_COUNT=PAGE)


@pytest.fixture(scope="module")
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="module")
def keys(layers_settings: Settings) -> Iterator[dict[str, str]]:
    engine = create_engine(layers_settings)
    with engine.begin() as conn:
        made = {
            role: create_api_key(conn, f"wfs-{role}", role)
            for role in ("portal", "clerk", "planner", "admin")
        }
    yield made
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM core.api_key WHERE name LIKE 'wfs-%'"))
    engine.dispose()
    KEYS.forget()


def get(client: FlaskClient, query: str, key: str | None = None, status: int = 200) -> bytes:
    headers = {"X-API-Key": key} if key else {}
    response = client.get(BASE + query if not query.startswith("/") else query, headers=headers)
    assert response.status_code == status, response.data[:600]
    return response.data


def xml(data: bytes) -> etree._Element:
    return etree.fromstring(data)


def exception(data: bytes) -> tuple[str, str | None]:
    root = xml(data)
    found = root.find("{*}Exception")
    assert found is not None, data[:400]
    return found.get("exceptionCode", ""), found.get("locator")


def numbers(root: etree._Element) -> list[str]:
    return [e.text or "" for e in root.iterfind(".//u:cadastral_number", NS)]


# -- capabilities and schemas -----------------------------------------------------------
def test_capabilities_20_list_the_public_layers_with_crs_and_paging(client: FlaskClient) -> None:
    root = xml(get(client, "REQUEST=GetCapabilities"))
    assert root.get("version") == "2.0.0"
    names = [e.text for e in root.iterfind(".//wfs:FeatureType/wfs:Name", NS)]
    assert {"urbangis:parcels", "urbangis:zones", "urbangis:buildings"} <= set(names)
    parcels = next(
        e
        for e in root.iterfind(".//wfs:FeatureType", NS)
        if e.findtext("wfs:Name", "", NS).endswith("parcels")
    )
    assert parcels.findtext("wfs:DefaultCRS", "", NS) == "urn:ogc:def:crs:EPSG::3844"
    others = {e.text for e in parcels.iterfind("wfs:OtherCRS", NS)}
    assert {
        "urn:ogc:def:crs:EPSG::4326",
        "urn:ogc:def:crs:EPSG::4258",
        "urn:ogc:def:crs:EPSG::3857",
    } <= others
    lower = parcels.findtext("ows:WGS84BoundingBox/ows:LowerCorner", "", NS).split()
    assert 23.0 < float(lower[0]) < 24.0 and 46.0 < float(lower[1]) < 47.5
    constraints = {
        c.get("name"): c.findtext("ows:DefaultValue", "", NS)
        for c in root.iterfind(".//ows:OperationsMetadata/ows:Constraint", NS)
    }
    assert constraints["ImplementsResultPaging"] == "TRUE"
    assert constraints["CountDefault"] == str(PAGE)


def test_capabilities_version_negotiation(client: FlaskClient) -> None:
    assert (
        xml(
            get(client, "/ogc/wfs?SERVICE=WFS&REQUEST=GetCapabilities&ACCEPTVERSIONS=1.1.0,2.0.0")
        ).get("version")
        == "1.1.0"
    )
    assert (
        xml(get(client, "/ogc/wfs?SERVICE=WFS&REQUEST=GetCapabilities&VERSION=1.1.0")).get(
            "version"
        )
        == "1.1.0"
    )
    data = get(
        client, "/ogc/wfs?SERVICE=WFS&REQUEST=GetCapabilities&ACCEPTVERSIONS=9.9.9", status=400
    )
    assert exception(data) == ("VersionNegotiationFailed", "acceptVersions")


def test_describe_feature_type_has_only_the_roles_fields(
    client: FlaskClient, keys: dict[str, str]
) -> None:
    public = xml(get(client, "REQUEST=DescribeFeatureType&TYPENAMES=urbangis:parcels"))
    fields = {e.get("name") for e in public.iterfind(".//xsd:sequence/xsd:element", NS)}
    assert {"geom", "cadastral_number", "measured_area"} <= fields
    assert "owners" not in fields and "notes" not in fields
    clerk = xml(get(client, "REQUEST=DescribeFeatureType&TYPENAMES=parcels", keys["clerk"]))
    assert "owners" in {e.get("name") for e in clerk.iterfind(".//xsd:sequence/xsd:element", NS)}
    code, locator = exception(get(client, "REQUEST=DescribeFeatureType&TYPENAMES=nope", status=400))
    assert code == "InvalidParameterValue" and locator == "typeName"


# -- GetFeature -----------------------------------------------------------------------
def test_paging_reads_every_current_parcel_once(client: FlaskClient) -> None:
    seen: list[str] = []
    url = BASE + f"REQUEST=GetFeature&TYPENAMES=urbangis:parcels&COUNT={PAGE}"
    pages = 0
    while url:
        root = xml(get(client, url.replace("http://localhost", "")))
        pages += 1
        seen.extend(numbers(root))
        assert int(root.get("numberReturned", "0")) == len(numbers(root))
        assert root.get("numberMatched") == str(PARCEL_COUNT)
        url = root.get("next") or ""
    assert pages == -(-PARCEL_COUNT // PAGE)
    assert len(seen) == len(set(seen)) == PARCEL_COUNT


def test_hits_and_count_zero(client: FlaskClient) -> None:
    root = xml(get(client, "REQUEST=GetFeature&TYPENAMES=parcels&RESULTTYPE=hits"))
    assert root.get("numberMatched") == str(PARCEL_COUNT) and root.get("numberReturned") == "0"
    root = xml(get(client, "REQUEST=GetFeature&TYPENAMES=parcels&COUNT=0"))
    assert root.get("numberReturned") == "0" and not numbers(root)


def test_geometry_in_stereo70_and_wgs84_axis_order(client: FlaskClient) -> None:
    flt = quote(
        "<fes:Filter xmlns:fes='http://www.opengis.net/fes/2.0'><fes:PropertyIsEqualTo>"
        "<fes:ValueReference>cadastral_number</fes:ValueReference>"
        "<fes:Literal>200000</fes:Literal></fes:PropertyIsEqualTo></fes:Filter>"
    )
    stereo = xml(get(client, f"REQUEST=GetFeature&TYPENAMES=parcels&FILTER={flt}"))
    pos = stereo.findtext(".//gml:posList", "", NS).split()
    assert [float(pos[0]), float(pos[1])] == [ORIGIN_N, ORIGIN_E]
    assert stereo.find(".//gml:MultiSurface", NS).get("srsName") == "urn:ogc:def:crs:EPSG::3844"
    wgs = xml(get(client, f"REQUEST=GetFeature&TYPENAMES=parcels&SRSNAME=EPSG:4326&FILTER={flt}"))
    lat, lon = (float(v) for v in wgs.findtext(".//gml:posList", "", NS).split()[:2])
    e_lon, e_lat = transform_coords(3844, 4326, ORIGIN_E, ORIGIN_N)
    assert lat == pytest.approx(float(e_lat), abs=1e-7) and lon == pytest.approx(
        float(e_lon), abs=1e-7
    )


def test_fes_comparison_logical_and_like(client: FlaskClient) -> None:
    flt = (
        "<Filter><And><PropertyIsLike wildCard='*' singleChar='.' escapeChar='!'>"
        "<ValueReference>cadastral_number</ValueReference><Literal>20000*</Literal>"
        "</PropertyIsLike><PropertyIsGreaterThan><ValueReference>urbangis:cadastral_number"
        "</ValueReference><Literal>200005</Literal></PropertyIsGreaterThan></And></Filter>"
    )
    root = xml(get(client, f"REQUEST=GetFeature&TYPENAMES=parcels&FILTER={quote(flt)}"))
    assert sorted(numbers(root)) == ["200006", "200007", "200008", "200009"]


def test_fes_spatial_filter_in_wgs84(client: FlaskClient) -> None:
    lon, lat = transform_coords(3844, 4326, ORIGIN_E + 25, ORIGIN_N + 25)
    flt = (
        "<fes:Filter xmlns:fes='http://www.opengis.net/fes/2.0' "
        "xmlns:gml='http://www.opengis.net/gml/3.2'><fes:Intersects>"
        "<fes:ValueReference>geom</fes:ValueReference>"
        "<gml:Point gml:id='p1' srsName='urn:ogc:def:crs:EPSG::4326'>"
        f"<gml:pos>{float(lat)} {float(lon)}</gml:pos></gml:Point></fes:Intersects></fes:Filter>"
    )
    root = xml(get(client, f"REQUEST=GetFeature&TYPENAMES=parcels&FILTER={quote(flt)}"))
    assert numbers(root) == ["200000"]


def test_bbox_with_crs_and_sort_and_property_selection(client: FlaskClient) -> None:
    corners = f"{ORIGIN_N + 10},{ORIGIN_E + 10},{ORIGIN_N + 90},{ORIGIN_E + 40}"
    box = corners + ",urn:ogc:def:crs:EPSG::3844"
    root = xml(
        get(
            client,
            f"REQUEST=GetFeature&TYPENAMES=parcels&BBOX={box}&SORTBY=cadastral_number DESC"
            "&PROPERTYNAME=cadastral_number",
        )
    )
    assert numbers(root) == ["200001", "200000"]
    assert root.find(".//u:geom", NS) is None and root.find(".//u:measured_area", NS) is None


def test_resource_ids_and_get_feature_by_id(client: FlaskClient, layers_settings: Settings) -> None:
    engine = create_engine(layers_settings)
    with engine.connect() as conn:
        ident = conn.execute(
            sa.text(
                "SELECT id FROM cadastre.parcel "
                "WHERE cadastral_number='200003' AND valid_to IS NULL"
            )
        ).scalar_one()
    engine.dispose()
    root = xml(get(client, f"REQUEST=GetFeature&RESOURCEID=parcels.{ident}"))
    assert numbers(root) == ["200003"]
    single = xml(
        get(
            client,
            "REQUEST=GetFeature&STOREDQUERY_ID=urn:ogc:def:query:OGC-WFS::GetFeatureById"
            f"&ID=parcels.{ident}",
        )
    )
    assert single.tag == "{https://urbangis.ro/ns/features}parcels"
    assert single.get("{http://www.opengis.net/gml/3.2}id") == f"parcels.{ident}"
    missing = get(
        client,
        "REQUEST=GetFeature&STOREDQUERY_ID=urn:ogc:def:query:OGC-WFS::GetFeatureById&ID=parcels.999999",
        status=404,
    )
    assert exception(missing)[0] == "NotFound"
    flt = quote(f"<Filter><ResourceId rid='parcels.{ident}'/></Filter>")
    assert numbers(xml(get(client, f"REQUEST=GetFeature&TYPENAMES=parcels&FILTER={flt}"))) == [
        "200003"
    ]


def test_geojson_output(client: FlaskClient) -> None:
    data = orjson.loads(
        get(client, "REQUEST=GetFeature&TYPENAMES=parcels&OUTPUTFORMAT=application/json&COUNT=5")
    )
    assert data["type"] == "FeatureCollection" and len(data["features"]) == 5
    assert data["numberMatched"] == PARCEL_COUNT and data["links"][0]["rel"] == "next"
    assert data["features"][0]["id"].startswith("parcels.")
    # GeoJSON keeps x/y axes (RFC 7946) whatever the CRS's own axis order
    one = "&FILTER=" + quote("<Filter><ResourceId rid='x'/></Filter>")
    query = (
        "REQUEST=GetFeature&TYPENAMES=parcels&OUTPUTFORMAT=application/json"
        "&SORTBY=cadastral_number&COUNT=1"
    )
    stereo = orjson.loads(get(client, query))["features"][0]["geometry"]["coordinates"]
    assert stereo[0][0][0] == [ORIGIN_E, ORIGIN_N]
    wgs = orjson.loads(get(client, query + "&SRSNAME=EPSG:4326"))["features"][0]["geometry"]
    lon, lat = transform_coords(3844, 4326, ORIGIN_E, ORIGIN_N)
    assert wgs["coordinates"][0][0][0] == pytest.approx([float(lon), float(lat)], abs=1e-7)
    assert orjson.loads(get(client, query + one))["features"] == []


def test_get_property_value(client: FlaskClient) -> None:
    root = xml(
        get(
            client,
            "REQUEST=GetPropertyValue&TYPENAMES=parcels&VALUEREFERENCE=cadastral_number"
            "&SORTBY=cadastral_number&COUNT=3",
        )
    )
    assert root.tag == "{http://www.opengis.net/wfs/2.0}ValueCollection"
    assert numbers(root) == ["200000", "200001", "200002"]


def test_wfs_110_gml311(client: FlaskClient) -> None:
    root = xml(
        get(
            client,
            "/ogc/wfs?SERVICE=WFS&VERSION=1.1.0&REQUEST=GetFeature&TYPENAME=parcels&MAXFEATURES=3",
        )
    )
    assert root.tag == "{http://www.opengis.net/wfs}FeatureCollection"
    assert root.get("numberOfFeatures") == "3"
    assert len(root.findall("gml31:featureMember", NS)) == 3
    caps = xml(get(client, "/ogc/wfs?SERVICE=WFS&VERSION=1.1.0&REQUEST=GetCapabilities"))
    assert caps.find(".//wfs11:FeatureType/wfs11:DefaultSRS", NS) is not None


# -- roles ----------------------------------------------------------------------------
def test_personal_data_only_for_clerks(client: FlaskClient, keys: dict[str, str]) -> None:
    query = "REQUEST=GetFeature&TYPENAMES=parcels&COUNT=1000"
    assert OWNER_NAME.encode() not in get(client, query)
    assert SECRET_NOTE.encode() not in get(client, query, keys["portal"])
    assert OWNER_NAME.encode() in get(client, query, keys["clerk"])
    assert SECRET_NOTE.encode() in get(client, query, keys["planner"])
    flt = quote(
        "<Filter><PropertyIsEqualTo><ValueReference>owners</ValueReference>"
        f"<Literal>{OWNER_NAME}</Literal></PropertyIsEqualTo></Filter>"
    )
    code, locator = exception(
        get(client, f"REQUEST=GetFeature&TYPENAMES=parcels&FILTER={flt}", status=400)
    )
    assert code == "InvalidParameterValue" and locator == "filter"
    assert numbers(
        xml(get(client, f"REQUEST=GetFeature&TYPENAMES=parcels&FILTER={flt}", keys["clerk"]))
    ) == ["200001"]


def test_draft_zones_only_for_planners(client: FlaskClient, keys: dict[str, str]) -> None:
    def codes(key: str | None) -> set[str]:
        root = xml(get(client, "REQUEST=GetFeature&TYPENAMES=zones", key))
        return {e.text or "" for e in root.iterfind(".//u:utr_code", NS)}

    assert "DRAFT1" not in codes(None) and "DRAFT1" not in codes(keys["portal"])
    assert "DRAFT1" in codes(keys["planner"])


# -- bad input ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "code", "locator"),
    [
        ("REQUEST=GetFeature", "MissingParameterValue", "typeNames"),
        ("REQUEST=GetFeature&TYPENAMES=nope", "InvalidParameterValue", "typeNames"),
        ("REQUEST=GetFeature&TYPENAMES=parcels&SORTBY=nope", "InvalidParameterValue", "sortBy"),
        (
            "REQUEST=GetFeature&TYPENAMES=parcels&PROPERTYNAME=owners",
            "InvalidParameterValue",
            "propertyName",
        ),
        ("REQUEST=GetFeature&TYPENAMES=parcels&FILTER=foo", "InvalidParameterValue", "filter"),
        (
            "REQUEST=GetFeature&TYPENAMES=parcels&SRSNAME=EPSG:9999",
            "InvalidParameterValue",
            "srsName",
        ),
        ("REQUEST=GetFeature&TYPENAMES=parcels&BBOX=1", "InvalidParameterValue", "bbox"),
        ("REQUEST=GetFeature&TYPENAMES=parcels&COUNT=-1", "InvalidParameterValue", "count"),
        (
            "REQUEST=GetFeature&TYPENAMES=parcels&OUTPUTFORMAT=foo",
            "InvalidParameterValue",
            "outputFormat",
        ),
        ("REQUEST=GetFeatureWithLock&TYPENAMES=parcels", "OperationNotSupported", "request"),
        ("REQUEST=GetFeature&RESOURCEID=foo", "InvalidParameterValue", "resourceId"),
    ],
)
def test_bad_requests_get_exception_reports(
    client: FlaskClient, query: str, code: str, locator: str
) -> None:
    data = get(client, query, status=400)
    assert exception(data) == (code, locator)
    assert b"SELECT" not in data and b"psycopg" not in data


def test_unknown_property_in_filter_is_a_report_not_sql(client: FlaskClient) -> None:
    flt = quote(
        "<Filter><PropertyIsEqualTo><ValueReference>id; DROP TABLE x</ValueReference>"
        "<Literal>1</Literal></PropertyIsEqualTo></Filter>"
    )
    code, locator = exception(
        get(client, f"REQUEST=GetFeature&TYPENAMES=parcels&FILTER={flt}", status=400)
    )
    assert (code, locator) == ("InvalidParameterValue", "filter")


def test_entities_are_refused(tmp_path: object) -> None:
    evil = (
        '<?xml version="1.0"?><!DOCTYPE f [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        "<Filter><PropertyIsEqualTo><ValueReference>a</ValueReference><Literal>&x;</Literal>"
        "</PropertyIsEqualTo></Filter>"
    )
    with pytest.raises(fes.FilterError):
        fes.parse_filter(evil, "2.0.0")


def test_like_patterns_are_translated() -> None:
    assert fes.like_pattern("a*b.c!*", "*", ".", "!") == "a%b_c*"
    assert fes.like_pattern("50%_x", "*", ".", "!") == "50\\%\\_x"


def test_members_are_built_only_for_the_rows_of_the_page(layers_settings: Settings) -> None:
    """A member's XML is built after LIMIT and OFFSET: a field that fails on a skipped
    row (division by zero on the first parcel) does not fail its page."""
    engine = create_engine(layers_settings)
    try:
        with engine.connect() as conn:
            first, query = page_failing_on_skipped_row(conn)
            text = wfs_gml.feature_xml(query.layer, query.output_fields, 3844, wfs_gml.GML_32)
            members = conn.execute(wfs_gml.member_statement(query, text)).scalars().all()
    finally:
        engine.dispose()
    assert len(members) == 3  # with the look-ahead row
    assert all(f'gml:id="parcels.{first}"' not in member for member in members)
    assert all("<urbangis:probe>" in member for member in members)
