"""The Dask engine gives the PostGIS engine's values on the demo, on a real local cluster.

The demo is exported as a GeoParquet dataset in several parts (so the work is really
split over partitions and worker processes); both engines then compute the same
indicators on a hexagon grid and on the UTRs, and every unit's value must agree.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely
import sqlalchemy as sa
from click.testing import CliRunner
from distributed import LocalCluster
from sqlalchemy.engine import Engine

from gis_core.settings import Settings
from layers.analysis.acts import ActsSource
from layers.indicators.distributed import DaskEngine, dask_client, export_dataset
from layers.indicators.inputs import import_population, load_input_file
from layers.indicators.runs import ComputeRequest, compute_indicators
from tests.test_indicators_support import (  # noqa: F401  (fixtures)
    analysis_engine,
    analysis_settings,
    cli_env,
    current_parcels,
)
from webmap.cli import main

SRID = 3844
COMPARED = (
    "built_density",
    "built_share",
    "avg_parcel_size",
    "flood_share",
    "protected_share",
    "park_access_share",
    "green_per_inhabitant",
    "acts_per_1000",
    "time_to_issue",
)


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """Two worker processes: partitions are pickled and computed elsewhere."""
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as local:
        yield local


def _inputs(conn: sa.Connection, folder: Path) -> ActsSource:
    parcels = current_parcels(conn)
    rng = np.random.default_rng(11)
    picks = rng.choice(len(parcels), size=30, replace=False)
    parks = shapely.point_on_surface(parcels.geometry.to_numpy()[picks])
    import geopandas as gpd

    path = folder / "parks.gpkg"
    pyogrio.write_dataframe(gpd.GeoDataFrame(geometry=parks, crs=SRID), path, driver="GPKG")
    load_input_file(conn, path, "park", SRID, name="dask_parks")
    keys = conn.execute(
        sa.text(
            "SELECT DISTINCT z.utr_code FROM urbanism.zone z JOIN urbanism.plan p "
            "ON p.id = z.plan_id WHERE p.plan_type = 'PUG' ORDER BY 1"
        )
    ).scalars()
    table = folder / "population.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["utr", "people"])
        for index, key in enumerate(keys):
            writer.writerow([key, 500 + 11 * index])
    import_population(conn, table, "utr", 2025, key_field="utr", population_field="people")
    conn.execute(sa.text("CREATE SCHEMA dask_acts"))
    conn.execute(
        sa.text(
            "CREATE TABLE dask_acts.act (id bigint PRIMARY KEY, kind text, issued_on date, "
            "requested_on date, status text)"
        )
    )
    conn.execute(
        sa.text(
            "CREATE TABLE dask_acts.act_parcel "
            "(act_id bigint, parcel_id bigint, is_primary boolean)"
        )
    )
    conn.execute(
        sa.text(
            "INSERT INTO dask_acts.act SELECT g, 'AC', date_trunc('year', now())::date + g % 90, "
            "date_trunc('year', now())::date - g % 50, 'issued' FROM generate_series(1, 60) g"
        )
    )
    conn.execute(
        sa.text(
            "INSERT INTO dask_acts.act_parcel SELECT g, p.id, true FROM generate_series(1, 60) g "
            "JOIN LATERAL (SELECT id FROM cadastre.parcel ORDER BY id OFFSET g * 29 LIMIT 1) p "
            "ON true"
        )
    )
    return ActsSource(schema="dask_acts")


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.slow
def test_dask_engine_matches_postgis(
    analysis_engine: Engine, cluster: LocalCluster, tmp_path: Path
) -> None:
    with analysis_engine.connect() as conn, conn.begin() as outer:
        acts = _inputs(conn, tmp_path)
        counts = export_dataset(conn, tmp_path / "dataset", SRID, chunk=450, acts=acts)
        assert counts["parcels"] == 2000 and counts["acts"] == 60
        assert len(list((tmp_path / "dataset" / "parcels").glob("*.parquet"))) == 5
        with dask_client(cluster.scheduler_address) as client:
            engine = DaskEngine(str(tmp_path / "dataset"), SRID, client)
            for units in ("utr", "hex:750"):
                request = ComputeRequest(indicators=COMPARED, units=units)
                ours = compute_indicators(conn, request, SRID, acts=acts)
                theirs = compute_indicators(
                    conn, request, SRID, acts=acts, engine="dask", partials=engine
                )
                engine = DaskEngine(str(tmp_path / "dataset"), SRID, client)
                for one, other in zip(ours, theirs, strict=True):
                    if units == "hex:750" and one.indicator in (
                        "green_per_inhabitant",
                        "acts_per_1000",
                    ):
                        assert one.skipped and other.skipped  # no population for the grid
                        continue
                    assert one.skipped is None and other.skipped is None, one.indicator
                    assert set(one.values) == set(other.values)
                    bad = [k for k in one.values if not _same(one.values[k], other.values[k])]
                    assert bad == [], (units, one.indicator, bad[:5])
                    assert any(v for v in one.values.values()), (units, one.indicator)
        engines = conn.execute(
            sa.text("SELECT DISTINCT engine FROM analysis.indicator_run")
        ).scalars()
        assert set(engines) == {"postgis", "dask"}
        outer.rollback()


@pytest.mark.slow
def test_cli_runs_the_dask_engine_on_a_local_cluster(
    analysis_engine: Engine, analysis_settings: Settings, tmp_path: Path
) -> None:
    env = cli_env(analysis_settings)
    runner = CliRunner()
    exported = runner.invoke(
        main,
        ["indicators", "dataset", "export", "--out", str(tmp_path / "ds"), "--chunk", "1000"],
        env=env,
    )
    assert exported.exit_code == 0, exported.output
    assert "2000 parcels" in exported.output
    missing = runner.invoke(main, ["indicators", "compute", "--engine", "dask"], env=env)
    assert missing.exit_code == 2 and "--dataset" in missing.output
    done = runner.invoke(
        main,
        [
            "indicators",
            "compute",
            "--engine",
            "dask",
            "--dataset",
            str(tmp_path / "ds"),
            "--indicator",
            "avg_parcel_size",
            "--units",
            "square:2000",
        ],
        env=env,
    )
    assert done.exit_code == 0, done.output
    assert "ind_avg_parcel_size_square_2000" in done.output
