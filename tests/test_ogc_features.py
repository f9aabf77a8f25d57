"""OGC API – Features Parts 1–3 over the synthetic municipality, through the Flask app."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson
import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from gis_core.crs import transform_coords
from gis_core.db import create_engine
from gis_core.settings import Settings
from layers import features, queries
from layers.catalog import Catalog
from layers.spatial import StorageBox
from tests.test_layers_data import (
    GRID,
    ORIGIN_E,
    ORIGIN_N,
    PARCEL_COUNT,
    SIZE,
    layers_app,
    layers_settings,
    page_failing_on_skipped_row,
)

__all__ = ["layers_settings"]
BASE = "/ogc/features"
ITEMS = f"{BASE}/collections/parcels/items"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/{}"


@pytest.fixture(scope="module")
def client(layers_settings: Settings) -> FlaskClient:
    return layers_app(layers_settings).test_client()


def get_json(client: FlaskClient, url: str, status: int = 200) -> Any:
    response = client.get(url)
    assert response.status_code == status, response.data[:500]
    return orjson.loads(response.data)


def names(collection: dict[str, Any]) -> list[str]:
    return [f["properties"]["cadastral_number"] for f in collection["features"]]


def link(document: dict[str, Any], rel: str) -> str | None:
    for item in document["links"]:
        if item["rel"] == rel and "json" in item["type"]:
            return str(item["href"])
    return None


def local(url: str) -> str:
    return url.replace("http://localhost", "")


# -- Part 1 -----------------------------------------------------------------------------
def test_landing_page_links_api_conformance_and_data(client: FlaskClient) -> None:
    landing = get_json(client, f"{BASE}?f=json")
    rels = {item["rel"] for item in landing["links"]}
    assert {"self", "alternate", "service-desc", "conformance", "data"} <= rels
    api = get_json(client, f"{BASE}/api")
    assert api["openapi"].startswith("3.0")
    assert "/collections/parcels/items" in api["paths"]
    html = client.get(f"{BASE}?f=html")
    assert html.status_code == 200 and html.mimetype == "text/html"


def test_conformance_declares_the_three_parts(client: FlaskClient) -> None:
    classes = set(get_json(client, f"{BASE}/conformance")["conformsTo"])
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in classes
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in classes
    assert "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter" in classes
    assert "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json" in classes


def test_collections_describe_extent_and_crs(client: FlaskClient) -> None:
    document = get_json(client, f"{BASE}/collections")
    by_id = {c["id"]: c for c in document["collections"]}
    assert {"parcels", "buildings", "zones", "restrictions", "addresses", "intravilan"} <= set(
        by_id
    )
    parcels = by_id["parcels"]
    minx, miny, maxx, maxy = parcels["extent"]["spatial"]["bbox"][0]
    assert 23.5 < minx < maxx < 23.7 and 46.7 < miny < maxy < 46.8
    assert EPSG.format(3844) in parcels["crs"] and parcels["storageCrs"] == EPSG.format(3844)
    assert "http://www.opengis.net/def/crs/OGC/1.3/CRS84" in parcels["crs"]


def test_paging_reads_every_current_parcel_once(client: FlaskClient) -> None:
    seen: list[str] = []
    url: str | None = f"{ITEMS}?limit=30"
    pages = 0
    while url:
        page = get_json(client, local(url))
        seen.extend(names(page))
        assert page["numberMatched"] == PARCEL_COUNT
        url = link(page, "next")
        pages += 1
    assert pages == 4 and len(seen) == PARCEL_COUNT == len(set(seen))
    second = get_json(client, f"{ITEMS}?limit=30&offset=30")
    assert "offset=0" in str(link(second, "prev"))


@pytest.mark.parametrize(
    ("query", "status"),
    [("limit=0", 400), ("limit=abc", 400), ("offset=-1", 400), ("limit=99999", 200)],
)
def test_limit_is_bounded(client: FlaskClient, query: str, status: int) -> None:
    response = client.get(f"{ITEMS}?{query}")
    assert response.status_code == status
    if status == 400:
        body = orjson.loads(response.data)
        assert body["code"] == "InvalidParameterValue" and body["description"]


def test_bbox_in_crs84_and_in_stereo70_select_the_same_parcels(client: FlaskClient) -> None:
    # the first column of the grid (east 392000..392050), shrunk to stay off neighbours
    e1, e2 = ORIGIN_E + 10, ORIGIN_E + 40
    n1, n2 = ORIGIN_N + 10, ORIGIN_N + GRID * SIZE - 10
    lon, lat = transform_coords(3844, 4326, [e1, e2], [n1, n2])
    crs84 = get_json(client, f"{ITEMS}?limit=100&bbox={lon[0]},{lat[0]},{lon[1]},{lat[1]}")
    stereo = get_json(
        client, f"{ITEMS}?limit=100&bbox={n1},{e1},{n2},{e2}&bbox-crs={EPSG.format(3844)}"
    )
    expected = [str(200000 + j) for j in range(GRID)]
    assert sorted(names(crs84)) == expected
    assert sorted(names(stereo)) == expected


def test_bbox_keeps_parcels_wholly_and_partly_inside(client: FlaskClient) -> None:
    """Rows whose box lies inside skip the exact test; the others still take it."""
    e1, e2 = ORIGIN_E + 2.5 * SIZE, ORIGIN_E + 4.5 * SIZE  # columns 2 and 4 halved, 3 whole
    n1, n2 = ORIGIN_N - 10, ORIGIN_N + GRID * SIZE + 10
    lon, lat = transform_coords(3844, 4326, [e1, e2], [n1, n2])
    expected = sorted(str(200000 + i * GRID + j) for i in (2, 3, 4) for j in range(GRID))
    crs84 = get_json(client, f"{ITEMS}?limit=100&bbox={lon[0]},{lat[0]},{lon[1]},{lat[1]}")
    stereo = get_json(
        client, f"{ITEMS}?limit=100&bbox={n1},{e1},{n2},{e2}&bbox-crs={EPSG.format(3844)}"
    )
    assert sorted(names(crs84)) == expected == sorted(names(stereo))
    layer = Catalog(3844).get("parcels")
    box = StorageBox((e1, n1, e2, n2))
    where = str(queries.where_clause(queries.FeatureQuery(layer, "public", box=box)))
    assert " @ ST_MakeEnvelope" in where and "ST_Intersects" in where


def test_bbox_far_away_is_empty_not_an_error(client: FlaskClient) -> None:
    assert get_json(client, f"{ITEMS}?bbox=-100,40,-90,45")["numberReturned"] == 0
    assert get_json(client, f"{ITEMS}?bbox=-180,-90,180,90&limit=5")["numberReturned"] == 5


def test_output_in_stereo70_is_the_stored_geometry_in_axis_order(client: FlaskClient) -> None:
    response = client.get(f"{ITEMS}?limit=1&crs={EPSG.format(3844)}")
    assert response.headers["Content-Crs"] == f"<{EPSG.format(3844)}>"
    ring = orjson.loads(response.data)["features"][0]["geometry"]["coordinates"][0][0]
    # EPSG:3844 is northing, easting
    assert ring[0] == [ORIGIN_N, ORIGIN_E]


def test_geographic_output_comes_from_the_transdatro_twin(
    client: FlaskClient, layers_settings: Settings
) -> None:
    feature = get_json(client, f"{ITEMS}?limit=1")["features"][0]
    lon, lat = feature["geometry"]["coordinates"][0][0][0]
    expected_lon, expected_lat = transform_coords(3844, 4258, ORIGIN_E, ORIGIN_N)
    assert abs(lon - float(expected_lon)) < 1e-7 and abs(lat - float(expected_lat)) < 1e-7
    lat_lon = get_json(client, f"{ITEMS}?limit=1&crs={EPSG.format(4326)}")
    assert lat_lon["features"][0]["geometry"]["coordinates"][0][0][0] == [lat, lon]


@pytest.mark.parametrize("crs", ["EPSG:9999999", "", "http://www.opengis.net/def/crs/EPSG/0/2154"])
def test_unknown_output_crs_is_a_400(client: FlaskClient, crs: str) -> None:
    body = get_json(client, f"{ITEMS}?crs={quote(crs)}", status=400)
    assert body["code"] == "InvalidParameterValue"


def test_datetime_returns_the_versions_valid_then(client: FlaskClient) -> None:
    old = get_json(client, f"{ITEMS}?datetime=2021-06-01T00:00:00Z&limit=100")
    assert names(old) == ["200000"]
    assert old["features"][0]["properties"]["measured_area"] == 9999
    zones = get_json(client, f"{BASE}/collections/zones/items?datetime=2012-01-01T00:00:00Z")
    assert [f["properties"]["utr_code"] for f in zones["features"]] == ["M2"]
    interval = get_json(client, f"{ITEMS}?datetime=2019-01-01T00:00:00Z/..&limit=200")
    assert interval["numberReturned"] == PARCEL_COUNT + 1
    get_json(client, f"{ITEMS}?datetime=yesterday", status=400)


def test_property_filters_sortby_and_properties(client: FlaskClient) -> None:
    one = get_json(client, f"{ITEMS}?cadastral_number=200005")
    assert names(one) == ["200005"]
    top = get_json(client, f"{ITEMS}?sortby=-measured_area,cadastral_number&limit=1")
    assert names(top) == ["200090"]
    slim = get_json(client, f"{ITEMS}?limit=1&properties=cadastral_number,measured_area")
    assert set(slim["features"][0]["properties"]) == {"cadastral_number", "measured_area"}
    for bad in ("sortby=nope", "properties=nope", "nope=1", "limit=1&limit=2"):
        body = get_json(client, f"{ITEMS}?{bad}", status=400)
        assert set(body) >= {"code", "description"}


def test_single_item_and_missing_ones(client: FlaskClient) -> None:
    first = get_json(client, f"{ITEMS}?limit=1")["features"][0]
    item = get_json(client, f"{ITEMS}/{first['id']}")
    assert item["properties"] == first["properties"]
    assert {"self", "collection"} <= {x["rel"] for x in item["links"]}
    assert get_json(client, f"{ITEMS}/987654321", status=404)["code"] == "NotFound"
    assert client.get(f"{ITEMS}/abc").status_code == 404
    assert client.get(f"{BASE}/collections/nope/items").status_code == 404


def test_html_pages_escape_their_input(client: FlaskClient) -> None:
    response = client.get(f"{ITEMS}?f=html&limit=3")
    assert response.status_code == 200 and b"200000" in response.data
    hostile = client.get(
        f"{ITEMS}?f=html&offset=%3C%2Fscript%3E%3Cimg%20src%3Dx%3E", headers={"Accept": "text/html"}
    )
    assert hostile.status_code == 400 and b"<img" not in hostile.data
    for page in ("/collections", "/collections/zones", "/collections/zones/queryables"):
        assert client.get(f"{BASE}{page}", headers={"Accept": "text/html"}).mimetype == "text/html"


# -- Part 3 ----------------------------------------------------------------------------
CQL2_TEXT = [
    ("cadastral_number='200005'", ["200005"]),
    ("cadastral_number IN ('200001','200002')", ["200001", "200002"]),
    (
        "measured_area BETWEEN 2508 AND 2509 AND cadastral_number LIKE '20008%'",
        [f"2000{n}" for n in range(80, 90)],
    ),
    ("NOT (cadastral_number <> '200003')", ["200003"]),
    (
        "CASEI(use_category) = CASEI('ARABIL') AND measured_area = 2500",
        [f"20000{n}" for n in (1, 3, 5, 7, 9)],
    ),
    ("cadastral_number = '200003' OR cadastral_number = '200004'", ["200003", "200004"]),
    ("measured_area > 2508.5", [f"2000{n}" for n in range(90, 100)]),
    (
        "valid_from T_AFTER TIMESTAMP('2023-01-01T00:00:00Z') AND cadastral_number='200007'",
        ["200007"],
    ),
    ("address IS NULL", []),
]


CQL2_ARITHMETIC_AND_BOOLEANS = [
    ("measured_area % 10 = 3", [f"2000{n}" for n in range(30, 40)]),
    ("measured_area div 4 = 626", [str(200040 + n) for n in range(40)]),
    ("measured_area / 2 = 1250.5", [f"2000{n}" for n in range(10, 20)]),
    ("intravilan AND cadastral_number = '200005'", ["200005"]),
    ("NOT intravilan", []),
    ("true OR cadastral_number = 'x'", [str(200000 + n) for n in range(PARCEL_COUNT)]),
    ("false", []),
    ("(true) AND cadastral_number = '200006'", ["200006"]),
]


ALL_CURRENT = PARCEL_COUNT
TEMPORAL = [
    ("valid_from T_BEFORE TIMESTAMP('2024-06-01T00:00:00Z')", ALL_CURRENT),
    ("valid_from T_AFTER TIMESTAMP('2024-06-01T00:00:00Z')", 0),
    ("valid_from T_EQUALS TIMESTAMP('2024-01-01T00:00:00Z')", ALL_CURRENT),
    (
        "valid_from T_INTERSECTS INTERVAL('2023-01-01T00:00:00Z','2025-01-01T00:00:00Z')",
        ALL_CURRENT,
    ),
    ("valid_from T_DISJOINT INTERVAL('2023-01-01T00:00:00Z','2025-01-01T00:00:00Z')", 0),
    ("valid_from T_DISJOINT INTERVAL('2024-02-01T00:00:00Z','2025-01-01T00:00:00Z')", ALL_CURRENT),
    ("valid_from T_DURING INTERVAL('2023-12-31T00:00:00Z','2024-01-02T00:00:00Z')", ALL_CURRENT),
]


@pytest.mark.parametrize(("cql", "matched"), TEMPORAL)
def test_cql2_temporal_functions(client: FlaskClient, cql: str, matched: int) -> None:
    result = get_json(client, f"{ITEMS}?limit=200&filter={quote(cql)}")
    assert result["numberReturned"] == matched


def test_cql2_json_temporal_disjoint(client: FlaskClient) -> None:
    cql = {
        "op": "t_disjoint",
        "args": [{"property": "valid_from"}, {"interval": ["2024-02-01", "2025-01-01"]}],
    }
    url = f"{ITEMS}?limit=200&filter-lang=cql2-json&filter={quote(orjson.dumps(cql).decode())}"
    assert get_json(client, url)["numberReturned"] == ALL_CURRENT


@pytest.mark.parametrize(("cql", "expected"), CQL2_ARITHMETIC_AND_BOOLEANS)
def test_cql2_div_remainder_and_boolean_conditions(
    client: FlaskClient, cql: str, expected: list[str]
) -> None:
    """What pygeofilter's grammar lacks (``div``, ``%``, a boolean as a condition)."""
    result = get_json(client, f"{ITEMS}?limit=200&filter={quote(cql)}")
    assert sorted(names(result)) == sorted(expected)


