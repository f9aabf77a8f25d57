"""Zoning with rules per UTR, and restrictions, from the real Cambridge (MA) layers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gis_core.db import create_engine
from gis_core.settings import Settings
from importers.restrictions import RestrictionOptions, import_restrictions
from importers.runner import ImportFailed
from importers.zoning import ZoningOptions, import_zoning

PLAN = "Cambridge Zoning Ordinance 2014"


@pytest.fixture(scope="module")
def cambridge_db(database_factory: Callable[..., Settings]) -> Settings:
    return database_factory("import_zoning", 26986, uat_siruta=25017)


@pytest.fixture(scope="module")
def engine(cambridge_db: Settings) -> Iterator[Engine]:
    engine = create_engine(cambridge_db)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def data(shared_data: Path) -> Path:
    return shared_data / "real" / "cambridge-ma"


def _scalar(engine: Engine, sql: str, **params: object) -> object:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def test_zones_with_rules_joined_by_utr(cambridge_db: Settings, engine: Engine, data: Path) -> None:
    options = ZoningOptions(
        plan_title=PLAN,
        plan_type="PUG",
        hcl="1/03.02.2014",
        rules=data / "zoning_codes_municode.csv",
    )
    report = import_zoning(engine, cambridge_db, str(data / "zoning_districts.geojson"), options)
    assert report.counts["read"] == 261
    assert report.counts["inserted"] == 261
    assert report.details["rules"]["inserted"] == 55  # 56 rows, one without a code
    assert report.finding_counts["rule_without_utr"] == 1
    with engine.connect() as conn:
        plan = conn.execute(
            sa.text(
                "SELECT id, hcl_number, hcl_date, valid_from, geom IS NOT NULL FROM urbanism.plan"
            )
        ).one()
        linked = conn.execute(
            sa.text(
                "SELECT count(*) FILTER (WHERE regulation_id IS NOT NULL), count(*) "
                "FROM urbanism.zone WHERE valid_to IS NULL"
            )
        ).one()
        rule = conn.execute(
            sa.text(
                "SELECT r.name, r.function FROM urbanism.zone z JOIN urbanism.regulation r "
                "ON r.id = z.regulation_id WHERE z.utr_code = 'C-3' LIMIT 1"
            )
        ).one()
    assert plan[1] == "1/03.02.2014" and str(plan[2]) == "2014-02-03" and plan[4]
    unlinked = sum(
        int(f.message.split()[0]) for f in report.findings if f.code == "utr_without_rules"
    )
    assert linked[1] == 261 and linked[0] == 261 - unlinked
    assert rule[0] == "Residence C-3 District"
    again = import_zoning(engine, cambridge_db, str(data / "zoning_districts.geojson"), options)
    assert again.counts["unchanged"] == 261 and again.nothing_changed
    assert again.details["rules"] == {"inserted": 0, "updated": 0, "unchanged": 55}


def test_rules_from_xlsx_with_numbers_checked(
    cambridge_db: Settings, engine: Engine, data: Path, tmp_path: Path
) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["UTR", "POT max", "CUT max", "H max", "Utilizari admise", "Regulament"])
    sheet.append(["C-3", 60, "2,5", 25, "locuire; comerț", "Regim de înălțime P+6"])
    sheet.append(["BA", "abc", 1.5, 12, "locuire", None])
    sheet.append(["OS", 150, 0.1, 8, "", "spațiu verde"])
    path = tmp_path / "rlu.xlsx"
    book.save(path)
    options = ZoningOptions(plan_title="PUZ test rules", plan_type="PUZ", rules=path)
    report = import_zoning(engine, cambridge_db, str(data / "zoning_districts.geojson"), options)
    bad = {(f.feature, f.field) for f in report.findings if f.code == "bad_number"}
    assert bad == {("rlu.xlsx row 3", "POT max"), ("rlu.xlsx row 4", "POT max")}
    with engine.connect() as conn:
        c3 = conn.execute(
            sa.text(
                "SELECT r.pot_max, r.cut_max, r.height_max_m, r.allowed_uses, r.rules_text "
                "FROM urbanism.regulation r JOIN urbanism.plan p ON p.id = r.plan_id "
                "WHERE p.title = 'PUZ test rules' AND r.utr_code = 'C-3'"
            )
        ).one()
    assert (float(c3[0]), float(c3[1]), float(c3[2])) == (60.0, 2.5, 25.0)
    assert c3[3] == ["locuire", "comerț"] and c3[4] == "Regim de înălțime P+6"


def test_restrictions_by_kind_and_replace_mode(
    cambridge_db: Settings, engine: Engine, data: Path
) -> None:
    historic = import_restrictions(
        engine,
        cambridge_db,
        str(data / "historic_districts.geojson"),
        RestrictionOptions(kind="heritage", legal_source="Cambridge Historical Commission"),
    )
    conservation = import_restrictions(
        engine,
        cambridge_db,
        str(data / "neighborhood_conservation_districts.geojson"),
        RestrictionOptions(kind="heritage", legal_source="Neighborhood conservation districts"),
    )
    flood = import_restrictions(
        engine,
        cambridge_db,
        str(data / "fema_floodplain_100yr.geojson"),
        RestrictionOptions(kind="flood", field_map={"name": "fld_zone"}, legal_source="FEMA FIRM"),
    )
    assert (
        historic.counts["inserted"],
        conservation.counts["inserted"],
        flood.counts["inserted"],
    ) == (2, 4, 21)
    names = _scalar(
        engine,
        "SELECT string_agg(name, ',' ORDER BY name) FROM urbanism.restriction "
        "WHERE kind = 'heritage' AND legal_source = 'Cambridge Historical Commission'",
    )
    assert names == "Fort Washington,Old Cambridge"
    # Replace the flood layer with the historic file: only the flood rows of that source close.
    replaced = import_restrictions(
        engine,
        cambridge_db,
        str(data / "historic_districts.geojson"),
        RestrictionOptions(kind="flood", legal_source="FEMA FIRM", mode="replace"),
    )
    assert replaced.counts["closed"] == 21 and replaced.counts["inserted"] == 2
    current = _scalar(
        engine,
        "SELECT count(*) FROM urbanism.restriction WHERE valid_to IS NULL AND kind = 'heritage'",
    )
    assert current == 6
    assert (
        _scalar(engine, "SELECT count(*) FROM urbanism.restriction WHERE valid_to IS NOT NULL")
        == 21
    )


def test_zoning_refuses_a_missing_utr_column(
    cambridge_db: Settings, engine: Engine, data: Path
) -> None:
    before = _scalar(engine, "SELECT count(*) FROM urbanism.zone")
    with pytest.raises(ImportFailed, match="no column for utr_code"):
        import_zoning(
            engine,
            cambridge_db,
            str(data / "historic_districts.geojson"),
            ZoningOptions(plan_title="no codes", plan_type="PUZ"),
        )
    assert _scalar(engine, "SELECT count(*) FROM urbanism.zone") == before
    assert _scalar(engine, "SELECT count(*) FROM urbanism.plan WHERE title = 'no codes'") == 0
