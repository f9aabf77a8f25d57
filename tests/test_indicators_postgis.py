"""Indicators computed in PostGIS on the demo city, checked against geopandas.

Units are the demo's UTRs, a SQL hexagon grid and an imported boundary file; parks,
schools and population come from files written here; the acts register is a table of
the test's own (the permits schema may or may not exist yet).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import orjson
import pyogrio
import pytest
import shapely
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import Connection, Engine

from gis_core.errors import Conflict, InvalidInput, InvalidParameter, NotFound
from gis_core.settings import Settings
from layers import features
from layers.analysis.acts import ActsSource
from layers.catalog import Catalog
from layers.indicators.catalogue import CATALOGUE, IndicatorParameters
from layers.indicators.export import export_results
from layers.indicators.inputs import import_population, load_input_file
from layers.indicators.report import write_report
from layers.indicators.runs import ComputeRequest, RunOutcome, compute_indicators, recompute
from layers.indicators.units import UnitSpec, import_unit_set
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

SRID = 3844


def _by_id(outcomes: list[RunOutcome]) -> dict[str, RunOutcome]:
    return {o.indicator: o for o in outcomes}


def _units(conn: Connection, run_id: int) -> gpd.GeoDataFrame:
    return read_gdf(
        conn,
        "SELECT unit_key, value, ST_AsBinary(geom) AS wkb FROM analysis.indicator_result "
        "WHERE run_id = :r",
        r=run_id,
    )


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@pytest.fixture(scope="module")
def inputs(analysis_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Parks, schools and population points written as files, then loaded."""
    folder = tmp_path_factory.mktemp("inputs")
    with analysis_engine.begin() as conn:
        parcels = current_parcels(conn)
    rng = np.random.default_rng(7)
    picks = rng.choice(len(parcels), size=60, replace=False)
    centres = shapely.point_on_surface(parcels.geometry.to_numpy()[picks])
    files = {}
    for kind, chosen in (("park", centres[:25]), ("school", centres[25:45])):
        gdf = gpd.GeoDataFrame(
            {"name": [f"{kind} {i}" for i in range(len(chosen))]}, geometry=chosen, crs=SRID
        ).to_crs(4326)
        files[kind] = folder / f"{kind}s.geojson"
        pyogrio.write_dataframe(gdf, files[kind], driver="GeoJSON")
    residents = gpd.GeoDataFrame(
        {"residents": rng.integers(1, 40, size=len(parcels)).astype(float)},
        geometry=shapely.point_on_surface(parcels.geometry.to_numpy()),
        crs=SRID,
    )
    files["population"] = folder / "residents.gpkg"
    pyogrio.write_dataframe(residents, files["population"], driver="GPKG")
    with analysis_engine.begin() as conn:
        assert load_input_file(conn, files["park"], "park", SRID, name_field="name") == 25
        assert load_input_file(conn, files["school"], "school", SRID) == 20
        load_input_file(conn, files["population"], "population", SRID, value_field="residents")
    return files


def test_catalogue_entries_are_complete() -> None:
    assert len(CATALOGUE) >= 11
    for item in CATALOGUE:
        described = item.describe()
        assert all(described[k] for k in ("name", "definition", "formula", "unit", "source_layers"))


def test_grid_indicators_match_geopandas(analysis_engine: Engine, inputs: dict[str, Path]) -> None:
    request = ComputeRequest(units="hex:500", parameters=IndicatorParameters(park_distance_m=350))
    with analysis_engine.begin() as conn:
        outcomes = _by_id(compute_indicators(conn, request, SRID))
        cells = _units(conn, outcomes["built_share"].run_id or 0)
        parcels = current_parcels(conn)
        buildings = current_buildings(conn)
        flood = read_gdf(
            conn,
            "SELECT ST_AsBinary(geom) AS wkb FROM urbanism.restriction WHERE kind = 'flood'",
        )
        boundary = read_gdf(
            conn, "SELECT ST_AsBinary(geom) AS wkb FROM core.admin_unit WHERE level = 'uat'"
        )
    # The grid: regular hexagons of edge 500 m clipped to the municipality, covering it.
    assert math.isclose(cells.area.sum(), boundary.area.sum(), rel_tol=1e-6)
    assert math.isclose(cells.area.max(), 1.5 * math.sqrt(3) * 500**2, rel_tol=1e-6)
    cells = cells.sort_values("unit_key").reset_index(drop=True)
    area = dict(zip(cells["unit_key"], cells.area, strict=True))
    # built share: footprints by the building's point on surface.
    building_cell = assign(
        shapely.point_on_surface(buildings.geometry.to_numpy()), cells, "unit_key"
    )
    fp = buildings.assign(cell=building_cell).groupby("cell")["fp"].sum()
    for key, value in outcomes["built_share"].values.items():
        assert _close(value, 100 * fp.get(key, 0.0) / area[key]), key
    # parcels: average size, flood share, park access within 350 m.
    parcel_cell = assign(shapely.point_on_surface(parcels.geometry.to_numpy()), cells, "unit_key")
    geoms = parcels.geometry.to_numpy()
    in_flood = shapely.intersects(geoms, shapely.union_all(flood.geometry.to_numpy()))
    parks = pyogrio.read_dataframe(inputs["park"]).to_crs(SRID).geometry.to_numpy()
    near_park = shapely.dwithin(geoms[:, None], parks[None, :], 350).any(axis=1)
    frame = parcels.assign(
        cell=parcel_cell, area=shapely.area(geoms), flood=in_flood, park=near_park
    )
    grouped = frame.groupby("cell").agg(
        area=("area", "mean"), flood=("flood", "mean"), park=("park", "mean")
    )
    for key, row in grouped.iterrows():
        assert _close(outcomes["avg_parcel_size"].values[key], row["area"]), key
        assert _close(outcomes["flood_share"].values[key], 100 * row["flood"]), key
        assert _close(outcomes["park_access_share"].values[key], 100 * row["park"]), key
    empty = set(outcomes["avg_parcel_size"].values) - set(grouped.index)
    assert all(outcomes["avg_parcel_size"].values[k] is None for k in empty)
    assert any(v for v in outcomes["flood_share"].values.values())
    assert (
        outcomes["transit_access_share"].skipped == "skipped: no transit_stop input layer is loaded"
    )