def test_division_of_integer_columns_is_not_truncated(client: FlaskClient) -> None:
    # every fixture building has 4 levels (an integer column): 4 / 8 is 0.5, not 0
    url = f"{BASE}/collections/buildings/items?limit=100&filter={quote('levels / 8 = 0.5')}"
    assert get_json(client, url)["numberReturned"] == 20
    truncated = f"{BASE}/collections/buildings/items?filter={quote('levels div 8 = 0')}"
    assert get_json(client, truncated)["numberMatched"] == 20


def test_cql2_json_div_and_remainder(client: FlaskClient) -> None:
    cql = {
        "op": "and",
        "args": [
            {"op": "=", "args": [{"op": "%", "args": [{"property": "measured_area"}, 10]}, 3]},
            {"op": "=", "args": [{"op": "div", "args": [{"property": "measured_area"}, 2]}, 1251]},
        ],
    }
    url = f"{ITEMS}?limit=200&filter-lang=cql2-json&filter={quote(orjson.dumps(cql).decode())}"
    assert sorted(names(get_json(client, url))) == [f"2000{n}" for n in range(30, 40)]
    bad = {"op": "div", "args": [1, 2, 3]}
    get_json(
        client, f"{ITEMS}?filter-lang=cql2-json&filter={quote(orjson.dumps(bad).decode())}", 400
    )


