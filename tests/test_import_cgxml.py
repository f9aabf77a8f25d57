"""CGXML imports: the demo's files, authored good and bad fixtures, versions, persons.

Runs against a Stereo 70 database of its own whose UAT boundary (Cluj-Napoca, from
OpenStreetMap) is loaded, so axis orders and "outside the UAT" can be decided.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from gis_core.crs import transform_geometries
from gis_core.db import create_engine
from gis_core.errors import InvalidInput
from gis_core.settings import Settings
from importers.cadastre import CadastreOptions, import_cadastre
from importers.demo.generate import DemoParameters, generate
from importers.readers.cgxml import read_document
from importers.runner import ImportFailed
from webmap.cli import main

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "import"
DEMO_CGXML = REPO / "data" / "demo" / "cgxml"
BOUNDARY = REPO / "importers" / "demo" / "cluj-napoca_boundary.geo.json"
COUNTED = (
    "cadastre.parcel",
    "cadastre.building",
    "cadastre.parcel_use",
    "protected.person",
    "protected.parcel_owner",
    "core.import_run",
)


@pytest.fixture(scope="module")
def cluj(database_factory: Callable[..., Settings]) -> Settings:
    settings = database_factory("import_cgxml", 3844)
    engine = create_engine(settings)
    data = json.loads(BOUNDARY.read_text())
    geometry = shapely.from_geojson(json.dumps(data))
    polygons = [
        g for g in shapely.get_parts(geometry) if g.geom_type in ("Polygon", "MultiPolygon")
    ]
    boundary = transform_geometries(np.asarray([shapely.union_all(polygons)], object), 4326, 3844)[
        0
    ]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO core.admin_unit (siruta, name, level, geom) VALUES "
                "(54975, 'Cluj-Napoca', 'uat', ST_Multi(ST_GeomFromWKB(:wkb, 3844)))"
            ),
            {"wkb": shapely.to_wkb(boundary)},
        )
    engine.dispose()
    return settings


@pytest.fixture(scope="module")
def engine(cluj: Settings) -> Iterator[Engine]:
    engine = create_engine(cluj)
    yield engine
    engine.dispose()


@pytest.fixture
def clean(engine: Engine) -> Iterator[None]:
    """Each test starts from an empty cadastre."""
    _wipe(engine)
    yield
    _wipe(engine)


def _wipe(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "TRUNCATE cadastre.parcel_use, protected.parcel_owner, protected.person, "
                "cadastre.building, cadastre.parcel, core.import_run CASCADE"
            )
        )


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t: int(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in COUNTED
        }


def _import(settings: Settings, engine: Engine, *paths: Path, **options: object):  # type: ignore[no-untyped-def]
    return import_cadastre(engine, settings, [str(p) for p in paths], CadastreOptions(**options))  # type: ignore[arg-type]


def _cli(settings: Settings, *args: str) -> tuple[int, str]:
    runner = CliRunner()
    result = runner.invoke(main, list(args), obj={"settings": settings}, catch_exceptions=False)
    return result.exit_code, result.output


def test_demo_files_match_the_demo_parcels(cluj: Settings, engine: Engine, clean: None) -> None:
    files = sorted(p for p in DEMO_CGXML.glob("*.cgxml") if "broken" not in p.name)
    report = _import(cluj, engine, *files)
    assert report.counts["read"] == 22
    assert report.counts["inserted"] == 22
    assert report.counts["rejected"] == 0
    demo = generate(DemoParameters())
    index = {str(n): i for i, n in enumerate(demo.parcels.cadastral_number)}
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT cadastral_number, e2_identifier, measured_area, legal_area, use_category, "
                "intravilan, address_text, ST_AsBinary(geom), geom_etrs89 IS NOT NULL "
                "FROM cadastre.parcel"
            )
        ).all()
        buildings = conn.execute(
            sa.text("SELECT cadastral_number, count(*) FROM cadastre.building GROUP BY 1")
        ).all()
    assert len(rows) == 22
    for number, e2, measured, legal, use, intravilan, address, wkb, has_twin in rows:
        i = index[number]
        assert e2 == demo.parcels.e2_identifier[i]
        assert float(measured) == pytest.approx(demo.parcels.measured_area[i], abs=0.005)
        assert float(legal) == pytest.approx(demo.parcels.legal_area[i], abs=0.005)
        assert use == demo.parcels.use_category[i]
        assert intravilan == bool(demo.parcels.intravilan[i])
        assert address == demo.parcels.address_text[i]
        geom = shapely.from_wkb(bytes(wkb))
        assert shapely.hausdorff_distance(geom, demo.parcels.geom[i]) < 0.001
        assert has_twin
    for number, count in buildings:
        assert count == int((demo.buildings.parcel == index[number]).sum())


def test_cp_variant_and_zip(cluj: Settings, engine: Engine, clean: None, tmp_path: Path) -> None:
    import zipfile

    archive = tmp_path / "delivery.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.write(FIXTURES / "cp_variant.cgxml", "lot/cp_variant.cgxml")
        bundle.write(FIXTURES / "valid_imobil.cgxml", "lot/valid_imobil.cgxml")
    report = _import(cluj, engine, archive)
    assert report.counts["inserted"] == 2
    with engine.connect() as conn:
        cp = conn.execute(
            sa.text(
                "SELECT e2_identifier, measured_area, ST_Area(geom) FROM cadastre.parcel "
                "WHERE cadastral_number = '300002'"
            )
        ).one()
    assert cp[0] == "9000002"
    assert float(cp[1]) == 600.0
    assert cp[2] == pytest.approx(600.0)


def test_reimport_changes_nothing_and_a_new_version_closes_the_old(
    cluj: Settings, engine: Engine, clean: None
) -> None:
    first = _import(cluj, engine, FIXTURES / "valid_imobil.cgxml")
    assert (first.counts["inserted"], first.details["buildings"]["inserted"]) == (1, 1)
    before = _counts(engine)
    again = _import(cluj, engine, FIXTURES / "valid_imobil.cgxml")
    assert again.counts["unchanged"] == 1
    assert again.nothing_changed
    assert any("nothing changed" in line for line in again.summary_lines())
    after = _counts(engine)
    assert {k: v for k, v in after.items() if k != "core.import_run"} == {
        k: v for k, v in before.items() if k != "core.import_run"
    }
    with engine.connect() as conn:
        first_time = conn.execute(sa.text("SELECT now()")).scalar_one()
    newer = _import(cluj, engine, FIXTURES / "valid_imobil_v2.cgxml")
    assert newer.counts["changed"] == 1
    assert newer.details["buildings"]["closed"] == 1  # the building is gone in v2
    with engine.connect() as conn:
        versions = conn.execute(
            sa.text(
                "SELECT ST_Area(geom), valid_to IS NULL FROM cadastre.parcel "
                "WHERE cadastral_number = '300001' ORDER BY valid_from"
            )
        ).all()
        as_of = conn.execute(
            sa.text(
                "SELECT ST_Area(geom) FROM cadastre.parcel WHERE cadastral_number = '300001' "
                "AND valid_from <= :t AND (valid_to IS NULL OR valid_to > :t)"
            ),
            {"t": first_time},
        ).scalar_one()
        current_building = conn.execute(
            sa.text("SELECT count(*) FROM cadastre.building WHERE valid_to IS NULL")
        ).scalar_one()
    assert [(round(a), current) for a, current in versions] == [(900, False), (1050, True)]
    assert round(as_of) == 900
    assert current_building == 0


def test_e2_identifier_recognises_a_renumbered_imobil(
    cluj: Settings, engine: Engine, clean: None
) -> None:
    _import(cluj, engine, FIXTURES / "valid_imobil_v2.cgxml")
    report = _import(cluj, engine, FIXTURES / "renumbered_imobil.cgxml")
    assert report.counts["changed"] == 1 and report.counts["inserted"] == 0
    with engine.connect() as conn:
        current = (
            conn.execute(
                sa.text("SELECT cadastral_number FROM cadastre.parcel WHERE valid_to IS NULL")
            )
            .scalars()
            .all()
        )
    assert current == ["300099"]


def test_persons_only_with_the_flag_and_only_in_protected_tables(
    cluj: Settings, engine: Engine, clean: None
) -> None:
    _import(cluj, engine, FIXTURES / "valid_imobil.cgxml")
    assert _counts(engine)["protected.person"] == 0
    with engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT row_to_json(p)::text FROM cadastre.parcel p")
        ).scalar_one()
    assert "Fixturescu" not in stored and "1800101120007" not in stored
    report = _import(cluj, engine, FIXTURES / "valid_imobil.cgxml", with_persons=True)
    assert report.details["owners"] == 1
    with engine.connect() as conn:
        person = conn.execute(sa.text("SELECT name, national_id FROM protected.person")).one()
    assert person == ("Fixturescu Ion", "1800101120007")


def test_address_kept_as_written_and_linked_by_search_key(
    cluj: Settings, engine: Engine, clean: None
) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO cadastre.address (uat_siruta, street_name, number, full_text, "
                "search_text) VALUES (54975, 'Ștefan cel Mare', '7', "
                "'Strada Ștefan cel Mare nr. 7, Cluj-Napoca', 'str stefan cel mare 7 cluj-napoca')"
            )
        )
    try:
        _import(cluj, engine, FIXTURES / "valid_imobil.cgxml")
        with engine.connect() as conn:
            text, linked = conn.execute(
                sa.text(
                    "SELECT p.address_text, a.full_text FROM cadastre.parcel p "
                    "JOIN cadastre.address a ON a.id = p.address_id"
                )
            ).one()
        assert text == "Strada Ştefan cel Mare nr. 7, Cluj-Napoca"  # cedilla, as written
        assert linked.startswith("Strada Ștefan")  # comma-below in the gazetteer
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE cadastre.parcel SET address_id = NULL"))
            conn.execute(sa.text("DELETE FROM cadastre.address"))


def test_swapped_axes_are_read_and_reported(cluj: Settings, engine: Engine, clean: None) -> None:
    report = _import(cluj, engine, FIXTURES / "swapped_axes.cgxml")
    assert report.counts["inserted"] == 1
    assert report.finding_counts["axes_swapped"] == 1
    with engine.connect() as conn:
        area = conn.execute(sa.text("SELECT ST_Area(geom) FROM cadastre.parcel")).scalar_one()
    assert area == pytest.approx(900.0)
    code, output = _cli(
        cluj, "import", "cadastre", "--strict", str(FIXTURES / "swapped_axes.cgxml")
    )
    assert code != 0 and "axes_swapped" in output


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("unclosed_ring.cgxml", "a ring needs at least 3"),
        ("missing_points.cgxml", "no Points rows"),
        ("bad_number.cgxml", "field Y: '392l30.000' is not a number"),
        ("mixed_axes.cgxml", "fields X/Y"),
        ("xxe.cgxml", "declares a DTD"),
        ("billion_laughs.cgxml", "declares a DTD"),
    ],
)
def test_bad_files_fail_and_leave_the_database_unchanged(
    cluj: Settings, engine: Engine, clean: None, name: str, expected: str
) -> None:
    _import(cluj, engine, FIXTURES / "cp_variant.cgxml")
    before = _counts(engine)
    code, output = _cli(
        cluj, "import", "cadastre", str(FIXTURES / "cp_variant.cgxml"), str(FIXTURES / name)
    )
    assert code != 0
    assert name in output and expected in output
    after = _counts(engine)
    assert after["core.import_run"] == before["core.import_run"] + 1  # the failed attempt
    assert {k: v for k, v in after.items() if k != "core.import_run"} == {
        k: v for k, v in before.items() if k != "core.import_run"
    }


def test_self_crossing_ring_that_repair_cannot_save_is_refused(
    cluj: Settings, engine: Engine, clean: None
) -> None:
    with pytest.raises(ImportFailed, match="crosses itself"):
        _import(cluj, engine, DEMO_CGXML / "broken_selfintersection.cgxml")
    assert _counts(engine)["cadastre.parcel"] == 0


def test_entities_are_never_expanded() -> None:
    with pytest.raises(InvalidInput, match="DTD"):
        read_document("xxe", FIXTURES / "xxe.cgxml", None)


def test_dry_run_reports_and_writes_nothing(cluj: Settings, engine: Engine, clean: None) -> None:
    code, output = _cli(
        cluj, "import", "cadastre", "--dry-run", str(FIXTURES / "valid_imobil.cgxml")
    )
    assert code == 0
    assert "dry run" in output and "inserted 1" in output
    assert _counts(engine) == dict.fromkeys(COUNTED, 0)


def test_runs_are_listed_and_shown(
    cluj: Settings, engine: Engine, clean: None, tmp_path: Path
) -> None:
    report_file = tmp_path / "report.json"
    code, output = _cli(
        cluj,
        "import",
        "cadastre",
        "--report",
        str(report_file),
        str(FIXTURES / "valid_imobil.cgxml"),
    )
    assert code == 0, output
    saved = json.loads(report_file.read_text())
    assert saved["counts"]["inserted"] == 1 and saved["status"] == "succeeded"
    code, listing = _cli(cluj, "import", "runs")
    assert code == 0 and f"{saved['run_id']:>6}  cadastre.parcels" in listing
    code, shown = _cli(cluj, "import", "show", str(saved["run_id"]))
    assert code == 0 and "inserted 1" in shown and "succeeded" in shown
    code, _ = _cli(cluj, "import", "show", "999999")
    assert code != 0


def test_layer_versions_move_only_when_data_changes(
    cluj: Settings, engine: Engine, clean: None
) -> None:
    def version() -> int:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.text(
                        "SELECT version FROM core.data_version WHERE table_name = 'cadastre.parcel'"
                    )
                ).scalar_one()
            )

    start = version()
    _import(cluj, engine, FIXTURES / "valid_imobil.cgxml")
    after_insert = version()
    assert after_insert > start
    _import(cluj, engine, FIXTURES / "valid_imobil.cgxml")
    assert version() == after_insert  # nothing changed: caches stay valid
    _import(cluj, engine, FIXTURES / "valid_imobil_v2.cgxml")
    assert version() > after_insert
