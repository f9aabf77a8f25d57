"""The zone analysis, plan comparison and indicator routes answer what the OpenAPI
document says they answer.

On the small demo city (its own database, see ``tests.test_indicators_support``) with an
act issued through the clerks' API, parks and population loaded and indicators computed
on the UTRs, a hexagon grid and an imported boundary layer, each of the four routes is
called (as a planner by API key and by staff session, anonymously, with a key of
another role and with a wrong key) and every JSON answer, successes and errors alike,
is validated against the schema documented for its operation and status.
"""

from __future__ import annotations

import csv
from typing import Any

import geopandas as gpd
import orjson
import pyogrio
import pytest
import shapely
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import Engine

from gis_core.access import create_api_key
from gis_core.settings import Settings
from layers.indicators.inputs import import_population, load_input_file
from layers.indicators.runs import ComputeRequest, compute_indicators
from layers.indicators.units import import_unit_set
from tests.test_indicators_support import (  # noqa: F401  (fixtures)
    analysis_engine,
    analysis_settings,
    current_parcels,
    read_gdf,
)
from tests.test_permits_openapi import Checked
from webmap.app import create_app
from webmap.auth import create_staff_user

SRID = 3844
ZONES = "/api/v1/analysis/zones"
COMPARE = "/api/v1/analysis/compare"
CATALOGUE = "/api/v1/indicators"
RUNS = "/api/v1/indicators/runs"
OPERATIONS = {(ZONES, "get"), (COMPARE, "get"), (CATALOGUE, "get"), (RUNS, "get")}
PLANNER_ONLY = {(ZONES, "get"), (COMPARE, "get")}


@pytest.fixture(scope="module")
def keys(analysis_engine: Engine) -> dict[str, str]:
    with analysis_engine.begin() as conn:
        found = {
            role: create_api_key(conn, f"{role} (openapi test)", role)
            for role in ("planner", "clerk")
        }
        create_staff_user(conn, "ioana", "parola-ioana-1", "planner")
    return found


@pytest.fixture(scope="module")
def app(analysis_settings: Settings, keys: dict[str, str]) -> Flask:
    return create_app(analysis_settings)


@pytest.fixture(scope="module")
def document(app: Flask) -> dict[str, Any]:
    response = app.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    return dict(orjson.loads(response.data))


@pytest.fixture(scope="module")
def plans(analysis_engine: Engine) -> dict[str, int]:
    """The demo's PUG and a draft PUZ (UTR ``TST``) over the first 400 parcels."""
    with analysis_engine.begin() as conn:
        pug = conn.execute(
            sa.text("SELECT id FROM urbanism.plan WHERE plan_type = 'PUG'")
        ).scalar_one()
        area = current_parcels(conn).geometry.to_numpy()[:400]
        outline = shapely.union_all(shapely.buffer(area, 1.0)).convex_hull
        draft = conn.execute(
            sa.text(
                "INSERT INTO urbanism.plan (uat_siruta, plan_type, title, status, valid_from) "
                "VALUES (54975, 'PUZ', 'PUZ draft (openapi test)', 'draft', '2025-01-01') "
                "RETURNING id"
            )
        ).scalar_one()
        rule = conn.execute(
            sa.text(
                "INSERT INTO urbanism.regulation (plan_id, utr_code, pot_max, cut_max) "
                "VALUES (:p, 'TST', 60, 2.5) RETURNING id"
            ),
            {"p": draft},
        ).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO urbanism.zone (plan_id, regulation_id, utr_code, geom) VALUES "
                "(:p, :r, 'TST', ST_Multi(ST_GeomFromWKB(:w, 3844)))"
            ),
            {"p": draft, "r": rule, "w": shapely.to_wkb(outline)},
        )
    return {"PUG": int(pug), "draft": int(draft)}