@pytest.mark.parametrize(("cql", "expected"), CQL2_TEXT)
def test_cql2_text_filters(client: FlaskClient, cql: str, expected: list[str]) -> None:
    result = get_json(client, f"{ITEMS}?limit=200&filter={quote(cql)}")
    assert sorted(names(result)) == sorted(expected)


def test_cql2_json_filters(client: FlaskClient) -> None:
    cql = {
        "op": "and",
        "args": [
            {"op": "in", "args": [{"property": "cadastral_number"}, ["200001", "200002", "x"]]},
            {"op": "like", "args": [{"property": "cadastral_number"}, "2%2"]},
        ],
    }
    url = f"{ITEMS}?filter-lang=cql2-json&filter={quote(orjson.dumps(cql).decode())}"
    assert names(get_json(client, url)) == ["200002"]


def test_spatial_filter_with_filter_crs(client: FlaskClient) -> None:
    e, n = ORIGIN_E + 3 * SIZE + 25, ORIGIN_N + 4 * SIZE + 25  # centre of parcel (3, 4)
    lon, lat = transform_coords(3844, 4326, e, n)
    crs84 = get_json(client, f"{ITEMS}?filter={quote(f'S_INTERSECTS(geom,POINT({lon} {lat}))')}")
    stereo = get_json(
        client,
        f"{ITEMS}?filter={quote(f'S_INTERSECTS(geom,POINT({n} {e}))')}"
        f"&filter-crs={EPSG.format(3844)}",
    )
    assert names(crs84) == names(stereo) == ["200034"]
    inside = f"S_WITHIN(geom,BBOX({ORIGIN_N - 1},{ORIGIN_E - 1},{ORIGIN_N + 101},{ORIGIN_E + 51}))"
    within = get_json(client, f"{ITEMS}?filter={quote(inside)}&filter-crs={EPSG.format(3844)}")
    assert sorted(names(within)) == ["200000", "200001"]
    world = get_json(client, f"{ITEMS}?filter={quote('S_INTERSECTS(geom,BBOX(-180,-90,180,90))')}")
    assert world["numberMatched"] == PARCEL_COUNT