def test_population_green_and_acts_indicators(
    analysis_engine: Engine, inputs: dict[str, Path], tmp_path: Path
) -> None:
    with analysis_engine.begin() as conn:
        keys = (
            conn.execute(
                sa.text(
                    "SELECT DISTINCT z.utr_code FROM urbanism.zone z JOIN urbanism.plan p "
                    "ON p.id = z.plan_id WHERE p.plan_type = 'PUG' ORDER BY 1"
                )
            )
            .scalars()
            .all()
        )
    table = tmp_path / "population.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(["UTR", "Locuitori"])
        for index, key in enumerate(keys):
            writer.writerow([key, 1000 + 37 * index])
    with analysis_engine.connect() as conn, conn.begin() as outer:
        assert import_population(
            conn, table, "utr", 2025, key_field="UTR", population_field="Locuitori"
        ) == len(keys)
        source = _acts_fixture(conn)
        outcomes = _by_id(compute_indicators(conn, ComputeRequest(units="utr"), SRID, acts=source))
        units = _units(conn, outcomes["green_per_inhabitant"].run_id or 0)
        green = read_gdf(
            conn,
            "SELECT ST_AsBinary(z.geom) AS wkb FROM urbanism.zone z JOIN urbanism.plan p "
            "ON p.id = z.plan_id WHERE p.plan_type = 'PUG' AND z.utr_code LIKE 'V%'",
        )
        links = conn.execute(
            sa.text(
                "SELECT l.act_id, p.cadastral_number FROM acts_fixture.act_parcel l "
                "JOIN cadastre.parcel p ON p.id = l.parcel_id WHERE l.is_primary"
            )
        )
        parcel_of_act: dict[int, str] = dict(links.tuples().all())
        parcels = current_parcels(conn)
        outer.rollback()
    population = {key: 1000 + 37 * i for i, key in enumerate(keys)}
    merged = shapely.union_all(green.geometry.to_numpy())
    for key, geom in zip(units["unit_key"], units.geometry, strict=True):
        expected = shapely.area(shapely.intersection(geom, merged)) / population[key]
        assert math.isclose(
            outcomes["green_per_inhabitant"].values[key] or 0.0,
            expected,
            rel_tol=1e-6,
            abs_tol=1e-9,
        ), key
    # Acts issued this year: acts 5 and 6 (act 7 was only requested), on known parcels.
    cell = assign(shapely.point_on_surface(parcels.geometry.to_numpy()), units, "unit_key")
    utr_of = dict(zip(parcels["cadastral_number"], cell, strict=True))
    counts: dict[str, int] = {}
    for act in (5, 6):
        counts[utr_of[parcel_of_act[act]]] = counts.get(utr_of[parcel_of_act[act]], 0) + 1
    for key, value in outcomes["acts_per_1000"].values.items():
        assert _close(value, 1000 * counts.get(key, 0) / population[key]), key
    days = {k: v for k, v in outcomes["time_to_issue"].values.items() if v is not None}
    assert sorted(days.values()) == sorted(_expected_days(utr_of, parcel_of_act).values())


