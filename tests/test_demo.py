"""The demo municipality: deterministic generation, an all-or-nothing load, sample files.

Loads run against a database of their own on the test server (the demo replaces the
whole municipality's data, which other modules' tests must not see).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from click.testing import CliRunner
from lxml import etree
from sqlalchemy.engine import URL, Engine

from gis_core import migrate
from gis_core.bulk import copy_columns, copy_rows
from gis_core.db import create_engine
from gis_core.errors import InvalidInput
from gis_core.search_keys import search_key
from gis_core.settings import Settings
from importers.demo import load as demo_load
from importers.demo.generate import DemoCity, DemoParameters, generate
from importers.demo.load import load_demo
from importers.demo.samples import sample_files
from tests.conftest import drop_database, fresh_database, settings_for, unique_database_name
from webmap.cli import main

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data" / "demo"
SMALL = DemoParameters(parcels=2000, seed=2)
COUNTED = {
    "parcels": "cadastre.parcel",
    "buildings": "cadastre.building",
    "addresses": "cadastre.address",
    "streets": "cadastre.street",
    "zones": "urbanism.zone",
    "regulations": "urbanism.regulation",
    "plans": "urbanism.plan",
    "restrictions": "urbanism.restriction",
}
ALL_TABLES = (
    *COUNTED.values(),
    "cadastre.parcel_use",
    "core.intravilan",
    "core.admin_unit",
    "core.import_run",
)


@pytest.fixture(scope="module")
def demo_settings(server_url: URL) -> Iterator[Settings]:
    """A freshly migrated Stereo 70 database just for this module."""
    name = unique_database_name("demo")
    settings = settings_for(fresh_database(server_url, name), 3844)
    engine = create_engine(settings)
    migrate.upgrade(engine, 3844)
    engine.dispose()
    yield settings
    drop_database(server_url, name)


@pytest.fixture(scope="module")
def demo_engine(demo_settings: Settings) -> Iterator[Engine]:
    engine = create_engine(demo_settings)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def small_demo() -> DemoCity:
    return generate(SMALL)


@pytest.fixture(scope="module")
def default_demo() -> DemoCity:
    return generate(DemoParameters())


@pytest.fixture(scope="module")
def loaded(demo_engine: Engine) -> demo_load.LoadReport:
    """The small demo, loaded once with the index drop-and-rebuild path exercised."""
    return load_demo(demo_engine, SMALL, rebuild_indexes=True)


def _table_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            table: int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
            for table in ALL_TABLES
        }


def _fingerprint(demo: DemoCity) -> list[bytes]:
    """Everything generated, as bytes: geometries as WKB, attributes as their text."""
    parts = [
        b"".join(shapely.to_wkb(demo.parcels.geom)),
        b"".join(shapely.to_wkb(demo.buildings.geom)),
        b"".join(shapely.to_wkb(demo.addresses.geom)),
        b"".join(shapely.to_wkb(demo.plans.zones.geom)),
        b"".join(shapely.to_wkb(demo.streets.geom)),
    ]
    for values in (
        demo.parcels.cadastral_number,
        demo.parcels.land_book_number,
        demo.parcels.e2_identifier,
        demo.parcels.use_category,
        demo.parcels.measured_area,
        demo.parcels.legal_area,
        demo.addresses.full_text,
        demo.buildings.levels,
        demo.buildings.destination,
        np.asarray(demo.plans.zones.utr_code),
    ):
        parts.append("|".join(map(str, values.tolist())).encode())
    return parts


# --- generation -------------------------------------------------------------------


def test_generation_is_deterministic(small_demo: DemoCity) -> None:
    again = generate(SMALL)
    assert _fingerprint(again) == _fingerprint(small_demo)
    other = generate(DemoParameters(parcels=SMALL.parcels, seed=SMALL.seed + 1))
    assert _fingerprint(other)[0] != _fingerprint(small_demo)[0]
    assert list(other.parcels.cadastral_number) != list(small_demo.parcels.cadastral_number)


def test_generated_city_is_plausible(small_demo: DemoCity) -> None:
    parcels, buildings = small_demo.parcels, small_demo.buildings
    assert len(parcels) == SMALL.parcels
    assert shapely.is_valid(parcels.geom).all()
    assert shapely.is_valid(buildings.geom).all()
    assert len(set(parcels.cadastral_number)) == len(parcels)
    assert len(set(parcels.e2_identifier)) == len(parcels)
    outside = (~parcels.intravilan).mean()
    assert 0.03 < outside < 0.07
    assert set(parcels.use_category[~parcels.intravilan]) <= {"A", "F", "P", "L"}
    assert (parcels.use_category[parcels.intravilan] == "CC").mean() > 0.9
    city = small_demo.city
    share = city.intravilan.area / city.boundary.area
    assert 0.55 <= share <= 0.65
    inside = shapely.covered_by(
        buildings.geom, shapely.buffer(parcels.geom[buildings.parcel], 0.001)
    )
    assert inside.all()
    assert set(buildings.destination) <= {"CL", "CAS", "CIE", "CA"}


def test_address_search_keys_match_the_full_text(small_demo: DemoCity) -> None:
    addresses = small_demo.addresses
    for index in range(0, len(addresses), 97):
        assert addresses.search_text[index] == search_key(addresses.full_text[index])
    assert addresses.full_text[0].endswith(", Cluj-Napoca")
    assert len(set(addresses.full_text)) == len(addresses)


# --- loading -------------------------------------------------------------------------


def test_load_writes_a_consistent_city(demo_engine: Engine, loaded: demo_load.LoadReport) -> None:
    counts = _table_counts(demo_engine)
    for name, table in COUNTED.items():
        assert counts[table] == loaded.counts[name], name
    assert loaded.counts["parcels"] == SMALL.parcels
    with demo_engine.connect() as conn:
        scalar = lambda query: conn.execute(sa.text(query)).scalar_one()  # noqa: E731
        for table in (
            "cadastre.parcel",
            "cadastre.building",
            "cadastre.address",
            "urbanism.zone",
            "urbanism.restriction",
            "cadastre.street",
            "core.intravilan",
            "cadastre.parcel_use",
        ):
            assert scalar(f"SELECT count(*) FROM {table} WHERE NOT ST_IsValid(geom)") == 0, table
            assert scalar(f"SELECT count(*) FROM {table} WHERE ST_SRID(geom) <> 3844") == 0, table
        for table in (
            "cadastre.parcel",
            "cadastre.building",
            "cadastre.address",
            "urbanism.zone",
            "urbanism.restriction",
            "core.intravilan",
        ):
            outside = scalar(
                f"SELECT count(*) FROM {table} t, core.admin_unit u WHERE u.siruta = 54975 "
                "AND NOT ST_CoveredBy(t.geom, ST_Buffer(u.geom, 0.05))"
            )
            assert outside == 0, table
        for table in demo_load.TWINNED:
            missing = scalar(
                f"SELECT count(*) FROM {table} WHERE geom IS NOT NULL AND geom_etrs89 IS NULL"
            )
            assert missing == 0, table
        overlaps = scalar(
            "WITH s AS (SELECT id, geom FROM cadastre.parcel ORDER BY id LIMIT 400) "
            "SELECT count(*) FROM s a JOIN cadastre.parcel b ON a.id <> b.id AND a.geom && b.geom "
            "AND ST_Area(ST_Intersection(a.geom, b.geom)) >= 0.01"
        )
        assert overlaps == 0
        assert (
            scalar(
                "SELECT count(*) FROM cadastre.building b JOIN cadastre.parcel p "
                "ON p.cadastral_number = b.cadastral_number AND p.valid_to IS NULL "
                "WHERE NOT ST_CoveredBy(b.geom, ST_Buffer(p.geom, 0.01))"
            )
            == 0
        )
        assert (
            scalar(
                "SELECT count(*) - count(DISTINCT cadastral_number) FROM cadastre.parcel "
                "WHERE valid_to IS NULL"
            )
            == 0
        )
        assert (
            scalar(
                "SELECT count(*) FROM urbanism.regulation r JOIN urbanism.plan p "
                "ON p.id = r.plan_id WHERE p.plan_type = 'PUG'"
            )
            >= 20
        )
        assert scalar("SELECT count(*) FROM urbanism.plan WHERE plan_type = 'PUZ'") == 2
        kinds = set(
            conn.execute(sa.text("SELECT DISTINCT kind FROM urbanism.restriction")).scalars()
        )
        assert {"heritage", "flood", "easement"} <= kinds
        run = conn.execute(
            sa.text("SELECT kind, status, parameters, counts FROM core.import_run")
        ).one()
        assert run.kind == "demo" and run.status == "succeeded"
        assert run.parameters == SMALL.as_dict()
        assert run.counts == loaded.counts
        assert scalar("SELECT count(*) FROM cadastre.parcel WHERE address_id IS NOT NULL") > 0
        assert (
            scalar("SELECT count(*) FROM core.admin_unit WHERE siruta = 54975 AND geom IS NOT NULL")
            == 1
        )


def test_rebuilt_indexes_match_the_migration(
    demo_engine: Engine, loaded: demo_load.LoadReport
) -> None:
    query = sa.text(
        "SELECT indexname FROM pg_indexes WHERE schemaname = 'cadastre' ORDER BY indexname"
    )
    with demo_engine.connect() as conn:
        names = set(conn.execute(query).scalars())
    assert {
        "ix_parcel_geom_geom_etrs89",
        "ix_building_geom_geom_etrs89",
        "ix_address_search",
        "ix_parcel_number_pattern",
        "ix_parcel_use_geom",
    } <= names


def test_loading_again_replaces_the_demo(demo_engine: Engine, loaded: demo_load.LoadReport) -> None:
    before = _table_counts(demo_engine)
    again = load_demo(demo_engine, SMALL)
    assert _table_counts(demo_engine) == before
    assert again.counts == loaded.counts
    skipped = load_demo(demo_engine, SMALL, skip_if_loaded=True)
    assert skipped.skipped and skipped.run_id == again.run_id


def test_failed_load_leaves_the_database_as_it_was(
    demo_engine: Engine, loaded: demo_load.LoadReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _table_counts(demo_engine)

    def broken(*args: object) -> int:
        raise RuntimeError("disk full (simulated)")

    monkeypatch.setattr(demo_load, "_copy_buildings", broken)
    with pytest.raises(RuntimeError, match="simulated"):
        load_demo(demo_engine, DemoParameters(parcels=1200, seed=9))
    assert _table_counts(demo_engine) == before


def test_cli_loads_the_demo(demo_settings: Settings, demo_engine: Engine) -> None:
    runner = CliRunner()
    result = runner.invoke(
        main, ["demo", "load", "--parcels", "1500", "--seed", "3"], obj={"settings": demo_settings}
    )
    assert result.exit_code == 0, result.output
    assert "demo loaded" in result.output
    assert _table_counts(demo_engine)["cadastre.parcel"] == 1500
    repeat = runner.invoke(
        main,
        ["demo", "load", "--parcels", "1500", "--seed", "3", "--skip-if-loaded"],
        obj={"settings": demo_settings},
    )
    assert repeat.exit_code == 0 and "already loaded" in repeat.output


# --- sample files ----------------------------------------------------------------------


def test_committed_samples_are_what_the_generator_writes(default_demo: DemoCity) -> None:
    expected = sample_files(DemoParameters())
    committed = {
        path.relative_to(SAMPLES).as_posix(): path.read_bytes()
        for path in SAMPLES.rglob("*")
        if path.is_file() and path.name != "README.md"
    }
    assert sorted(committed) == sorted(expected)
    for name, content in expected.items():
        assert committed[name] == content, f"data/demo/{name} is stale: run 'urbangis demo files'"


def test_sample_cgxml_describes_default_demo_parcels(default_demo: DemoCity) -> None:
    numbers = set(default_demo.parcels.cadastral_number)
    files = sorted((SAMPLES / "cgxml").glob("*.cgxml"))
    assert len(files) >= 20
    for path in files:
        root = etree.parse(str(path)).getroot()
        land = root.find("Land")
        assert land is not None
        number = land.findtext("CADGENNO") if root.tag == "CGXML" else land.findtext("CADNO")
        assert number in numbers, path.name
        assert root.find("Person") is not None
        ring = [
            (float(p.findtext("Y") or 0), float(p.findtext("X") or 0))
            for p in root.findall("Points")
            if (p.findtext("IMMOVABLEID") or p.findtext("LANDID")) == land.findtext("LANDID")
        ]
        polygon = shapely.Polygon(ring)
        assert polygon.is_valid == (not path.name.startswith("broken")), path.name
    with (SAMPLES / "register_acts.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(io.StringIO(handle.read()), delimiter=";"))
    assert len(rows) == 2000
    assert {row["tip"] for row in rows} == {"CU", "AC", "AD"}
    exact = sum(row["nr_cadastral"] in numbers for row in rows)
    assert 0.6 * len(rows) < exact < 0.9 * len(rows)


# --- the COPY helper -------------------------------------------------------------------


def test_copy_helper_takes_hex_or_bytes_and_floats(demo_engine: Engine) -> None:
    point = shapely.set_srid(shapely.Point(390000.0, 585000.0), 3844)
    with demo_engine.connect() as conn, conn.begin() as transaction:
        conn.execute(
            sa.text("CREATE TEMP TABLE copied (n numeric(8,2), g geometry(Point, 3844), t text[])")
        )
        copy_rows(
            conn,
            "pg_temp.copied",
            ["n", "g", "t"],
            [
                (1.234, shapely.to_wkb(point, include_srid=True), ["a"]),
                (2, shapely.to_wkb(point, include_srid=True, hex=True), []),
            ],
        )
        copy_columns(conn, "pg_temp.copied", {"n": np.asarray([3.5]), "g": [None], "t": [None]})
        rows = conn.execute(sa.text("SELECT n, ST_AsText(g) FROM copied ORDER BY n")).all()
        assert [float(r[0]) for r in rows] == [1.23, 2.0, 3.5]
        assert rows[0][1] == "POINT(390000 585000)"
        with pytest.raises(InvalidInput, match="no column"):
            copy_rows(conn, "pg_temp.copied", ["missing"], [])
        transaction.rollback()
