"""Zone analysis and plan comparison on the demo city, checked against geopandas."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import Connection, Engine

from gis_core.errors import InvalidParameter, NotFound
from gis_core.settings import Settings
from layers.analysis.acts import ActsSource, probe_acts
from layers.analysis.basis import AsOf
from layers.analysis.compare import PlanState, compare_plans
from layers.analysis.zones import ZoneQuery, analyse_zones
from tests.test_indicators_support import (  # noqa: F401  (fixtures)
    analysis_engine,
    analysis_settings,
    assign,
    cli_env,
    current_buildings,
    current_parcels,
    read_gdf,
)
from webmap.cli import main

NOW = AsOf.of(None)


def _pug_id(conn: Connection) -> int:
    return int(
        conn.execute(sa.text("SELECT id FROM urbanism.plan WHERE plan_type = 'PUG'")).scalar_one()
    )


def _expected_per_utr(conn: Connection, plan_id: int) -> pd.DataFrame:
    """Per UTR of one plan, with geopandas/shapely only."""
    parcels = current_parcels(conn)
    buildings = current_buildings(conn)
    zones = read_gdf(
        conn,
        "SELECT z.id, z.utr_code, r.pot_max::float8 AS pot_max, r.cut_max::float8 AS cut_max, "
        "ST_AsBinary(z.geom) AS wkb FROM urbanism.zone z LEFT JOIN urbanism.regulation r "
        "ON r.id = z.regulation_id WHERE z.plan_id = :p",
        p=plan_id,
    )
    parcels["area"] = shapely.area(parcels.geometry.to_numpy())
    zone_id = assign(shapely.point_on_surface(parcels.geometry.to_numpy()), zones, "id")
    parcels["zone"] = zone_id
    parcels = parcels[pd.notna(parcels["zone"])].merge(
        zones.drop(columns="geometry"), left_on="zone", right_on="id", suffixes=("", "_z")
    )
    built = buildings.groupby("cadastral_number")[["fp", "gfa"]].sum()
    parcels = parcels.join(built, on="cadastral_number").fillna({"fp": 0.0, "gfa": 0.0})
    parcels["pot"] = parcels["fp"] / parcels["area"] * 100
    parcels["cut"] = parcels["gfa"] / parcels["area"]
    parcels["over_pot"] = parcels["pot"] > parcels["pot_max"]
    parcels["room"] = np.maximum(parcels["cut_max"] * parcels["area"] - parcels["gfa"], 0)
    return parcels.groupby("utr_code").agg(
        parcels=("id", "size"),
        area=("area", "sum"),
        median=("area", "median"),
        fp=("fp", "sum"),
        gfa=("gfa", "sum"),
        over_pot=("over_pot", "sum"),
        room=("room", "sum"),
        pot_median=("pot", "median"),
    )


def test_zone_analysis_matches_an_independent_computation(analysis_engine: Engine) -> None:
    with analysis_engine.connect() as conn:
        plan = _pug_id(conn)
        document = analyse_zones(conn, ZoneQuery(NOW, plan_id=plan))
        expected = _expected_per_utr(conn, plan)
    zones = {z["utr_code"]: z for z in document["zones"]}
    assert set(zones) == set(expected.index)
    assert sum(z["parcel_count"] for z in zones.values()) == 2000
    for code, row in expected.iterrows():
        got = zones[code]
        assert got["parcel_count"] == row["parcels"], code
        assert math.isclose(got["total_area"], row["area"], rel_tol=1e-9), code
        assert math.isclose(got["median_area"], row["median"], rel_tol=1e-9), code
        assert math.isclose(got["footprint"], row["fp"], rel_tol=1e-9, abs_tol=1e-6), code
        assert math.isclose(got["floor_area"], row["gfa"], rel_tol=1e-9, abs_tol=1e-6), code
        assert got["parcels_over_pot"] == row["over_pot"], code
        if got["cut_max"] is not None:
            assert math.isclose(got["remaining_floor_area"], row["room"], rel_tol=1e-9), code
        assert math.isclose(got["pot_quantiles"][2], row["pot_median"], rel_tol=1e-9, abs_tol=1e-9)
        assert sum(got["pot_histogram"]) == got["parcel_count"]
    assert any(z["parcels_over_pot"] > 0 for z in zones.values())


def test_zone_analysis_per_zone_and_in_the_past(analysis_engine: Engine) -> None:
    with analysis_engine.connect() as conn:
        per_zone = analyse_zones(conn, ZoneQuery(NOW, by="zone"))
        before = analyse_zones(conn, ZoneQuery(AsOf.parse("2000-01-01")))
        with pytest.raises(NotFound):
            analyse_zones(conn, ZoneQuery(NOW, plan_id=999_999))
    assert all(z["zone_id"] is not None for z in per_zone["zones"])
    assert sum(z["parcel_count"] for z in per_zone["zones"]) == 2000
    # The demo was loaded today: as of 2000 nothing existed.
    assert before["zones"] == []
    with pytest.raises(InvalidParameter):
        AsOf.parse("31.12.2020")
    with pytest.raises(InvalidParameter):
        ZoneQuery(NOW, by="street")


def _fixture_acts(conn: Connection) -> ActsSource:
    """A register of three acts on known parcels in a schema of the test's own."""
    conn.execute(sa.text("CREATE SCHEMA acts_fixture"))
    conn.execute(
        sa.text(
            "CREATE TABLE acts_fixture.act (id bigint PRIMARY KEY, kind text, issued_on date, "
            "requested_on date, status text)"
        )
    )
    conn.execute(
        sa.text(
            "CREATE TABLE acts_fixture.act_parcel (act_id bigint, parcel_id bigint, "
            "is_primary boolean)"
        )
    )
    ids = conn.execute(sa.text("SELECT id FROM cadastre.parcel ORDER BY id LIMIT 3")).scalars()
    first, second, third = list(ids)
    conn.execute(
        sa.text(
            "INSERT INTO acts_fixture.act VALUES "
            "(1, 'CU', '2024-03-10', '2024-02-20', 'issued'), "
            "(2, 'AC', '2025-05-02', '2025-03-01', 'issued'), "
            "(3, 'AC', NULL, '2025-06-01', 'requested'), "
            "(4, 'AD', '2025-07-01', '2025-06-11', 'issued')"
        )
    )
    conn.execute(
        sa.text(
            "INSERT INTO acts_fixture.act_parcel VALUES (1, :a, true), (2, :b, true), "
            "(2, :c, false), (3, :a, true), (4, :a, false)"
        ),
        {"a": first, "b": second, "c": third},
    )
    return ActsSource(schema="acts_fixture")