def _acts_fixture(conn: Connection) -> ActsSource:
    conn.execute(sa.text("CREATE SCHEMA acts_fixture"))
    conn.execute(
        sa.text(
            "CREATE TABLE acts_fixture.act (id bigint PRIMARY KEY, kind text, "
            "issued_on date, requested_on date, status text)"
        )
    )
    conn.execute(
        sa.text(
            "CREATE TABLE acts_fixture.act_parcel (act_id bigint, parcel_id bigint, "
            "is_primary boolean)"
        )
    )
    ids = conn.execute(sa.text("SELECT id FROM cadastre.parcel ORDER BY id DESC LIMIT 3")).scalars()
    a, b, c = list(ids)
    conn.execute(
        sa.text(
            "INSERT INTO acts_fixture.act VALUES "
            "(5, 'AC', date_trunc('year', now())::date + 40, date_trunc('year', now())::date + 10, "
            "'issued'), (6, 'CU', date_trunc('year', now())::date + 20, "
            "date_trunc('year', now())::date + 5, 'issued'), "
            "(7, 'AC', NULL, date_trunc('year', now())::date + 3, 'requested'), "
            "(8, 'CU', '2001-05-05', '2001-04-01', 'issued')"
        )
    )
    conn.execute(
        sa.text(
            "INSERT INTO acts_fixture.act_parcel VALUES (5, :a, true), (6, :b, true), "
            "(7, :c, true), (8, :a, true)"
        ),
        {"a": a, "b": b, "c": c},
    )
    return ActsSource(schema="acts_fixture")


def _expected_days(utr_of: dict[str, str], parcel_of_act: dict[int, str]) -> dict[str, float]:
    per_unit: dict[str, list[int]] = {}
    for act, days in ((5, 30), (6, 15)):
        per_unit.setdefault(utr_of[parcel_of_act[act]], []).append(days)
    return {k: sum(v) / len(v) for k, v in per_unit.items()}


def test_imported_boundaries_recompute_and_publication(
    analysis_engine: Engine, analysis_settings: Settings, tmp_path: Path
) -> None:
    with analysis_engine.begin() as conn:
        boundary = read_gdf(
            conn, "SELECT ST_AsBinary(geom) AS wkb FROM core.admin_unit WHERE level = 'uat'"
        )
    minx, miny, maxx, maxy = boundary.total_bounds
    xs = np.linspace(minx, maxx, 4)
    quarters = [shapely.box(xs[i], miny, xs[i + 1], maxy) for i in range(3)]
    districts = gpd.GeoDataFrame(
        {"cod": ["D1", "D2", "D3"], "nume": ["Vest", "Centru", "Est"]}, geometry=quarters, crs=SRID
    )
    path = tmp_path / "districts.gpkg"
    pyogrio.write_dataframe(districts, path, driver="GPKG")
    with analysis_engine.begin() as conn:
        assert (
            import_unit_set(conn, path, "districts", SRID, key_field="cod", name_field="nume") == 3
        )
        outcomes = _by_id(
            compute_indicators(
                conn,
                ComputeRequest(indicators=("avg_parcel_size", "built_density"), units="districts"),
                SRID,
            )
        )
    run = outcomes["avg_parcel_size"].run_id or 0
    with analysis_engine.begin() as conn:
        assert recompute(conn, run, SRID)["identical"] is True
    # A parcel added later does not change the run's as-of state: still identical.
    with analysis_engine.connect() as conn, conn.begin() as outer:
        conn.execute(
            sa.text(
                "INSERT INTO cadastre.parcel (uat_siruta, cadastral_number, geom) SELECT 54975, "
                "'999999', ST_Multi(ST_Buffer(ST_PointOnSurface(geom), 20)) FROM core.admin_unit "
                "WHERE level = 'uat'"
            )
        )
        assert recompute(conn, run, SRID)["identical"] is True
        conn.execute(
            sa.text(
                "DELETE FROM cadastre.building WHERE id IN "
                "(SELECT id FROM cadastre.building ORDER BY id LIMIT 1)"
            )
        )
        conn.execute(
            sa.text(
                "DELETE FROM cadastre.parcel WHERE id IN (SELECT id FROM "
                "cadastre.parcel WHERE valid_to IS NULL ORDER BY id LIMIT 1)"
            )
        )
        with pytest.raises(Conflict, match=r"cadastre\.parcel"):
            recompute(conn, run, SRID)
        outer.rollback()
    # Published through the catalog: OGC API Features serves the layer with its values.
    catalog = Catalog(SRID, check_interval=0.0)
    with analysis_engine.connect() as conn:
        catalog.refresh(conn, force=True)
    layer = catalog.get("ind_avg_parcel_size_districts")
    assert layer.style["type"] == "choropleth"
    service = features.Service(analysis_engine, catalog, "http://example.test/ogc")
    answer = features.items(service, "public", layer.id, [("limit", "10")])
    document = orjson.loads(b"".join(answer.content()))
    values = {f["properties"]["unit_key"]: f["properties"]["value"] for f in document["features"]}
    assert values == pytest.approx(outcomes["avg_parcel_size"].values)
    assert {f["properties"]["unit_name"] for f in document["features"]} == {"Vest", "Centru", "Est"}


