"""The bulk paths of the vector import: overlaps found by coverage validation in tiles
(none missed at a tile border, none below the tolerance), and a bulk first import that
drops the version constraint and indexes and gets them back, also when it fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyogrio
import pytest
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gis_core.db import create_engine
from gis_core.errors import InvalidInput
from gis_core.settings import Settings
from importers import checks, merge
from importers.cadastre import CadastreOptions, import_cadastre
from importers.runner import ImportFailed
from tests.test_import_atomic import grid_parcels

SIZE = 20.0


@pytest.fixture(scope="module")
def stereo(database_factory: Callable[..., Settings]) -> Settings:
    return database_factory("import_bulk", 3844, uat_siruta=999_997)


@pytest.fixture(scope="module")
def engine(stereo: Settings) -> Iterator[Engine]:
    engine = create_engine(stereo)
    yield engine
    engine.dispose()


@pytest.fixture
def empty(engine: Engine) -> Iterator[Engine]:
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE cadastre.parcel_use, cadastre.parcel CASCADE"))
    yield engine


def _schema(engine: Engine) -> tuple[list[str], list[str]]:
    """The parcel table's index and exclusion-constraint definitions."""
    with engine.connect() as conn:
        indexes = conn.execute(
            sa.text(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = 'cadastre' "
                "AND tablename = 'parcel' ORDER BY indexdef"
            )
        ).scalars()
        constraints = conn.execute(
            sa.text(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = 'cadastre.parcel'::regclass AND contype = 'x'"
            )
        ).scalars()
        return list(indexes), list(constraints)


def test_overlaps_are_found_across_tiles_above_the_tolerance(
    stereo: Settings, empty: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checks, "TILE_FEATURES", 4)  # 36 parcels → 3 × 3 tiles
    path = grid_parcels(tmp_path / "overlaps.gpkg", 36, prefix="O", size=SIZE)
    frame = pyogrio.read_dataframe(path)
    # 7 pushed 5 m into its neighbour 8 (100 m²); 20 redrawn inside 21 (25 m²);
    # 13 pushed 2 cm into 14 (0.4 m², below the 1 m² tolerance).
    frame.loc[7, "geometry"] = shapely.affinity.translate(frame.loc[7, "geometry"], 5.0, 0.0)
    x0, y0, _, _ = frame.loc[21, "geometry"].bounds
    frame.loc[20, "geometry"] = shapely.box(x0 + 5, y0 + 5, x0 + 10, y0 + 10)
    frame.loc[20, "SUPRAFATA"] = 25.0
    frame.loc[13, "geometry"] = shapely.affinity.translate(frame.loc[13, "geometry"], 0.02, 0.0)
    pyogrio.write_dataframe(frame, path, layer="parcels")
    report = import_cadastre(empty, stereo, [str(path)], CadastreOptions())
    overlaps = sorted(f"{f.feature} | {f.message}" for f in report.findings if f.code == "overlap")
    assert len(overlaps) == 2, overlaps
    assert "cadastral number O400007" in overlaps[0] and "O400008" in overlaps[0]
    assert "100.00 m²" in overlaps[0]
    assert "cadastral number O400020" in overlaps[1] and "O400021" in overlaps[1]
    assert "25.00 m²" in overlaps[1]
    assert report.counts["inserted"] == 36


def test_a_clean_coverage_has_no_suspects(
    stereo: Settings, empty: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suspects: list[list[int]] = []
    real = checks.coverage_suspects

    def spy(conn: Any, target: Any) -> list[int]:
        suspects.append(real(conn, target))
        return suspects[-1]

    monkeypatch.setattr(checks, "coverage_suspects", spy)
    path = grid_parcels(tmp_path / "clean.gpkg", 25, prefix="C", size=SIZE)
    report = import_cadastre(empty, stereo, [str(path)], CadastreOptions())
    assert suspects == [[]]
    assert report.finding_counts["overlap"] == 0


def test_a_bulk_first_import_rebuilds_the_constraint_and_indexes(
    stereo: Settings, empty: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(merge, "BULK_ROWS", 10)
    monkeypatch.setattr(merge, "EXCLUSION_REBUILD_ROWS", 20)
    before = _schema(empty)
    assert before[1], "the parcel table has its version exclusion constraint"
    dropped: list[list[str]] = []
    real_drop = merge.drop_secondary_indexes

    def watch(conn: Any, tables: Any, *, exclusions: bool = True) -> list[str]:
        dropped.append(real_drop(conn, tables, exclusions=exclusions))
        return dropped[-1]

    monkeypatch.setattr(merge, "drop_secondary_indexes", watch)
    path = grid_parcels(tmp_path / "bulk.gpkg", 30, prefix="B", size=SIZE)
    report = import_cadastre(empty, stereo, [str(path)], CadastreOptions())
    assert report.counts["inserted"] == 30
    assert any("EXCLUDE" in statement for statement in dropped[0])
    assert _schema(empty) == before
    again = import_cadastre(empty, stereo, [str(path)], CadastreOptions())
    assert again.counts["unchanged"] == 30 and again.counts["inserted"] == 0
    with empty.connect() as conn, pytest.raises(sa.exc.IntegrityError, match="ex_parcel"):
        conn.execute(
            sa.text(
                "INSERT INTO cadastre.parcel (uat_siruta, cadastral_number, valid_from) "
                "SELECT uat_siruta, cadastral_number, valid_from + interval '1 second' "
                "FROM cadastre.parcel LIMIT 1"
            )
        )


def test_a_failed_bulk_first_import_leaves_the_constraint_in_place(
    stereo: Settings, empty: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(merge, "BULK_ROWS", 10)
    monkeypatch.setattr(merge, "EXCLUSION_REBUILD_ROWS", 20)
    before = _schema(empty)
    real_insert = merge._insert_versions

    def insert_then_fail(*args: Any) -> None:
        real_insert(*args)
        raise InvalidInput("disk full (simulated after the insert)")

    monkeypatch.setattr(merge, "_insert_versions", insert_then_fail)
    path = grid_parcels(tmp_path / "failing.gpkg", 30, prefix="F", size=SIZE)
    with pytest.raises(ImportFailed, match="simulated"):
        import_cadastre(empty, stereo, [str(path)], CadastreOptions())
    assert _schema(empty) == before
    with empty.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM cadastre.parcel")).scalar_one() == 0
