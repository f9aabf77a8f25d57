"""Golden comparison with MapServer's WFS 2.0 test suite (msautotest/wxs).

MapServer's ``province`` shapefile (EPSG:3978, its test mapfile publishes it in
EPSG:4326 first) and its six geometry test layers (point … multipolygon, EPSG:4326)
are loaded into test tables and published through the catalog's extra-layer API, the
province reprojected to EPSG:4326 on load so that its default CRS is MapServer's. Then
every GET request of ``wfs_200.map``, ``wfs_200_allgeoms.map`` and ``wfs_200_cite.map``
in ``requests_RUN_PARMS.tsv`` is sent to our WFS and compared with MapServer's expected
answer: exception codes, negotiated versions, numberMatched/numberReturned, the set of
feature ids, geometries (coordinates within 1e-5°), stored query ids, schema elements
and feature type names. Formatting, namespaces and prefixes may differ.

Requests that differ on purpose are listed in ``KNOWN_DIFFERENCES`` with the reason.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pytest
import shapely
import sqlalchemy as sa
from flask.testing import FlaskClient
from lxml import etree
from pyproj import Transformer

from gis_core.db import create_engine
from gis_core.settings import Settings
from layers.catalog import Field, LayerDefinition
from tests.test_layers_data import layers_app, layers_settings

__all__ = ["layers_settings"]
FIXTURES = Path("real/ogc-fixtures/mapserver-wxs")
MAPFILES = ("wfs_200.map", "wfs_200_allgeoms.map", "wfs_200_cite.map")
GEOMETRY_TYPES = {
    "point": "Point",
    "multipoint": "MultiPoint",
    "linestring": "LineString",
    "multilinestring": "MultiLineString",
    "polygon": "Polygon",
    "multipolygon": "MultiPolygon",
}
GEOMETRY_LAYERS = tuple(GEOMETRY_TYPES)
KNOWN_DIFFERENCES = {
    # MapServer answers GML 2.1.2 / 3.1.1 inside WFS 2.0; we keep WFS 2.0 to GML 3.2
    # (and GeoJSON): the 2.0 standard's mandatory encoding.
    "wfs_200_describefeaturetype_outputformat_gml212.xml": "GML 2 in WFS 2.0",
    "wfs_200_describefeaturetype_outputformat_gml311.xml": "GML 3.1.1 in WFS 2.0",
    "wfs_200_getfeature_outputformat_gml311.xml": "GML 3.1.1 in WFS 2.0",
    "wfs_200_getfeature_outputformat_gml212.xml": "GML 2 in WFS 2.0",
    "wfs_200_allgeoms_getfeature_gml2.xml": "GML 2 in WFS 2.0",
    "wfs_200_allgeoms_describefeaturetype_gml2.xml": "GML 2 in WFS 2.0",
    "wfs_200_allgeoms_getfeature_gml3.xml": "GML 3.1.1 in WFS 2.0",
    "wfs_200_allgeoms_liststoredqueries.xml": "mapfile stored query",
    "wfs_200_allgeoms_describestoredqueries.xml": "mapfile stored query",
    # MapServer reports these with the generic NoApplicableCode/OperationProcessingFailed;
    # we name the parameter at fault (InvalidParameterValue with its locator).
    "wfs_200_exception_getfeature_filter_bbox.xml": "InvalidParameterValue, locator",
    "wfs_200_exception_getfeature_filter_resourceid.xml": "InvalidParameterValue, locator",
    "wfs_200_allgeoms_exception_invalidquery.xml": "InvalidParameterValue, locator",
    "wfs_200_cite_exception_invalid_operand.xml": "InvalidParameterValue, locator",
    # MapServer cannot sort shapefile layers; every layer here is sortable, and an
    # unknown sort key is an InvalidParameterValue naming it.
    "wfs_200_post_exception_sortby.xml": "sorting supported",
    "wfs_200_post_exception_getpropertyvalue_sortby.xml": "sorting supported",
    # The same differences in the XML (POST) encoding.
    "wfs_200_post_getfeature_outputformat_gml311.xml": "GML 3.1.1 in WFS 2.0",
    "wfs_200_allgeoms_post_getfeature.xml": "GML 3.1.1 in WFS 2.0",
    "wfs_200_allgeoms_post_getfeature_count_1.xml": "GML 3.1.1 in WFS 2.0",
    "wfs_200_post_exception_updatesequence1.xml": "no updateSequence",
    "wfs_200_allgeoms_post_liststoredqueries.xml": "mapfile stored query",
    "wfs_200_allgeoms_post_describestoredqueries_with_two_id.xml": "mapfile stored query",
    "wfs_200_allgeoms_post_exception_invalidquery.xml": "InvalidParameterValue, locator",
    # User-defined stored queries of a MapServer mapfile have no counterpart here.
    "wfs_200_allgeoms_describestoredqueries_with_id.xml": "mapfile stored query",
    "wfs_200_allgeoms_describestoredqueries_with_two_id.xml": "mapfile stored query",
    "wfs_200_allgeoms_exception_myquery_missing_param.xml": "mapfile stored query",
    "wfs_200_allgeoms_myquery.xml": "mapfile stored query",
    # MapServer tolerates STARTINDEX=-1 (reads it as 0); a negative index is an error here.
    "wfs_200_getfeature_startindex_minus1_count2.xml": "negative STARTINDEX refused",
    # updateSequence is not tracked (capabilities always current).
    "wfs_200_exception_updatesequence1.xml": "no updateSequence",
    "wfs_200_exception_updatesequence2.xml": "no updateSequence",
    # A request without SERVICE is read as WFS on the /ogc/wfs endpoint.
    "wfs_200_cite_exception_no_service.xml": "SERVICE implied by the endpoint",
}
NS_GML = "http://www.opengis.net/gml/3.2"


def _requests() -> list[tuple[str, str]]:
    """(expected file, query string) of the GET requests; POST bodies start with ``<``
    (the XML encoding) or ``POST:`` (KVP sent as a form)."""
    table = (
        Path(__file__).resolve().parents[2]
        / "shared"
        / "data"
        / FIXTURES
        / "requests_RUN_PARMS.tsv"
    )
    found = []
    with table.open(newline="") as handle:
        for mapfile, line in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            if mapfile not in MAPFILES:
                continue
            posted = re.search(r"RUN_PARMS:\s*(\S+)\s.*\[POST\](.*)\[/POST\]", line)
            if posted:
                body = posted.group(2).replace("map=[MAPFILE]&", "")
                found.append((posted.group(1), body if body.startswith("<") else "POST:" + body))
                continue
            match = re.search(r"RUN_PARMS:\s*(\S+)\s.*QUERY_STRING=\"([^\"]*)\"", line)
            if match:
                found.append((match.group(1), match.group(2).replace("map=[MAPFILE]&", "")))
    return found


REQUESTS = _requests()


def send(client: FlaskClient, query: str) -> Any:
    if query.startswith("<"):
        return client.post("/ogc/wfs", data=query.encode(), content_type="text/xml")
    if query.startswith("POST:"):
        return client.post(
            "/ogc/wfs",
            data=query.removeprefix("POST:"),
            content_type="application/x-www-form-urlencoded",
        )
    return client.get("/ogc/wfs?" + query)


def province_layer() -> LayerDefinition:
    t = sa.table(
        "province",
        *(sa.column(c) for c in ("id", "geom", "name_e", "name_f", "island_e")),
        schema="golden",
    ).alias("t")
    return LayerDefinition(
        id="province",
        title="province",
        source=t,
        main=t,
        geometry_type="Polygon",
        storage_srid=4326,
        etrs89_column=None,
        extra_srids=(4269,),
        fields=(
            Field("NAME_E", t.c.name_e),
            Field("NomFrancais", t.c.name_f),
            Field("island_e", t.c.island_e),
        ),
    )


def geometry_layer(name: str) -> LayerDefinition:
    t = sa.table(name, sa.column("id"), sa.column("geom"), schema="golden").alias("t")
    return LayerDefinition(
        id=name,
        title=name,
        source=t,
        main=t,
        geometry_type=GEOMETRY_TYPES[name],
        storage_srid=4326,
        etrs89_column=None,
        extra_srids=(4269,),
        fields=(),
    )


def load(conn: sa.Connection, folder: Path) -> None:
    conn.execute(sa.text("CREATE SCHEMA IF NOT EXISTS golden"))
    to_wgs84 = Transformer.from_crs(3978, 4326, always_xy=True)
    frame = pyogrio.read_dataframe(folder / "data" / "province.shp")
    conn.execute(sa.text("DROP TABLE IF EXISTS golden.province"))
    conn.execute(
        sa.text(
            "CREATE TABLE golden.province (id bigint PRIMARY KEY, name_e text, name_f text, "
            "island_e text, geom geometry(Polygon, 4326))"
        )
    )
    rows = [
        {
            "id": int(row.PROVINCE_I),
            "e": row.NAME_E,
            "f": row.NAME_F,
            "i": row.ISLAND_E if isinstance(row.ISLAND_E, str) else None,
            "wkb": shapely.to_wkb(shapely.transform(row.geometry, _projector(to_wgs84))),
        }
        for row in frame.itertuples()
    ]
    conn.execute(
        sa.text("INSERT INTO golden.province VALUES (:id, :e, :f, :i, ST_GeomFromWKB(:wkb, 4326))"),
        rows,
    )
    for name in GEOMETRY_LAYERS:
        shapes = pyogrio.read_dataframe(folder / "data" / f"{name}.shp")
        conn.execute(sa.text(f"DROP TABLE IF EXISTS golden.{name}"))
        conn.execute(
            sa.text(
                f"CREATE TABLE golden.{name} (id bigint PRIMARY KEY, geom geometry(Geometry, 4326))"
            )
        )
        conn.execute(
            sa.text(f"INSERT INTO golden.{name} VALUES (:id, ST_GeomFromWKB(:wkb, 4326))"),
            [{"id": int(r.id), "wkb": shapely.to_wkb(r.geometry)} for r in shapes.itertuples()],
        )


def _projector(transformer: Transformer) -> Any:
    def project(coords: Any) -> Any:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return project


@pytest.fixture(scope="module")
def client(layers_settings: Settings, shared_data: Path) -> FlaskClient:
    engine = create_engine(layers_settings)
    with engine.begin() as conn:
        load(conn, shared_data / FIXTURES)
    engine.dispose()
    extra = [province_layer(), *(geometry_layer(n) for n in GEOMETRY_LAYERS)]
    return layers_app(layers_settings, URBANGIS_EXTRA_LAYERS=extra).test_client()


def expected(shared: Path, name: str) -> tuple[int, bytes]:
    raw = (shared / FIXTURES / "expected" / name).read_bytes()
    status = 200
    head, _, body = raw.partition(b"\n\n")
    if b"Content-Type" not in head and b"Status" not in head:
        body = raw
    found = re.search(rb"Status:\s*(\d+)", head)
    if found:
        status = int(found.group(1))
    return status, body.strip()


def _ids(root: etree._Element) -> set[str]:
    ids = set()
    for element in root.iter():
        ident = element.get(f"{{{NS_GML}}}id")
        if ident and re.fullmatch(r"[a-z_]+\.\d+", ident):
            parent = element.getparent()
            is_geometry = etree.QName(element).namespace == NS_GML
            if not is_geometry and parent is not None:
                ids.add(ident)
    return ids


def _coordinates(root: etree._Element) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    for ident in _ids(root):
        feature = root.xpath(f"//*[@gml:id='{ident}']", namespaces={"gml": NS_GML})[0]
        numbers: list[float] = []
        for element in feature.iter(f"{{{NS_GML}}}posList", f"{{{NS_GML}}}pos"):
            numbers.extend(float(v) for v in (element.text or "").split())
        found[ident] = numbers
    return found


def _exception_code(root: etree._Element) -> str | None:
    found = next(root.iter("{*}Exception"), None)
    return found.get("exceptionCode") if found is not None else None


@pytest.mark.parametrize(("name", "query"), REQUESTS, ids=[n for n, _ in REQUESTS])
def test_same_answer_as_mapserver(
    client: FlaskClient, shared_data: Path, name: str, query: str
) -> None:
    if name in KNOWN_DIFFERENCES:
        pytest.skip(KNOWN_DIFFERENCES[name])
    status, body = expected(shared_data, name)
    response = send(client, query)
    ours = etree.fromstring(response.data)
    if not body.startswith(b"<"):
        assert ours.get("version") == body.decode().strip()  # version negotiation only
        return
    theirs = etree.fromstring(body)
    kind = etree.QName(theirs).localname
    if kind == "ExceptionReport":
        assert etree.QName(ours).localname == "ExceptionReport", response.data[:300]
        assert _exception_code(ours) == _exception_code(theirs)
        assert response.status_code == status or status == 200
        return
    assert etree.QName(ours).localname == kind, response.data[:400]
    if kind in ("FeatureCollection", "ValueCollection"):
        for attribute in ("numberMatched", "numberReturned"):
            if theirs.get(attribute) not in (None, "unknown") and ours.get(attribute) != "unknown":
                assert ours.get(attribute) == theirs.get(attribute), attribute
    if kind == "WFS_Capabilities":
        assert ours.get("version") == theirs.get("version")
        assert _type_names(theirs) <= _type_names(ours)
        return
    if kind == "schema":
        ours_elements = {e.get("name") for e in ours if etree.QName(e).localname == "element"}
        theirs_elements = {e.get("name") for e in theirs if etree.QName(e).localname == "element"}
        assert theirs_elements <= ours_elements
        return
    if kind.endswith("StoredQueriesResponse"):
        ours_ids = {e.get("id") for e in ours.iter() if e.get("id")}
        theirs_ids = {e.get("id") for e in theirs.iter() if e.get("id")}
        assert ours_ids == theirs_ids
        return
    assert _ids(ours) == _ids(theirs)
    every_id = [e.get(f"{{{NS_GML}}}id") for e in ours.iter() if e.get(f"{{{NS_GML}}}id")]
    assert len(every_id) == len(set(every_id)), "gml:id values must be unique"
    ours_coords, theirs_coords = _coordinates(ours), _coordinates(theirs)
    for ident, numbers in theirs_coords.items():
        assert ours_coords[ident] == pytest.approx(numbers, abs=_tolerance(numbers)), ident
    if kind == "ValueCollection":
        ours_values = [_flatten(e) for e in ours.iter("{*}member")]
        theirs_values = [_flatten(e) for e in theirs.iter("{*}member")]
        assert len(ours_values) == len(theirs_values)
        for a, b in zip(ours_values, theirs_values, strict=True):
            assert a == pytest.approx(b, abs=1e-5) if isinstance(a, list) else a == b


def _type_names(root: etree._Element) -> set[str]:
    return {
        (name.text or "").split(":")[-1]
        for feature_type in root.iter("{*}FeatureType")
        for name in feature_type.iter("{*}Name")
    }


def _tolerance(numbers: list[float]) -> float:
    """1e-5 for degrees; 1 cm for metres (we print metres with two decimals)."""
    return 1e-5 if all(abs(v) <= 360 for v in numbers) else 0.01


def _flatten(member: etree._Element) -> Any:
    numbers = [
        float(v)
        for e in member.iter(f"{{{NS_GML}}}posList", f"{{{NS_GML}}}pos")
        for v in (e.text or "").split()
    ]
    return numbers if numbers else "".join(member.itertext()).strip()
