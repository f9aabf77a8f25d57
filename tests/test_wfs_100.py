"""WFS 1.0.0 against the fixture municipality: version negotiation, the 1.0.0
capabilities, GML 2 features named by ``fid`` with every CRS written x/y, BBOX and
Filter 1.0 (``gml:Box``) in x/y, the GML 2 schema, and the OGC ServiceExceptionReport.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from lxml import etree

from gis_core.crs import transform_coords
from gis_core.settings import Settings
from tests.test_layers_data import ORIGIN_E, ORIGIN_N, layers_app, layers_settings

__all__ = ["layers_settings"]
NS = {
    "wfs": "http://www.opengis.net/wfs",
    "gml": "http://www.opengis.net/gml",
    "ogc": "http://www.opengis.net/ogc",
    "u": "https://urbangis.ro/ns/features",
    "xsd": "http://www.w3.org/2001/XMLSchema",
}
BASE = "/ogc/wfs?SERVICE=WFS&VERSION=1.0.0&"


@pytest.fixture(scope="module")
def client(layers_settings: Settings) -> FlaskClient:
    return layers_app(layers_settings, URBANGIS_WFS_MAX_COUNT=37).test_client()


def get(client: FlaskClient, query: str, status: int = 200) -> etree._Element:
    response = client.get(query if query.startswith("/") else BASE + query)
    assert response.status_code == status, response.data[:600]
    return etree.fromstring(response.data)


def numbers(root: etree._Element) -> list[str]:
    return [e.text or "" for e in root.iterfind(".//u:cadastral_number", NS)]


@pytest.mark.parametrize(
    ("query", "version"),
    [
        ("VERSION=1.0.0", "1.0.0"),
        ("VERSION=0.0.0", "1.0.0"),
        ("VERSION=1.0.5", "1.0.0"),
        ("VERSION=1.1.0", "1.1.0"),
        ("VERSION=1.5.0", "1.1.0"),
        ("ACCEPTVERSIONS=1.0.0", "1.0.0"),
        ("ACCEPTVERSIONS=3.0.0,1.0.0,2.0.0", "1.0.0"),
    ],
)
def test_version_negotiation(client: FlaskClient, query: str, version: str) -> None:
    root = get(client, f"/ogc/wfs?SERVICE=WFS&REQUEST=GetCapabilities&{query}")
    assert root.get("version") == version


def test_capabilities_100(client: FlaskClient) -> None:
    root = get(client, "REQUEST=GetCapabilities")
    assert root.tag == "{http://www.opengis.net/wfs}WFS_Capabilities"
    parcels = next(
        f
        for f in root.iterfind(".//wfs:FeatureType", NS)
        if f.findtext("wfs:Name", "", NS) == "urbangis:parcels"
    )
    assert parcels.findtext("wfs:SRS", "", NS) == "EPSG:3844"
    box = parcels.find("wfs:LatLongBoundingBox", NS)
    assert box is not None and 23 < float(box.get("minx", "0")) < 24
    assert root.find(".//wfs:GetFeature/wfs:ResultFormat/wfs:GML2", NS) is not None
    assert root.find(".//ogc:Spatial_Operators/ogc:BBOX", NS) is not None


def test_features_in_gml2_with_fid_and_xy(client: FlaskClient) -> None:
    root = get(client, "REQUEST=GetFeature&TYPENAME=parcels&MAXFEATURES=3&SORTBY=cadastral_number")
    assert root.tag == "{http://www.opengis.net/wfs}FeatureCollection"
    assert root.find("gml:boundedBy", NS) is not None
    members = root.findall("gml:featureMember", NS)
    assert len(members) == 3
    feature = members[0][0]
    assert feature.get("fid", "").startswith("parcels.")
    assert feature.get("{http://www.opengis.net/gml}id") is None
    coordinates = feature.findtext(".//gml:coordinates", "", NS).split()
    x, y = (float(v) for v in coordinates[0].split(","))
    assert (x, y) == (ORIGIN_E, ORIGIN_N)  # east first, though EPSG:3844 is north first
    assert feature.find(".//gml:MultiPolygon", NS).get("srsName") == "EPSG:3844"


def test_bbox_and_filter_are_xy(client: FlaskClient) -> None:
    box = f"{ORIGIN_E + 10},{ORIGIN_N + 10},{ORIGIN_E + 40},{ORIGIN_N + 90}"
    root = get(client, f"REQUEST=GetFeature&TYPENAME=parcels&BBOX={box}")
    assert sorted(numbers(root)) == ["200000", "200001"]
    lon, lat = transform_coords(3844, 4326, ORIGIN_E + 20, ORIGIN_N + 20)
    lon2, lat2 = transform_coords(3844, 4326, ORIGIN_E + 30, ORIGIN_N + 30)
    flt = (
        "<Filter xmlns='http://www.opengis.net/ogc' xmlns:gml='http://www.opengis.net/gml'>"
        "<BBOX><PropertyName>geom</PropertyName><gml:Box srsName='EPSG:4326'>"
        f"<gml:coordinates>{float(lon)},{float(lat)} {float(lon2)},{float(lat2)}"
        "</gml:coordinates></gml:Box></BBOX></Filter>"
    )
    root = get(client, f"REQUEST=GetFeature&TYPENAME=parcels&FILTER={quote(flt)}")
    assert numbers(root) == ["200000"]


def test_schema_is_gml2(client: FlaskClient) -> None:
    root = get(client, "REQUEST=DescribeFeatureType&TYPENAME=parcels")
    imported = root.find("xsd:import", NS)
    assert imported is not None and "gml/2.1.2" in imported.get("schemaLocation", "")
    geometry = next(e for e in root.iter("{*}element") if e.get("name") == "geom")
    assert geometry.get("type") == "gml:MultiPolygonPropertyType"


@pytest.mark.parametrize(
    ("query", "code", "locator"),
    [
        ("REQUEST=GetFeature&TYPENAME=nope", "InvalidParameterValue", "typeNames"),
        ("REQUEST=GetPropertyValue&TYPENAME=parcels", "OperationNotSupported", "request"),
        (
            "REQUEST=GetFeature&TYPENAME=parcels&OUTPUTFORMAT=gml32",
            "InvalidParameterValue",
            "outputFormat",
        ),
    ],
)
def test_exceptions_are_service_exception_reports(
    client: FlaskClient, query: str, code: str, locator: str
) -> None:
    root = get(client, query, status=400)
    assert root.tag == "{http://www.opengis.net/ogc}ServiceExceptionReport"
    found = root.find("ogc:ServiceException", NS)
    assert found is not None and (found.get("code"), found.get("locator")) == (code, locator)


def test_post_100(client: FlaskClient) -> None:
    body = (
        "<wfs:GetFeature service='WFS' version='1.0.0' maxFeatures='2' "
        "xmlns:wfs='http://www.opengis.net/wfs' xmlns:ogc='http://www.opengis.net/ogc'>"
        "<wfs:Query typeName='parcels'><ogc:Filter><ogc:PropertyIsLike wildCard='*' "
        "singleChar='.' escapeChar='!'><ogc:PropertyName>cadastral_number</ogc:PropertyName>"
        "<ogc:Literal>20001*</ogc:Literal></ogc:PropertyIsLike></ogc:Filter></wfs:Query>"
        "</wfs:GetFeature>"
    )
    response = client.post("/ogc/wfs", data=body, content_type="text/xml")
    root = etree.fromstring(response.data)
    assert len(root.findall("gml:featureMember", NS)) == 2
    assert all(n.startswith("20001") for n in numbers(root))
