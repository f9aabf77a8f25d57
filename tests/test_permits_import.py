"""Register imports: formats (CSV, XLSX, GeoJSON), bad input named by row and field, atomicity."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import orjson
import pandas as pd
import pyogrio
import pytest
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from gis_core import migrate
from gis_core.db import create_engine
from gis_core.errors import InvalidParameter
from gis_core.settings import Settings
from importers.acts.mapping import parse_map_option
from importers.acts.pipeline import ImportOptions, RegisterRejected, import_register
from permits.linking import link_acts
from tests.conftest import drop_database, fresh_database, settings_for
from tests.test_permits_public import add_parcel

HEADER = (
    "nr_act;data_act;tip;solicitant;adresa_imobil;nr_cadastral;nr_cf;scop;"
    "durata_valabilitate_luni;stare"
)
GOOD = [
    "1/03.01.2024;03.01.2024;CU;Exemplescu Ion;Strada Test nr. 840001;840001;;Vânzare;12;emis",
    "2/05.01.2024;05.01.2024;CU;SC Demo Invest SRL;Strada Test nr. 840002; 840 002;CF nr. 840002;"
    "Alipire;24;emis",
    "1/20.06.2024;20.06.2024;AC;Exemplescu Ion;;840001-C1;;Construire P+1;24;emis",
]


@pytest.fixture(scope="module")
def import_settings(server_url: URL) -> Iterator[Settings]:
    name = f"urbangis_test_permits_import_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    settings = settings_for(fresh_database(server_url, name), 3844)
    engine = create_engine(settings)
    migrate.upgrade(engine, 3844)
    with engine.begin() as conn:
        for index, number in enumerate(("840001", "840002")):
            add_parcel(conn, number, x=394_000 + 40 * index)
        conn.execute(
            sa.text(
                "INSERT INTO cadastre.parcel (uat_siruta, cadastral_number, geom) VALUES (55000, "
                "'850001', ST_Multi(ST_MakeEnvelope(395000, 585000, 395020, 585020, 3844)))"
            )
        )
    engine.dispose()
    yield settings
    drop_database(server_url, name)


@pytest.fixture
def import_engine(import_settings: Settings) -> Iterator[Engine]:
    engine = create_engine(import_settings)
    yield engine
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM permits.act"))
    engine.dispose()


def _csv(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "registru.csv"
    path.write_text("\n".join((HEADER, *rows)) + "\n", encoding="utf-8")
    return path


def _import(engine: Engine, settings: Settings, path: Path, **options: object) -> object:
    mapping = parse_map_option(options.pop("map", None))  # type: ignore[arg-type]
    return import_register(engine, settings, path, ImportOptions(mapping=mapping, **options))  # type: ignore[arg-type]


def _acts(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM permits.act")).scalar_one())


def test_a_good_register_is_imported_with_applicants_protected(
    import_engine: Engine, import_settings: Settings, tmp_path: Path
) -> None:
    report = _import(import_engine, import_settings, _csv(tmp_path, *GOOD), link=True)
    counts = report.count_dict()  # type: ignore[attr-defined]
    assert counts["read"] == 3 and counts["inserted"] == 3
    assert report.details["link"]["by_method"] == {"number": 3}  # type: ignore[attr-defined]
    with import_engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT a.kind, a.number, a.issued_on, a.valid_until, a.source_ref, p.name, p.kind "
                "FROM permits.act a JOIN protected.act_applicant p ON p.act_id = a.id "
                "ORDER BY a.id"
            )
        ).all()
        runs = conn.execute(
            sa.text("SELECT status, counts->>'inserted' FROM core.import_run WHERE kind='permits'")
        ).all()
    assert [(r[0], r[1], str(r[2]), str(r[3]), r[4]) for r in rows] == [
        ("CU", "1", "2024-01-03", "2025-01-02", "row 2"),
        ("CU", "2", "2024-01-05", "2026-01-04", "row 3"),
        ("AC", "1", "2024-06-20", "2026-06-19", "row 4"),
    ]
    assert [r[6] for r in rows] == ["natural", "legal", "natural"]
    assert ("succeeded", "3") in runs


@pytest.mark.parametrize(
    ("row", "where"),
    [
        ("3/07.01.2024;07.13.2024;CU;X;;840001;;scop;12;emis", "row 3, data_act"),
        ("3/07.01.2024;08.01.2024;CU;X;;840001;;scop;12;emis", "row 3, data_act"),
        ("3/7 ian 2024;;CU;X;;840001;;scop;12;emis", "row 3, nr_act"),
        ("x y/07.01.2024;07.01.2024;CU;X;;840001;;scop;12;emis", "row 3, nr_act"),
        ("3/07.01.2024;07.01.2024;CZ;X;;840001;;scop;12;emis", "row 3, tip"),
        ("3/07.01.2024;07.01.2024;CU;X;;840001;;scop;doisprezece;emis", "row 3, durata"),
        ("3/07.01.2024;07.01.2024;CU;X;;840001;;scop;48;emis", "row 3, durata"),
        ("3/07.01.2024;07.01.2024;CU;X;;840001;;scop;12;pierdut", "row 3, stare"),
        ("1/07.01.2024;07.01.2024;CU;X;;840001;;scop;12;emis", "row 3, nr_act"),
        ("3/07.01.2024;07.01.2024;CU;X;;850001;;scop;12;emis", "row 3, nr_cadastral"),
    ],
)
def test_bad_rows_are_named_and_nothing_is_written(
    import_engine: Engine, import_settings: Settings, tmp_path: Path, row: str, where: str
) -> None:
    path = _csv(tmp_path, GOOD[0], row)
    with pytest.raises(RegisterRejected) as caught:
        _import(import_engine, import_settings, path)
    assert where in caught.value.message
    assert caught.value.report.status == "failed"
    assert _acts(import_engine) == 0


def test_duplicates_name_the_first_row(
    import_engine: Engine, import_settings: Settings, tmp_path: Path
) -> None:
    with pytest.raises(RegisterRejected, match=r"row 3, nr_act: CU 1/2024 is already in row 2"):
        _import(import_engine, import_settings, _csv(tmp_path, GOOD[0], GOOD[0]))


def test_mapping_errors_come_before_any_row(
    import_engine: Engine, import_settings: Settings, tmp_path: Path
) -> None:
    path = _csv(tmp_path, *GOOD)
    with pytest.raises(InvalidParameter, match="unknown field 'colour'"):
        _import(import_engine, import_settings, path, map="colour=tip")
    with pytest.raises(InvalidParameter, match="the file has no column 'Nr'"):
        _import(import_engine, import_settings, path, map="number=Nr")
    other = tmp_path / "other.csv"
    other.write_text("a;b\n1;2\n", encoding="utf-8")
    with pytest.raises(InvalidParameter, match="no column gives the act number"):
        _import(import_engine, import_settings, other)
    with pytest.raises(InvalidParameter, match="--kind"):
        _import(import_engine, import_settings, path, kind="XX")


def test_dry_run_counts_and_writes_nothing(
    import_engine: Engine, import_settings: Settings, tmp_path: Path
) -> None:
    report = _import(import_engine, import_settings, _csv(tmp_path, *GOOD), dry_run=True)
    assert report.count_dict()["inserted"] == 3  # type: ignore[attr-defined]
    assert report.status == "dry_run"  # type: ignore[attr-defined]
    assert _acts(import_engine) == 0


def test_a_reimport_updates_changed_rows_and_audits_them(
    import_engine: Engine, import_settings: Settings, tmp_path: Path
) -> None:
    _import(import_engine, import_settings, _csv(tmp_path, *GOOD))
    changed = GOOD[0].replace(";emis", ";anulat")
    report = _import(import_engine, import_settings, _csv(tmp_path, changed, *GOOD[1:]))
    counts = report.count_dict()  # type: ignore[attr-defined]
    assert (counts["inserted"], counts["changed"], counts["unchanged"]) == (0, 1, 2)
    with import_engine.connect() as conn:
        status, version = conn.execute(
            sa.text("SELECT status, version FROM permits.act WHERE source_ref = 'row 2'")
        ).one()
        audit = conn.execute(
            sa.text(
                "SELECT before->>'status', after->>'status' FROM core.audit_log "
                "WHERE table_name = 'permits.act' AND action = 'update'"
            )
        ).all()
    assert (status, version) == ("cancelled", 2)
    assert audit == [("issued", "cancelled")]


def test_xlsx_and_geojson_registers(
    import_engine: Engine, import_settings: Settings, tmp_path: Path
) -> None:
    frame = pd.DataFrame(
        {
            "Numar": ["7", "8"],
            "Data": ["10.02.2024", "11.02.2024"],
            "Nr cadastral": ["840001", "0"],
            "Scop": ["Împrejmuire", "Desființare anexă"],
        }
    )
    xlsx = tmp_path / "registru.xlsx"
    pyogrio.write_dataframe(frame, xlsx, driver="XLSX")
    report = _import(
        import_engine,
        import_settings,
        xlsx,
        kind="CU",
        map="number=Numar,issued_on=Data,cadastral_numbers=Nr cadastral,purpose=Scop",
    )
    assert report.count_dict()["inserted"] == 2  # type: ignore[attr-defined]
    # A GeoJSON register with site points in CRS84: the second act cites nothing usable
    # and is linked by its point (inside imobil 840002), the first by number.
    lon_lat = shapely.points([[394_050.0, 585_010.0], [394_050.0, 585_010.0]])
    sites = gpd.GeoDataFrame(
        {"NrAct": ["31", "32"], "Data": ["2024-04-01", "2024-04-02"], "NC": ["840001", ""]},
        geometry=gpd.GeoSeries(lon_lat, crs=3844).to_crs(4326).values,
        crs=4326,
    )
    path = tmp_path / "acte.geojson"
    sites.to_file(path, driver="GeoJSON")
    report = _import(
        import_engine,
        import_settings,
        path,
        kind="AD",
        map="number=NrAct,issued_on=Data,cadastral_numbers=NC",
    )
    assert report.count_dict()["inserted"] == 2  # type: ignore[attr-defined]
    with import_engine.begin() as conn:
        linked = link_acts(conn, import_settings)
        rows = conn.execute(
            sa.text(
                "SELECT a.number, l.cadastral_number, l.method FROM permits.act a "
                "JOIN permits.act_parcel l ON l.act_id = a.id WHERE a.kind = 'AD' ORDER BY 1"
            )
        ).all()
    assert [tuple(r) for r in rows] == [("31", "840001", "number"), ("32", "840002", "spatial")]
    assert linked.number_location_disagree == 1  # act 31's point lies in 840002
    assert orjson.dumps(linked.as_dict())