@pytest.fixture(scope="module")
def computed(
    app: Flask,
    analysis_engine: Engine,
    keys: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """An issued act (through the clerks' API), inputs and indicator runs on three unit sets."""
    folder = tmp_path_factory.mktemp("analysis_openapi")
    with analysis_engine.connect() as conn:
        parcels = current_parcels(conn)
        utrs = conn.execute(
            sa.text(
                "SELECT DISTINCT z.utr_code FROM urbanism.zone z JOIN urbanism.plan p "
                "ON p.id = z.plan_id WHERE p.plan_type = 'PUG' ORDER BY 1"
            )
        ).scalars()
        utr_codes = list(utrs)
        boundary = read_gdf(
            conn, "SELECT ST_AsBinary(geom) AS wkb FROM core.admin_unit WHERE level = 'uat'"
        )
    number = str(parcels["cadastral_number"].iloc[0])
    act = app.test_client().post(
        "/api/v1/acts",
        headers={"X-API-Key": keys["clerk"]},
        json={
            "kind": "CU",
            "number": "77",
            "issued_on": "2024-03-15",
            "requested_on": "2024-02-20",
            "validity_months": 12,
            "purpose": "Construire locuință",
            "cadastral_numbers": [number],
        },
    )
    assert act.status_code == 201, act.get_data(as_text=True)
    assert act.get_json()["links"], "the act must be linked to its parcel"
    parks = gpd.GeoDataFrame(
        {"name": ["Parc Central", "Parc Nord"]},
        geometry=list(shapely.point_on_surface(parcels.geometry.to_numpy()[[5, 900]])),
        crs=SRID,
    )
    pyogrio.write_dataframe(parks, folder / "parks.gpkg", driver="GPKG")
    table = folder / "population.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["UTR", "Locuitori"])
        writer.writerows([code, 500 + 10 * index] for index, code in enumerate(utr_codes))
    minx, miny, maxx, maxy = boundary.total_bounds
    middle = (minx + maxx) / 2
    halves = gpd.GeoDataFrame(
        {"cod": ["V", "E"], "nume": ["Vest", "Est"]},
        geometry=[shapely.box(minx, miny, middle, maxy), shapely.box(middle, miny, maxx, maxy)],
        crs=SRID,
    )
    pyogrio.write_dataframe(halves, folder / "halves.gpkg", driver="GPKG")
    with analysis_engine.begin() as conn:
        load_input_file(conn, folder / "parks.gpkg", "park", SRID, name_field="name")
        import_population(conn, table, "utr", 2025, key_field="UTR", population_field="Locuitori")
        import_unit_set(conn, folder / "halves.gpkg", "halves", SRID, key_field="cod")
        outcomes = [
            *compute_indicators(conn, ComputeRequest(units="utr"), SRID),
            *compute_indicators(
                conn,
                ComputeRequest(indicators=("built_share", "park_access_share"), units="hex:1000"),
                SRID,
            ),
            *compute_indicators(
                conn, ComputeRequest(indicators=("avg_parcel_size",), units="halves"), SRID
            ),
        ]
    return {
        "number": number,
        "stored": {(o.indicator, o.units) for o in outcomes if o.run_id is not None},
        "skipped": {(o.indicator, o.units) for o in outcomes if o.run_id is None},
    }


@pytest.fixture
def planner(app: Flask, document: dict[str, Any], keys: dict[str, str]) -> Checked:
    return Checked(app.test_client(), document, {"X-API-Key": keys["planner"]})


def test_the_routes_are_documented_with_their_security(document: dict[str, Any]) -> None:
    for path, method in OPERATIONS:
        operation = document["paths"][path][method]
        responses = operation["responses"]
        error = {"$ref": "#/components/schemas/Error"}
        for status in ("401", "429", "503"):
            assert responses[status]["content"]["application/json"]["schema"] == error
        if (path, method) in PLANNER_ONLY:
            assert operation["security"] == [{"ApiKey": []}, {"StaffSession": []}]
            assert responses["403"]["content"]["application/json"]["schema"] == error
            names = {p["name"] for p in operation["parameters"]}
            assert {"as_of", "plan"} <= names
        else:
            assert {} in operation["security"], "public operations take anonymous callers"
    names = {p["name"] for p in document["paths"][COMPARE]["get"]["parameters"]}
    assert names == {"as_of", "plan", "other_as_of", "other_plan"}
    (indicator,) = [
        p for p in document["paths"][RUNS]["get"]["parameters"] if p["name"] == "indicator"
    ]
    assert indicator["schema"]["type"] == "array" and indicator["explode"] is True


def test_zone_analysis_answers_match_the_document(
    app: Flask,
    planner: Checked,
    document: dict[str, Any],
    keys: dict[str, str],
    plans: dict[str, int],
    computed: dict[str, Any],
) -> None:
    today = planner.call("get", ZONES, 200)
    assert today["zones"] and sum(z["parcel_count"] for z in today["zones"]) == 2000
    years: dict[str, int] = {}
    for zone in today["zones"]:
        for year, count in (zone["acts_per_year"] or {}).items():
            years[year] = years.get(year, 0) + count
    assert years == {"2024": 1}, "the act issued through the API counts once, in 2024"
    per_zone = planner.call("get", ZONES + "?by=zone&plan={plan}", 200, plan=plans["PUG"])
    assert per_zone["plan_id"] == plans["PUG"]
    assert all(z["zone_id"] is not None for z in per_zone["zones"])
    assert planner.call("get", ZONES + "?as_of=2000-01-01", 200)["zones"] == []
    (draft,) = planner.call("get", ZONES + "?plan={plan}", 200, plan=plans["draft"])["zones"]
    assert draft["utr_code"] == "TST" and draft["cut_max"] == 2.5
    for query, locator in (
        ("as_of=yesterday", "as_of"),
        ("as_of=9999-12-31", "as_of"),
        ("plan=x", "plan"),
        ("plan=99999999999999999999", "plan"),
        ("by=street", "by"),
    ):
        assert planner.call("get", f"{ZONES}?{query}", 400)["locator"] == locator, query
    assert planner.call("get", ZONES + "?plan=999999", 404)["locator"] == "plan"

    anonymous = Checked(app.test_client(), document, {})
    assert "planner" in anonymous.call("get", ZONES, 403)["description"]
    Checked(app.test_client(), document, {"X-API-Key": keys["clerk"]}).call("get", ZONES, 403)
    Checked(app.test_client(), document, {"X-API-Key": "ug_not-a-real-key"}).call("get", ZONES, 401)
    session = app.test_client()
    signed_in = session.post("/auth/login", json={"login": "ioana", "password": "parola-ioana-1"})
    assert signed_in.status_code == 200
    assert Checked(session, document, {}).call("get", ZONES + "?by=utr", 200)["zones"]


def test_plan_comparison_answers_match_the_document(
    app: Flask,
    planner: Checked,
    document: dict[str, Any],
    keys: dict[str, str],
    plans: dict[str, int],
    computed: dict[str, Any],
) -> None:
    template = COMPARE + "?plan={a}&other_plan={b}"
    answer = planner.call("get", template, 200, a=plans["PUG"], b=plans["draft"])
    assert answer["changed_parcels"] == len(answer["parcels"]) > 0
    moved = [p for p in answer["parcels"] if p["utr_after"] == "TST"]
    assert moved and all(p["utr_before"] and p["capacity_after"] for p in moved)
    assert answer["before"]["plan_id"] == plans["PUG"] and answer["truncated"] is False
    assert sum(t["parcels"] for t in answer["transitions"]) == answer["changed_parcels"]
    # Before 2000 no plan was in force: every parcel of today changed zone since.
    history = planner.call("get", COMPARE + "?as_of=2000-01-01", 200)
    assert history["changed_parcels"] == 2000
    assert all(p["utr_before"] is None for p in history["parcels"])
    same = planner.call("get", template, 400, a=plans["PUG"], b=plans["PUG"])
    assert same["locator"] == "other_plan"
    for query, locator in (
        ("other_as_of=2024-13-01", "other_as_of"),
        ("as_of=9999-12-31", "as_of"),
        ("other_plan=1.5", "other_plan"),
        ("other_plan=-99999999999999999999", "other_plan"),
    ):
        assert planner.call("get", f"{COMPARE}?{query}", 400)["locator"] == locator, query
    Checked(app.test_client(), document, {}).call("get", COMPARE, 403)
    Checked(app.test_client(), document, {"X-API-Key": keys["clerk"]}).call("get", COMPARE, 403)
    Checked(app.test_client(), document, {"X-API-Key": "ug_not-a-real-key"}).call(
        "get", COMPARE, 401
    )


def test_indicator_answers_match_the_document(
    app: Flask, document: dict[str, Any], computed: dict[str, Any]
) -> None:
    anonymous = Checked(app.test_client(), document, {})
    catalogue = anonymous.call("get", CATALOGUE, 200)["indicators"]
    assert {"built_density", "acts_per_1000", "time_to_issue"} <= {i["id"] for i in catalogue}
    runs = anonymous.call("get", RUNS, 200)["runs"]
    assert {(r["indicator"], r["units"]) for r in runs} == computed["stored"]
    assert ("transit_access_share", "utr") in computed["skipped"]  # no transit stops loaded
    by_key = {(r["indicator"], r["units"]): r for r in runs}
    green = by_key[("green_per_inhabitant", "utr")]
    assert green["input_versions"]["population"][0]["year"] == 2025
    assert [i["kind"] for i in green["input_versions"]["inputs"]] == ["park"]
    assert by_key[("avg_parcel_size", "halves")]["input_versions"]["units"]["version"] == 1
    assert by_key[("acts_per_1000", "utr")]["input_versions"]["tables"]["permits.act"]["rows"] == 1
    assert by_key[("built_share", "hex:1000")]["summary"]["with_value"] > 0

    hexes = anonymous.call("get", RUNS + "?units=hex:1000", 200)["runs"]
    assert {r["indicator"] for r in hexes} == {"built_share", "park_access_share"}
    # The units are read as the compute command reads them: spelled another way, same runs.
    assert anonymous.call("get", RUNS + "?units=HEX:1000.0", 200)["runs"] == hexes
    chosen = anonymous.call("get", RUNS + "?indicator=built_share&indicator=avg_parcel_size", 200)[
        "runs"
    ]
    assert {(r["indicator"], r["units"]) for r in chosen} == {
        ("built_share", "utr"),
        ("built_share", "hex:1000"),
        ("avg_parcel_size", "utr"),
        ("avg_parcel_size", "halves"),
    }
    assert anonymous.call("get", RUNS + "?units=nowhere", 200)["runs"] == []
    assert anonymous.call("get", RUNS + "?indicator=happiness", 400)["locator"] == "indicator"
    for units in ("hex:1", "hex%3Aone", "no%20such%20units", "a%00b"):
        assert anonymous.call("get", f"{RUNS}?units={units}", 400)["locator"] == "units", units
    # A wrong key is refused here too, as on every /api/v1 route, not read as anonymous.
    wrong = Checked(app.test_client(), document, {"X-API-Key": "ug_not-a-real-key"})
    wrong.call("get", CATALOGUE, 401)
    wrong.call("get", RUNS, 401)


def test_every_operation_was_seen_succeeding_and_failing(
    app: Flask, document: dict[str, Any], keys: dict[str, str], computed: dict[str, Any]
) -> None:
    """Each kind of caller on each of the four operations, with the status it must get."""
    refused = dict.fromkeys(PLANNER_ONLY, 403)
    callers: tuple[tuple[dict[str, str], dict[tuple[str, str], int]], ...] = (
        ({"X-API-Key": keys["planner"]}, {}),
        ({}, refused),
        ({"X-API-Key": keys["clerk"]}, refused),
        ({"X-API-Key": "ug_not-a-real-key"}, dict.fromkeys(OPERATIONS, 401)),
    )
    seen: dict[tuple[str, str], set[str]] = {key: set() for key in OPERATIONS}
    for headers, statuses in callers:
        checked = Checked(app.test_client(), document, headers)
        for path, method in sorted(OPERATIONS):
            query = "?as_of=2000-01-01" if path == COMPARE else ""  # two different states
            checked.call(method, path + query, statuses.get((path, method), 200))
        for path, method, status in checked.seen:
            seen[(path, method)].add(status)
    assert all({"200", "401"} <= s for s in seen.values()), seen
    assert all("403" in seen[key] for key in PLANNER_ONLY), seen
