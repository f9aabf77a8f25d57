"""The parcel indexes a big import rebuilds: one B-tree on the cadastral number (the
pattern index, migration 0010), which serves every lookup by number, and not the
partial indexes of keys the file leaves empty."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gis_core.settings import Settings
from importers import direct, merge
from importers.cadastre import CadastreOptions, import_cadastre
from tests.conftest import parcel_free_engine
from tests.test_import_atomic import grid_parcels

# Lookups by cadastral number, in the forms the code runs them (permits.location_sql,
# layers.extract_map, layers.map_parcels, importers.merge, permits.lifecycle).
LOOKUPS = {
    "location check": (
        "SELECT p.id FROM unnest(CAST(:numbers AS text[])) AS q(n) JOIN cadastre.parcel p "
        "ON p.uat_siruta = :uat AND p.cadastral_number = q.n "
        "AND p.valid_to IS NULL AND p.valid_from <= now()"
    ),
    "extract": (
        "SELECT id FROM cadastre.parcel WHERE uat_siruta = :uat "
        "AND cadastral_number = :number AND valid_to IS NULL"
    ),
    "map of parcels": (
        "SELECT id FROM cadastre.parcel WHERE uat_siruta = :uat AND valid_to IS NULL "
        "AND cadastral_number = ANY(CAST(:numbers AS text[]))"
    ),
    "other UAT": (
        "SELECT p.uat_siruta FROM unnest(CAST(:numbers AS text[])) AS n JOIN cadastre.parcel p "
        "ON p.cadastral_number = n AND p.valid_to IS NULL WHERE p.uat_siruta <> :uat"
    ),
    "prefix search": (
        "SELECT id FROM cadastre.parcel WHERE uat_siruta = :uat AND valid_to IS NULL "
        "AND cadastral_number LIKE :prefix"
    ),
}


def _parcel_indexes(db: Connection) -> set[str]:
    return set(
        db.execute(
            sa.text(
                "SELECT indexname FROM pg_indexes WHERE schemaname = 'cadastre' "
                "AND tablename = 'parcel'"
            )
        ).scalars()
    )


def test_parcels_have_one_index_on_the_cadastral_number_and_every_lookup_uses_it(
    db: Connection,
) -> None:
    indexes = _parcel_indexes(db)
    assert "ix_parcel_number_pattern" in indexes
    assert "ix_parcel_number_current" not in indexes
    db.execute(sa.text("SET LOCAL enable_seqscan = off"))  # a small table: force the choice
    params = {"numbers": ["A1", "A2"], "uat": 1, "number": "A1", "prefix": "A1%"}
    for name, query in LOOKUPS.items():
        plan = "\n".join(
            str(line) for line in db.execute(sa.text(f"EXPLAIN {query}"), params).scalars()
        )
        assert "ix_parcel_number_pattern" in plan, f"{name}: {plan}"


@pytest.fixture(scope="module")
def stereo(database_factory: Callable[..., Settings]) -> Settings:
    return database_factory("import_indexes", 3844, uat_siruta=999_995)


@pytest.fixture
def empty(stereo: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """An engine on the module's database with no parcels, where 30 parcels make a big
    first import (loaded straight into the table)."""
    monkeypatch.setattr(merge, "BULK_ROWS", 10)
    with parcel_free_engine(stereo) as engine:
        yield engine


def _index_oids(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT indexrelid::regclass::text, indexrelid::bigint FROM pg_index "
                "WHERE indrelid = CAST('cadastre.parcel' AS regclass)"
            )
        ).all()
    return {str(name): int(oid) for name, oid in rows}


def test_a_big_first_import_keeps_the_partial_indexes_of_keys_the_file_lacks(
    stereo: Settings, empty: Engine, tmp_path: Path
) -> None:
    """The file has no eTerra id or address: their indexes (of the parcels that have
    one) get no entry from the load, so they are neither dropped nor rebuilt."""
    before = _index_oids(empty)
    path = grid_parcels(tmp_path / "sparse.gpkg", 30, prefix="S", size=20.0)
    report = import_cadastre(empty, stereo, [str(path)], CadastreOptions())
    assert any("loaded straight into" in note for note in report.notes)
    after = _index_oids(empty)
    assert set(after) == set(before)
    kept = {name for name in after if after[name] == before[name]}
    assert kept == {
        "cadastre.pk_parcel",
        "cadastre.ix_parcel_address_id",
        "cadastre.ix_parcel_e2_identifier",
    }


def _foreign_keys(conn: Connection) -> dict[str, bool]:
    rows = conn.execute(
        sa.text(
            "SELECT conname, convalidated FROM pg_constraint WHERE contype = 'f' "
            "AND conrelid = CAST('cadastre.parcel' AS regclass)"
        )
    ).all()
    return {str(name): bool(valid) for name, valid in rows}


def test_a_big_first_import_drops_the_keys_of_columns_the_file_leaves_empty(
    stereo: Settings, empty: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The address key gets no value from a file without addresses: it is dropped for
    the load (no per-row check queued for the end of the COPY) and added back, valid."""
    during: list[dict[str, bool]] = []
    real = direct.recreate_indexes

    def recreate(conn: Connection, statements: list[str]) -> None:
        during.append(_foreign_keys(conn))
        real(conn, statements)

    monkeypatch.setattr(direct, "recreate_indexes", recreate)
    with empty.connect() as conn:
        before = _foreign_keys(conn)
    path = grid_parcels(tmp_path / "links.gpkg", 30, prefix="L", size=20.0)
    report = import_cadastre(empty, stereo, [str(path)], CadastreOptions())
    assert report.counts["inserted"] == 30
    with empty.connect() as conn:
        after = _foreign_keys(conn)
    assert "fk_parcel_address_id_address" in before
    assert "fk_parcel_address_id_address" not in during[0]
    assert after == before and all(after.values())
