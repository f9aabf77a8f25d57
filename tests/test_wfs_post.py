"""WFS 2.0.0 and 1.1.0 in the XML (POST) encoding against the fixture municipality:
every operation, filters with nested resource ids and PropertyIsNil, several queries,
paging links that are GET URLs, per-role fields, and bad or unsafe documents refused
with an exception report naming what is wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree

from gis_core.db import create_engine
from gis_core.settings import Settings
from tests.test_layers_data import OWNER_NAME, PARCEL_COUNT, layers_app, layers_settings
from webmap.auth import KEYS, create_api_key

__all__ = ["layers_settings"]
WFS = "http://www.opengis.net/wfs/2.0"
FES = "http://www.opengis.net/fes/2.0"
NS = {
    "wfs": WFS,
    "wfs11": "http://www.opengis.net/wfs",
    "gml31": "http://www.opengis.net/gml",
    "ows": "http://www.opengis.net/ows/1.1",
    "u": "https://urbangis.ro/ns/features",
    "xsd": "http://www.w3.org/2001/XMLSchema",
    "xlink": "http://www.w3.org/1999/xlink",
}
HEAD = f'service="WFS" version="2.0.0" xmlns="{WFS}" xmlns:fes="{FES}"'
PAGE = 37


@pytest.fixture(scope="module")
def client(layers_settings: Settings) -> FlaskClient:
    app: Flask = layers_app(layers_settings, URBANGIS_WFS_MAX_COUNT=PAGE)
    return app.test_client()


@pytest.fixture(scope="module")
def clerk_key(layers_settings: Settings) -> Iterator[str]:
    engine = create_engine(layers_settings)
    with engine.begin() as conn:
        key = create_api_key(conn, "wfs-post-clerk", "clerk")
    yield key
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM core.api_key WHERE name = 'wfs-post-clerk'"))
    engine.dispose()
    KEYS.forget()


@pytest.fixture(scope="module")
def parcel_id(layers_settings: Settings) -> int:
    engine = create_engine(layers_settings)
    with engine.connect() as conn:
        found = conn.execute(
            sa.text(
                "SELECT id FROM cadastre.parcel "
                "WHERE cadastral_number = '200003' AND valid_to IS NULL"
            )
        ).scalar_one()
    engine.dispose()
    return int(found)


def post(
    client: FlaskClient, body: str, status: int = 200, key: str | None = None
) -> etree._Element:
    headers = {"X-API-Key": key} if key else {}
    response = client.post(
        "/ogc/wfs", data=body.encode(), content_type="application/xml", headers=headers
    )
    assert response.status_code == status, response.data[:600]
    return etree.fromstring(response.data)


def numbers(root: etree._Element) -> list[str]:
    return [e.text or "" for e in root.iterfind(".//u:cadastral_number", NS)]


def exception(root: etree._Element) -> tuple[str, str | None]:
    found = root.find("{*}Exception")
    assert found is not None, etree.tostring(root)[:400]
    return found.get("exceptionCode", ""), found.get("locator")


def like(pattern: str) -> str:
    return (
        "<fes:PropertyIsLike wildCard='*' singleChar='.' escapeChar='!'>"
        f"<fes:ValueReference>cadastral_number</fes:ValueReference>"
        f"<fes:Literal>{pattern}</fes:Literal></fes:PropertyIsLike>"
    )


# -- operations ------------------------------------------------------------------------
def test_get_feature_with_nested_resource_id_sort_and_properties(
    client: FlaskClient, parcel_id: int
) -> None:
    body = (
        f"<GetFeature {HEAD}><Query typeNames='urbangis:parcels' xmlns:urbangis="
        "'https://urbangis.ro/ns/features'>"
        "<PropertyName>cadastral_number</PropertyName>"
        f"<fes:Filter><fes:And>{like('20000.')}<fes:Not>"
        f"<fes:ResourceId rid='parcels.{parcel_id}'/></fes:Not></fes:And></fes:Filter>"
        "<fes:SortBy><fes:SortProperty><fes:ValueReference>cadastral_number"
        "</fes:ValueReference><fes:SortOrder>DESC</fes:SortOrder></fes:SortProperty>"
        "</fes:SortBy></Query></GetFeature>"
    )
    root = post(client, body)
    assert root.tag == f"{{{WFS}}}FeatureCollection"
    expected = [f"2000{i:02d}" for i in range(9, -1, -1) if i != 3]
    assert numbers(root) == expected
    assert root.find(".//u:geom", NS) is None and root.find(".//u:measured_area", NS) is None


def test_resource_id_inside_or_and_property_is_nil(client: FlaskClient, parcel_id: int) -> None:
    body = (
        f"<GetFeature {HEAD} resultType='hits'><Query typeNames='parcels'><fes:Filter>"
        "<fes:Or><fes:PropertyIsNil><fes:ValueReference>cadastral_number</fes:ValueReference>"
        f"</fes:PropertyIsNil><fes:ResourceId rid='parcels.{parcel_id}'/></fes:Or>"
        "</fes:Filter></Query></GetFeature>"
    )
    assert post(client, body).get("numberMatched") == "1"
    never_nil = body.replace("<fes:Or>", "<fes:Or><fes:Not>").replace(
        "</fes:PropertyIsNil>", "</fes:PropertyIsNil></fes:Not>"
    )
    assert post(client, never_nil).get("numberMatched") == str(PARCEL_COUNT)


def test_paging_links_are_get_urls(client: FlaskClient) -> None:
    body = (
        f"<GetFeature {HEAD} count='4' startIndex='2'><Query typeNames='parcels'>"
        f"<fes:Filter>{like('20000.')}</fes:Filter><fes:SortBy><fes:SortProperty>"
        "<fes:ValueReference>cadastral_number</fes:ValueReference></fes:SortProperty>"
        "</fes:SortBy></Query></GetFeature>"
    )
    root = post(client, body)
    assert numbers(root) == ["200002", "200003", "200004", "200005"]
    following = urlsplit(root.get("next", ""))
    page = etree.fromstring(client.get(f"{following.path}?{following.query}").data)
    assert numbers(page) == ["200006", "200007", "200008", "200009"]


def test_several_queries_with_and_without_filter(client: FlaskClient) -> None:
    body = (
        f"<GetFeature {HEAD} resultType='hits'><Query typeNames='parcels'>"
        f"<fes:Filter>{like('20000*')}</fes:Filter></Query>"
        "<Query typeNames='zones'/></GetFeature>"
    )
    hits = int(post(client, body).get("numberMatched", "0"))
    zones = post(
        client, f"<GetFeature {HEAD} resultType='hits'><Query typeNames='zones'/></GetFeature>"
    )
    assert hits == 10 + int(zones.get("numberMatched", "0"))


def test_get_property_value_and_stored_query(client: FlaskClient, parcel_id: int) -> None:
    body = (
        f"<GetPropertyValue {HEAD} valueReference='cadastral_number' count='3'>"
        "<Query typeNames='parcels'><fes:SortBy><fes:SortProperty><fes:ValueReference>"
        "cadastral_number</fes:ValueReference></fes:SortProperty></fes:SortBy></Query>"
        "</GetPropertyValue>"
    )
    root = post(client, body)
    assert root.tag == f"{{{WFS}}}ValueCollection"
    assert numbers(root) == ["200000", "200001", "200002"]
    stored = (
        f"<GetFeature {HEAD}><StoredQuery id='urn:ogc:def:query:OGC-WFS::GetFeatureById'>"
        f"<Parameter name='ID'>parcels.{parcel_id}</Parameter></StoredQuery></GetFeature>"
    )
    feature = post(client, stored)
    assert feature.tag == "{https://urbangis.ro/ns/features}parcels"
    assert numbers(feature) == ["200003"]


def test_capabilities_describe_and_stored_queries(client: FlaskClient) -> None:
    caps = post(client, f"<GetCapabilities service='WFS' xmlns='{WFS}'/>")
    assert caps.get("version") == "2.0.0"
    posts = caps.findall(".//ows:Operation[@name='GetFeature']/ows:DCP/ows:HTTP/ows:Post", NS)
    assert posts and posts[0].get(f"{{{NS['xlink']}}}href", "").endswith("/ogc/wfs")
    encoding = caps.find(".//ows:Constraint[@name='XMLEncoding']/ows:DefaultValue", NS)
    assert encoding is not None and encoding.text == "TRUE"
    nil = caps.find(".//{*}ComparisonOperator[@name='PropertyIsNil']")
    assert nil is not None
    older = post(
        client,
        f"<GetCapabilities service='WFS' xmlns='{WFS}' xmlns:ows='{NS['ows']}'>"
        "<ows:AcceptVersions><ows:Version>1.1.0</ows:Version></ows:AcceptVersions>"
        "</GetCapabilities>",
    )
    assert older.get("version") == "1.1.0"
    schema = post(
        client, f"<DescribeFeatureType {HEAD}><TypeName>parcels</TypeName></DescribeFeatureType>"
    )
    names = {e.get("name") for e in schema.iterfind(".//xsd:element", NS)}
    assert {"parcels", "cadastral_number"} <= names and "owners" not in names
    listed = post(client, f"<ListStoredQueries {HEAD}/>")
    assert listed.find("wfs:StoredQuery", NS) is not None
    described = post(
        client,
        f"<DescribeStoredQueries {HEAD}><StoredQueryId>"
        "urn:ogc:def:query:OGC-WFS::GetFeatureById</StoredQueryId></DescribeStoredQueries>",
    )
    assert described.find("wfs:StoredQueryDescription", NS) is not None


def test_wfs_110_post(client: FlaskClient) -> None:
    body = (
        "<wfs:GetFeature service='WFS' version='1.1.0' maxFeatures='2' "
        "xmlns:wfs='http://www.opengis.net/wfs' xmlns:ogc='http://www.opengis.net/ogc'>"
        "<wfs:Query typeName='parcels'><ogc:Filter><ogc:PropertyIsLike wildCard='*' "
        "singleChar='.' escapeChar='!'><ogc:PropertyName>cadastral_number</ogc:PropertyName>"
        "<ogc:Literal>20001*</ogc:Literal></ogc:PropertyIsLike></ogc:Filter>"
        "<ogc:SortBy><ogc:SortProperty><ogc:PropertyName>cadastral_number</ogc:PropertyName>"
        "<ogc:SortOrder>DESC</ogc:SortOrder></ogc:SortProperty></ogc:SortBy>"
        "</wfs:Query></wfs:GetFeature>"
    )
    root = post(client, body)
    assert root.tag == "{http://www.opengis.net/wfs}FeatureCollection"
    assert numbers(root) == ["200019", "200018"]
    assert len(root.findall("gml31:featureMember", NS)) == 2


def test_kvp_sent_as_a_form(client: FlaskClient) -> None:
    response = client.post(
        "/ogc/wfs",
        data={
            "SERVICE": "WFS",
            "VERSION": "2.0.0",
            "REQUEST": "GetFeature",
            "TYPENAMES": "parcels",
            "RESOURCEID": "parcels.0",
            "RESULTTYPE": "hits",
        },
    )
    assert response.status_code == 200
    assert etree.fromstring(response.data).get("numberMatched") == "0"


# -- roles -------------------------------------------------------------------------------
def test_personal_fields_only_for_clerks(client: FlaskClient, clerk_key: str) -> None:
    body = (
        f"<GetFeature {HEAD}><Query typeNames='parcels'><PropertyName>owners</PropertyName>"
        "<fes:Filter><fes:PropertyIsEqualTo><fes:ValueReference>cadastral_number"
        "</fes:ValueReference><fes:Literal>200001</fes:Literal></fes:PropertyIsEqualTo>"
        "</fes:Filter></Query></GetFeature>"
    )
    assert exception(post(client, body, status=400)) == ("InvalidParameterValue", "propertyName")
    found = post(client, body, key=clerk_key)
    assert OWNER_NAME in etree.tostring(found, encoding="unicode")


# -- bad and unsafe documents ---------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "code", "locator"),
    [
        ("<GetFeature", "InvalidParameterValue", "body"),
        (
            '<?xml version="1.0"?><!DOCTYPE g [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            f"<GetFeature {HEAD}><Query typeNames='&x;'/></GetFeature>",
            "InvalidParameterValue",
            "body",
        ),
        ("<Foo xmlns='urn:x'/>", "InvalidParameterValue", "request"),
        (f"<Transaction {HEAD}/>", "OperationNotSupported", "request"),
        (f"<GetFeature {HEAD}/>", "MissingParameterValue", "Query"),
        (f"<GetFeature {HEAD}><Query/></GetFeature>", "MissingParameterValue", "typeNames"),
        (
            f"<GetFeature {HEAD}><Query typeNames='parcels zones'/></GetFeature>",
            "InvalidParameterValue",
            "typeNames",
        ),
        (
            f"<GetFeature {HEAD}><Query typeNames='parcels'><fes:Filter><fes:PropertyIsNil>"
            "<fes:ValueReference>nope</fes:ValueReference></fes:PropertyIsNil></fes:Filter>"
            "</Query></GetFeature>",
            "InvalidParameterValue",
            "filter",
        ),
        (
            f"<GetFeature {HEAD}><Query typeNames='parcels'><fes:Filter><fes:Not>"
            "<fes:ResourceId rid='zones.1'/></fes:Not></fes:Filter></Query></GetFeature>",
            "InvalidParameterValue",
            "filter",
        ),
        (f"<GetFeature {HEAD}><StoredQuery/></GetFeature>", "MissingParameterValue", "id"),
    ],
)
def test_bad_documents_get_exception_reports(
    client: FlaskClient, body: str, code: str, locator: str
) -> None:
    root = post(client, body, status=400)
    assert exception(root) == (code, locator)
    text = etree.tostring(root)
    assert b"root:" not in text and b"SELECT" not in text


def test_oversized_documents_are_refused(client: FlaskClient) -> None:
    padding = " " * 2_100_000
    root = post(client, f"<GetFeature {HEAD}>{padding}</GetFeature>", status=400)
    assert exception(root) == ("InvalidParameterValue", "body")
