"""Golden comparison with MapServer's OGC API – Features test suite (msautotest/api).

MapServer's ``mn_counties`` shapefile (EPSG:26915) is loaded into a test table and
published through the catalog's extra-layer API with MapServer's field aliases. Then
every ``ogcapi.map`` request of ``requests_RUN_PARMS.tsv`` on that collection is sent to
our server and compared with MapServer's expected output: status, numberReturned,
numberMatched, the set of features (when the whole result fits the page), properties
of single features, link relations and queryables. Ids and formatting may differ.

Two requests differ on purpose: ``DELIBERATE_DIFFERENCES`` says why, and
``test_deliberate_differences`` checks what we answer instead.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import orjson
import pyogrio
import pytest
import shapely
import sqlalchemy as sa
from flask.testing import FlaskClient

from gis_core.db import create_engine
from gis_core.settings import Settings
from layers.catalog import Field, LayerDefinition
from tests.test_layers_data import layers_app, layers_settings

__all__ = ["layers_settings"]
FIXTURES = Path("real/ogc-fixtures/mapserver-ogcapi")
MAPSERVER_DEFAULT_LIMIT = 9
OUR_ID_OF_COUNTY: dict[int, int] = {}
# MapServer cannot translate IS [NOT] NULL into a mapfile expression and answers 400;
# CQL2 (basic-cql2) requires the predicate, so we evaluate it: no county has a NULL
# name, so IS NULL matches no feature and IS NOT NULL matches every one.
DELIBERATE_DIFFERENCES = {
    "ogcapi_cql2_text_is_null_not_supported.json.txt": "none",
    "ogcapi_cql2_text_is_not_null_not_supported.json.txt": "all",
}
UNSUPPORTED_ENDPOINTS = (
    "/schema",
    "/sortables",
    "invalid",
    "mn_population_centers",
    "/error/",
    "mn_counties_no_queryables",
    "mn_counties_all_queryables",
)


def mn_counties_layer() -> LayerDefinition:
    t = sa.table(
        "mn_counties",
        *(
            sa.column(c)
            for c in ("id", "geom", "area", "perimeter", "ctyonly_", "cty_name", "cty_abbr")
        ),
        sa.column("lastmod"),
        schema="golden",
    ).alias("t")
    return LayerDefinition(
        id="mn_counties",
        title="State of Minnesota County Boundaries",
        abstract="This is the standard Minnesota State County Boundary dataset.",
        keywords=("boundary", "Minnesota", "counties"),
        source=t,
        main=t,
        geometry_type="MultiPolygon",
        storage_srid=26915,
        etrs89_column=None,
        extra_srids=(32615,),
        fields=(
            Field("Area", t.c.area, type="number"),
            Field("CTYONLY_", t.c.ctyonly_, type="integer"),
            Field("Code", t.c.cty_abbr),
            Field("LASTMOD", t.c.lastmod, type="string", format="date-time"),
            Field("Name", t.c.cty_name),
            Field("Perimiter", t.c.perimeter, type="number"),
        ),
    )


def load_mn_counties(conn: sa.Connection, shapefile: Path) -> None:
    frame = pyogrio.read_dataframe(shapefile, fid_as_index=True)
    conn.execute(sa.text("CREATE SCHEMA IF NOT EXISTS golden"))
    conn.execute(sa.text("DROP TABLE IF EXISTS golden.mn_counties"))
    conn.execute(
        sa.text(
            "CREATE TABLE golden.mn_counties (id bigint PRIMARY KEY, area double precision, "
            "perimeter double precision, ctyonly_ bigint, cty_name text, cty_abbr text, "
            "lastmod timestamptz, geom geometry(MultiPolygon, 26915), coun integer)"
        )
    )
    rows = [
        {
            "id": int(row.Index),
            "coun": int(row.COUN),
            "area": float(row.AREA),
            "perimeter": float(row.PERIMETER),
            "ctyonly": int(row.CTYONLY_),
            "name": row.CTY_NAME,
            "abbr": row.CTY_ABBR,
            "lastmod": f"{row.LASTMOD}+00" if row.LASTMOD else None,
            "wkb": shapely.to_wkb(shapely.multipolygons([row.geometry])),
        }
        for row in frame.itertuples()
    ]
    conn.execute(
        sa.text(
            "INSERT INTO golden.mn_counties VALUES (:id, :area, :perimeter, :ctyonly, :name, "
            ":abbr, CAST(:lastmod AS timestamptz), ST_SetSRID(ST_GeomFromWKB(:wkb), 26915), :coun)"
        ),
        rows,
    )
    conn.execute(sa.text("CREATE INDEX ON golden.mn_counties USING gist (geom)"))
    conn.execute(sa.text("ANALYZE golden.mn_counties"))


@pytest.fixture(scope="module")
def client(layers_settings: Settings, shared_data: Path) -> Iterator[FlaskClient]:
    engine = create_engine(layers_settings)
    with engine.begin() as conn:
        load_mn_counties(conn, shared_data / FIXTURES / "data/mn_counties.shp")
    app = layers_app(layers_settings, URBANGIS_EXTRA_LAYERS=[mn_counties_layer()])
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT coun, min(id) FROM golden.mn_counties GROUP BY coun"))
        OUR_ID_OF_COUNTY.update({int(coun): int(first) for coun, first in rows})
    yield app.test_client()
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA golden CASCADE"))
    engine.dispose()


def golden_requests() -> list[tuple[str, str, str]]:
    """(expected file, path after /ogcapi, query string) of the mn_counties requests."""
    tsv = Path(__file__).resolve().parents[2] / "shared/data" / FIXTURES / "requests_RUN_PARMS.tsv"
    if not tsv.is_file():
        return []
    found = []
    pattern = re.compile(
        r"RUN_PARMS: (\S+) .*PATH_INFO=/\[MAPFILE\]/ogcapi([^\"']*)[\"'] "
        r"([\"'])QUERY_STRING=(.*?)\3 >"
    )
    with tsv.open() as handle:
        for mapfile, line in csv.reader(handle, delimiter="\t"):
            match = pattern.search(line)
            if mapfile != "ogcapi.map" or not match or "ENV HTTP_COOKIE" in line:
                continue
            name, path, _, query = match.groups()
            if "mn_counties" not in path or any(u in path for u in UNSUPPORTED_ENDPOINTS):
                continue
            if "f=html" in query or name.endswith(".html"):
                continue
            found.append((name, path, query))
    return found


def expected_output(shared_data: Path, name: str) -> tuple[int, Any]:
    text = (shared_data / FIXTURES / "expected" / name).read_text()
    status = 200
    if text.startswith(("Content-Type", "Status")):
        head, _, text = text.partition("\n\n")
        found = re.search(r"^Status: (\d+)", head, re.MULTILINE)
        status = int(found.group(1)) if found else 200
    document = orjson.loads(text)
    if status == 200 and isinstance(document, dict) and {"code", "description"} <= set(document):
        status = 404 if document["code"] == "NotFound" else 400  # headers were stripped
    return status, document


def send(client: FlaskClient, path: str, query: str) -> tuple[int, Any]:
    """Our answer to MapServer's request; MapServer's feature ids (the county number,
    repeated for multi-part counties) become our ids (the shapefile row)."""
    found = re.search(r"/items/(\d+)$", path)
    if found:
        path = path[: found.start(1)] + str(OUR_ID_OF_COUNTY.get(int(found.group(1)), 10**9))
    params = parse_qsl(query, keep_blank_values=True)
    if path.endswith("/items") and not any(k == "limit" for k, _ in params):
        params.append(("limit", str(MAPSERVER_DEFAULT_LIMIT)))
    response = client.get(f"/ogc/features{path}", query_string=params)
    return response.status_code, orjson.loads(response.data)


def rels(document: dict[str, Any]) -> set[str]:
    return {link["rel"] for link in document.get("links", [])}


def names_of(document: dict[str, Any]) -> set[str]:
    return {f["properties"]["Name"] for f in document["features"]}


def compare(expected: Any, ours: Any) -> None:
    if expected.get("type") == "FeatureCollection":
        assert ours["numberReturned"] == expected["numberReturned"]
        if "numberMatched" in expected:
            assert ours["numberMatched"] == expected["numberMatched"]
            if expected["numberMatched"] <= expected["numberReturned"]:
                assert names_of(ours) == names_of(expected)
        assert {"self", "next", "prev"} & rels(expected) <= rels(ours)
    elif expected.get("type") == "Feature":
        assert ours["properties"]["Name"] == expected["properties"]["Name"]
        assert ours["properties"]["CTYONLY_"] == expected["properties"]["CTYONLY_"]
        assert ours["properties"]["Area"] == pytest.approx(expected["properties"]["Area"])
        assert ours["properties"]["LASTMOD"][:19] == expected["properties"]["LASTMOD"][:19]
    elif "properties" in expected:  # queryables
        assert set(expected["properties"]) <= set(ours["properties"])
        for name, schema in expected["properties"].items():
            if "type" in schema:
                assert ours["properties"][name]["type"] == schema["type"]
    elif "extent" in expected:  # the collection
        assert ours["id"] == expected["id"]
        theirs_box = expected["extent"]["spatial"]["bbox"][0]
        # MapServer's extent comes from the mapfile's metadata, ours from the data
        assert ours["extent"]["spatial"]["bbox"][0] == pytest.approx(theirs_box, abs=0.1)
        assert set(expected["crs"]) <= set(ours["crs"])


ALL_REQUESTS = golden_requests()
REQUESTS = [r for r in ALL_REQUESTS if r[0] not in DELIBERATE_DIFFERENCES]


def test_the_golden_requests_were_found() -> None:
    assert len(REQUESTS) >= 80
    assert {r[0] for r in ALL_REQUESTS} >= set(DELIBERATE_DIFFERENCES)


@pytest.mark.parametrize(("name", "path", "query"), REQUESTS, ids=[r[0] for r in REQUESTS])
def test_golden(client: FlaskClient, shared_data: Path, name: str, path: str, query: str) -> None:
    status, expected = expected_output(shared_data, name)
    our_status, ours = send(client, path, query)
    assert our_status == status, ours
    if status >= 400:
        assert set(ours) >= {"code", "description"}
        return
    compare(expected, ours)


@pytest.mark.parametrize("name", sorted(DELIBERATE_DIFFERENCES))
def test_deliberate_differences(client: FlaskClient, shared_data: Path, name: str) -> None:
    """MapServer refuses IS [NOT] NULL (400); we answer it, and correctly."""
    status, _ = expected_output(shared_data, name)
    assert status == 400
    _, path, query = next(r for r in ALL_REQUESTS if r[0] == name)
    our_status, ours = send(client, path, query)
    assert our_status == 200, ours
    _, everything = send(client, path, "f=json")
    assert everything["numberMatched"] >= 87  # every county, multi-part ones repeated
    wanted = 0 if DELIBERATE_DIFFERENCES[name] == "none" else everything["numberMatched"]
    assert ours["numberMatched"] == wanted