def test_acts_per_year_from_the_register_and_a_clear_skip(analysis_engine: Engine) -> None:
    with analysis_engine.connect() as conn, conn.begin() as outer:
        missing = ActsSource(schema="no_such_schema")
        state = probe_acts(conn, missing)
        assert not state.ok and "does not exist yet" in state.message
        skipped = analyse_zones(conn, ZoneQuery(NOW), missing)
        assert (
            skipped["acts"].startswith("skipped") and skipped["zones"][0]["acts_per_year"] is None
        )
        source = _fixture_acts(conn)
        document = analyse_zones(conn, ZoneQuery(NOW), source)
        outer.rollback()
    totals: dict[str, int] = {}
    for zone in document["zones"]:
        for year, count in zone["acts_per_year"].items():
            totals[year] = totals.get(year, 0) + count
    # The requested act has no issue date; act 2 counts once (on its primary parcel).
    assert totals == {"2024": 1, "2025": 2}


def test_plan_comparison_finds_the_parcels_a_new_plan_changes(analysis_engine: Engine) -> None:
    with analysis_engine.connect() as conn, conn.begin() as outer:
        pug = _pug_id(conn)
        parcels = current_parcels(conn)
        area = parcels.geometry.to_numpy()[:400]
        outline = shapely.union_all(shapely.buffer(area, 1.0)).convex_hull
        plan = conn.execute(
            sa.text(
                "INSERT INTO urbanism.plan (uat_siruta, plan_type, title, status, valid_from) "
                "VALUES (54975, 'PUZ', 'PUZ test', 'draft', '2025-01-01') RETURNING id"
            )
        ).scalar_one()
        rule = conn.execute(
            sa.text(
                "INSERT INTO urbanism.regulation (plan_id, utr_code, pot_max, cut_max) "
                "VALUES (:p, 'TST', 60, 2.5) RETURNING id"
            ),
            {"p": plan},
        ).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO urbanism.zone (plan_id, regulation_id, utr_code, geom) VALUES "
                "(:p, :r, 'TST', ST_Multi(ST_GeomFromWKB(:w, 3844)))"
            ),
            {"p": plan, "r": rule, "w": shapely.to_wkb(outline)},
        )
        now = AsOf.of(None)  # after the inserts: the new zone's period has started
        document = compare_plans(conn, PlanState(now, pug), PlanState(now, plan))
        before = analyse_zones(conn, ZoneQuery(now, plan_id=pug))
        with pytest.raises(InvalidParameter):
            compare_plans(conn, PlanState(NOW, pug), PlanState(NOW, pug))
        outer.rollback()
    inside = shapely.contains_xy(
        outline, *shapely.get_coordinates(shapely.point_on_surface(parcels.geometry.to_numpy())).T
    )
    changed = {p["cadastral_number"] for p in document["parcels"]}
    in_new_plan = set(parcels["cadastral_number"][inside])
    # Every parcel of the new zone changed UTR; the others are in no zone of the new plan.
    assert {p["cadastral_number"] for p in document["parcels"] if p["utr_after"] == "TST"} == (
        in_new_plan
    )
    assert changed >= in_new_plan
    areas = dict(
        zip(parcels["cadastral_number"], shapely.area(parcels.geometry.to_numpy()), strict=True)
    )
    cut_before = {z["utr_code"]: z["cut_max"] for z in before["zones"]}
    for parcel in document["parcels"]:
        if parcel["utr_after"] != "TST":
            continue
        expected_after = 2.5 * areas[parcel["cadastral_number"]]
        assert math.isclose(parcel["capacity_after"], expected_after, rel_tol=1e-9)
        old = cut_before.get(parcel["utr_before"])
        if old is not None:
            assert math.isclose(
                parcel["capacity_before"], old * areas[parcel["cadastral_number"]], rel_tol=1e-9
            )
    assert math.isclose(
        document["capacity_change"], sum(p["capacity_change"] for p in document["parcels"])
    )