@pytest.mark.parametrize(
    "cql",
    [
        "owners='x'",
        "nope=1",
        "cadastral_number=",
        "measured_area = 'abc'",
        "foo(cadastral_number)='1'",
        "cadastral_number",
        "measured_area div 0 = 1",
    ],
)
def test_bad_filters_are_400_in_the_ogc_format(client: FlaskClient, cql: str) -> None:
    body = get_json(client, f"{ITEMS}?filter={quote(cql)}", status=400)
    assert body["code"] == "InvalidParameterValue" and body["description"]


def test_bad_filter_language_and_crs(client: FlaskClient) -> None:
    get_json(client, f"{ITEMS}?filter=1=1&filter-lang=sql", status=400)
    get_json(client, f"{ITEMS}?filter=1=1&filter-crs=invalid", status=400)


def test_queryables_list_only_what_the_role_may_query(client: FlaskClient) -> None:
    schema = get_json(client, f"{BASE}/collections/parcels/queryables")
    assert schema["properties"]["geom"]["x-ogc-role"] == "primary-geometry"
    assert "cadastral_number" in schema["properties"]
    assert "owners" not in schema["properties"] and "notes" not in schema["properties"]


def test_requests_run_under_the_statement_timeout(layers_settings: Settings) -> None:
    engine = create_engine(layers_settings)
    service = features.Service(engine, Catalog(3844), "http://x", timeout_ms=1234)
    with features.request_connection(service) as conn:
        assert conn.execute(sa.text("SHOW statement_timeout")).scalar() == "1234ms"
    engine.dispose()