def test_exports_and_report(
    analysis_engine: Engine, analysis_settings: Settings, tmp_path: Path
) -> None:
    env = cli_env(analysis_settings)
    runner = CliRunner()
    done = runner.invoke(
        main,
        [
            "indicators",
            "compute",
            "--units",
            "square:1000",
            "--indicator",
            "built_share",
            "--indicator",
            "flood_share",
        ],
        env=env,
    )
    assert done.exit_code == 0, done.output
    assert "ind_built_share_square_1000" in done.output
    with analysis_engine.connect() as conn:
        rows = {}
        for fmt in ("csv", "gpkg", "geojson"):
            out = tmp_path / f"indicators.{fmt}"
            rows[fmt] = export_results(conn, out, fmt, SRID, units="square:1000")
        index = write_report(conn, tmp_path / "report", units="square:1000")
    with (tmp_path / "indicators.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == rows["csv"] and {r["indicator"] for r in table} == {
        "built_share",
        "flood_share",
    }
    layers = pyogrio.list_layers(tmp_path / "indicators.gpkg")
    assert {str(name) for name, _ in layers} == {
        "ind_built_share_square_1000",
        "ind_flood_share_square_1000",
    }
    geo = json.loads((tmp_path / "indicators.geojson").read_text())
    lon, lat = geo["features"][0]["geometry"]["coordinates"][0][0][0][:2]
    assert 23.3 < lon < 23.9 and 46.6 < lat < 46.9
    html = index.read_text()
    assert "Share of built area" in html and "Parcels in flood areas" in html
    for png in (tmp_path / "report" / "figures").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list((tmp_path / "report" / "figures").glob("*.png"))) == 4
    from webmap.app import create_app

    client = create_app(analysis_settings).test_client()
    runs = client.get("/api/v1/indicators/runs?units=square:1000").get_json()["runs"]
    assert {r["indicator"] for r in runs} == {"built_share", "flood_share"}
    assert all(r["input_versions"]["tables"]["cadastre.parcel"]["rows"] == 2000 for r in runs)
    items = client.get(
        "/ogc/features/collections/ind_built_share_square_1000/items?f=json&limit=500"
    )
    assert items.status_code == 200, items.data[:300]
    served = {f["properties"]["unit_key"] for f in items.get_json()["features"]}
    assert served == {r["unit_key"] for r in table if r["indicator"] == "built_share"}
    listed = runner.invoke(main, ["indicators", "list"], env=env)
    assert "green_per_inhabitant" in listed.output
    report = runner.invoke(main, ["indicators", "report", "--out", str(tmp_path / "r2")], env=env)
    assert report.exit_code == 0, report.output


def test_bad_input_is_refused_with_the_place(analysis_engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match="units must be"):
        UnitSpec.parse("hex grid!")
    with pytest.raises(InvalidParameter, match="grid size"):
        UnitSpec.parse("hex:1")
    bad = tmp_path / "pop.csv"
    bad.write_text("UTR,Locuitori\nL1a,100\nM1,many\n")
    dup = tmp_path / "dup.csv"
    dup.write_text("UTR,Locuitori\nL1a,100\nL1a,5\n")
    lines = gpd.GeoDataFrame({"n": [1]}, geometry=[shapely.LineString([(0, 0), (1, 1)])], crs=SRID)
    pyogrio.write_dataframe(lines, tmp_path / "lines.gpkg", driver="GPKG")
    with analysis_engine.connect() as conn, conn.begin() as outer:
        before = conn.execute(sa.text("SELECT count(*) FROM analysis.population")).scalar()
        with pytest.raises(InvalidInput, match=r"row 3: Locuitori"):
            import_population(conn, bad, "utr", 2025, key_field="UTR", population_field="Locuitori")
        with pytest.raises(InvalidInput, match=r"row 3: UTR 'L1a' appears twice"):
            import_population(conn, dup, "utr", 2025, key_field="UTR", population_field="Locuitori")
        with pytest.raises(InvalidInput, match="row 1: a park layer holds points"):
            load_input_file(conn, tmp_path / "lines.gpkg", "park", SRID)
        with pytest.raises(InvalidInput, match="no such file"):
            import_unit_set(conn, tmp_path / "missing.gpkg", "x", SRID)
        with pytest.raises(NotFound, match="unknown units"):
            compute_indicators(conn, ComputeRequest(units="nowhere"), SRID)
        assert conn.execute(sa.text("SELECT count(*) FROM analysis.population")).scalar() == before
        outer.rollback()