def test_cli_writes_the_zone_analysis(
    analysis_engine: Engine, analysis_settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "zones.json"
    env = cli_env(analysis_settings)
    result = CliRunner().invoke(main, ["analysis", "zones", "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert sum(z["parcel_count"] for z in document["zones"]) == 2000
    bad = CliRunner().invoke(main, ["analysis", "zones", "--as-of", "yesterday"], env=env)
    assert bad.exit_code == 2 and "as_of must be a date" in bad.output
    compare = CliRunner().invoke(
        main, ["analysis", "compare", "--plan", "1", "--other-plan", "2"], env=env
    )
    assert compare.exit_code == 0, compare.output
    assert "parcels changed" in compare.output


def test_api_is_for_planners(analysis_engine: Engine, analysis_settings: Settings) -> None:
    from webmap.app import create_app
    from webmap.auth import create_api_key

    with analysis_engine.begin() as conn:
        planner = create_api_key(conn, "planner test", "planner")
        portal = create_api_key(conn, "portal test", "portal")
    client = create_app(analysis_settings).test_client()
    assert client.get("/api/v1/analysis/zones").status_code == 403
    assert client.get("/api/v1/analysis/zones", headers={"X-API-Key": portal}).status_code == 403
    answer = client.get("/api/v1/analysis/zones?by=utr", headers={"X-API-Key": planner})
    assert answer.status_code == 200
    assert sum(z["parcel_count"] for z in answer.get_json()["zones"]) == 2000
    bad = client.get("/api/v1/analysis/zones?plan=x", headers={"X-API-Key": planner})
    assert bad.status_code == 400 and bad.get_json()["locator"] == "plan"
    catalogue = client.get("/api/v1/indicators").get_json()["indicators"]
    assert {"built_density", "green_per_inhabitant", "time_to_issue"} <= {
        i["id"] for i in catalogue
    }