def test_serial_transactions_keep_the_timeout_and_end_with_the_request(
    layers_settings: Settings,
) -> None:
    """``serial``: no parallel workers, set with the timeout, for that transaction only."""
    engine = create_engine(layers_settings)
    workers = "SELECT current_setting('max_parallel_workers_per_gather')"
    try:
        for timeout_ms in (1234, None):
            service = features.Service(engine, Catalog(3844), "http://x", timeout_ms=timeout_ms)
            with features.request_connection(service, serial=True) as conn:
                assert conn.execute(sa.text(workers)).scalar() == "0"
                if timeout_ms is not None:
                    assert conn.execute(sa.text("SHOW statement_timeout")).scalar() == "1234ms"
                connection = conn.connection.driver_connection
            with engine.connect() as conn:
                assert conn.connection.driver_connection is connection  # the same, reused
                assert conn.execute(sa.text(workers)).scalar() != "0"
    finally:
        engine.dispose()


# -- big pages ------------------------------------------------------------------------
def without_time(page: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in page.items() if k != "timeStamp"}


@pytest.mark.parametrize(
    "query",
    [
        "limit=30",  # a next page: the look-ahead row must not be sent
        "limit=30&offset=90",  # the last page
        "limit=30&bbox=-180,-90,180,90&crs=" + quote(EPSG.format(3844)),
        f"limit=30&filter={quote('cadastral_number LIKE ' + repr('2%'))}",  # SQLAlchemy path
    ],
)
def test_streamed_pages_equal_fetched_pages(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch, query: str
) -> None:
    """Pages above ``STREAM_ABOVE`` come from a cursor in batches: same answer."""
    fetched = client.get(f"{ITEMS}?{query}").data
    monkeypatch.setattr(features, "STREAM_ABOVE", 0)
    monkeypatch.setattr(queries, "STREAM_BATCH", 7)
    streamed = client.get(f"{ITEMS}?{query}").data
    assert without_time(orjson.loads(streamed)) == without_time(orjson.loads(fetched))
    assert streamed.split(b',"numberReturned"')[0] == fetched.split(b',"numberReturned"')[0]


def test_properties_are_compact_json_built_by_postgresql(client: FlaskClient) -> None:
    body = client.get(f"{ITEMS}?limit=1&properties=cadastral_number,legal_area").data
    feature = orjson.loads(body)["features"][0]
    assert set(feature["properties"]) == {"cadastral_number", "legal_area"}
    assert b'"properties":{"cadastral_number":"' in body
    assert b'"legal_area":' in body and b" : " not in body


def test_stream_errors_are_raised_as_sqlalchemy_errors(
    layers_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver's own cursor fails like SQLAlchemy would: callers catch those."""
    engine = create_engine(layers_settings)
    layer = Catalog(3844).get("parcels")
    monkeypatch.setattr(queries, "compiled_page", lambda *a, **k: ("SELECT 1/0", {}))
    try:
        with (
            engine.connect() as conn,
            conn.begin(),
            pytest.raises(sa.exc.DataError, match="division by zero"),
        ):
            list(queries.stream_page(conn, queries.FeatureQuery(layer, "public")))
    finally:
        engine.dispose()


def test_features_are_built_only_for_the_rows_of_the_page(layers_settings: Settings) -> None:
    """GeoJSON is built after LIMIT and OFFSET: a property that fails on a skipped row
    (division by zero on the first parcel) does not fail its page."""
    engine = create_engine(layers_settings)
    try:
        with engine.connect() as conn:
            first, query = page_failing_on_skipped_row(conn)
            page = [orjson.loads(text) for text in queries.fetch_page(conn, query)]
    finally:
        engine.dispose()
    assert len(page) == 3  # with the look-ahead row
    assert first not in [feature["id"] for feature in page]


def test_a_split_page_equals_the_page_from_one_backend(layers_settings: Settings) -> None:
    """Two backends build the two halves of a page; together they are the page."""
    engine = create_engine(layers_settings)
    layer = Catalog(3844).get("parcels")
    try:
        for limit, offset in ((9, 0), (10, 5), (30, 80)):
            query = queries.FeatureQuery(layer, "public", limit=limit, offset=offset)
            with engine.connect() as conn:
                whole = b"".join(f.encode() + b"\n" for f in queries.fetch_page(conn, query))
            with engine.connect() as conn, conn.begin(), engine.connect() as spare:
                halves = queries.stream_page(conn, query, spare)
                split = b"".join(f + b"\n" for batch in halves for f in batch)
            assert split == whole
    finally:
        engine.dispose()


def test_the_halves_of_a_split_page_share_one_snapshot(layers_settings: Settings) -> None:
    """A change committed after the page began is in neither half."""
    engine = create_engine(layers_settings)
    layer = Catalog(3844).get("parcels")
    query = queries.FeatureQuery(layer, "public", limit=PARCEL_COUNT)
    last = "(SELECT max(id) FROM cadastre.parcel WHERE valid_to IS NULL)"
    update = f"UPDATE cadastre.parcel SET cad_sector = :s WHERE id = {last}"
    with engine.connect() as probe:
        sector = probe.execute(
            sa.text(f"SELECT cad_sector FROM cadastre.parcel WHERE id = {last}")
        ).scalar_one()
    try:
        with engine.connect() as conn, conn.begin(), engine.connect() as spare:
            halves = queries.stream_page(conn, query, spare)
            pages = [next(halves)]  # the first half has begun, in its snapshot
            with engine.begin() as other:
                other.execute(sa.text(update), {"s": "changed-meanwhile"})
            pages.extend(halves)
        assert b"changed-meanwhile" not in b"".join(f for batch in pages for f in batch)
        assert sum(len(batch) for batch in pages) == PARCEL_COUNT
    finally:
        with engine.begin() as other:
            other.execute(sa.text(update), {"s": sector})
        engine.dispose()


def test_a_lone_big_page_is_split_and_a_busy_process_does_not_split(
    layers_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spare connection is only taken while no other big page is streamed."""
    engine = create_engine(layers_settings)
    service = features.Service(engine, Catalog(3844), "http://x")
    query = queries.FeatureQuery(service.catalog.get("parcels"), "public", limit=50)
    monkeypatch.setattr(features, "SPLIT_FROM", 10)
    try:
        with features._spare_connection(service, query) as spare:
            assert spare is not None
            with features._spare_connection(service, query) as second:
                assert second is None
        small = queries.FeatureQuery(service.catalog.get("parcels"), "public", limit=9)
        with features._spare_connection(service, small) as spare:
            assert spare is None
    finally:
        engine.dispose()


def test_small_pages_run_without_parallel_workers_in_one_statement(
    layers_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers take longer to start than a small page takes; the setting ends with it."""
    engine = create_engine(layers_settings)
    query = queries.FeatureQuery(Catalog(3844).get("parcels"), "public")
    setting = "SELECT current_setting('max_parallel_workers_per_gather')"
    monkeypatch.setattr(queries, "compiled_page", lambda *a, **k: (setting, {}))
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            default = conn.execute(sa.text(setting)).scalar_one()
            assert queries.fetch_page(conn, query, serial=True) == ["0"]
            assert conn.execute(sa.text(setting)).scalar_one() == default != "0"
    finally:
        engine.dispose()
