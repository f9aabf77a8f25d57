"""The schema, as the migrations build it, in the default and in a foreign storage CRS."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gis_core import migrate
from gis_core.errors import DatabaseError
from gis_core.settings import Settings

VERSIONED = ("cadastre.parcel", "cadastre.building", "urbanism.zone", "urbanism.restriction")
STORAGE_GEOMETRIES = {
    ("core", "admin_unit"),
    ("core", "intravilan"),
    ("cadastre", "street"),
    ("cadastre", "address"),
    ("cadastre", "parcel"),
    ("cadastre", "parcel_use"),
    ("cadastre", "building"),
    ("urbanism", "plan"),
    ("urbanism", "zone"),
    ("urbanism", "restriction"),
}


@contextmanager
def scratch_database(server_url: sa.URL, label: str) -> Iterator[Engine]:
    """An engine on a database of the test's own (no migration run), dropped after."""
    from gis_core.db import create_engine
    from tests.conftest import drop_database, fresh_database, settings_for

    name = f"urbangis_test_{label}_{os.getpid()}"
    engine = create_engine(settings_for(fresh_database(server_url, name), 3844))
    try:
        yield engine
    finally:
        engine.dispose()
        drop_database(server_url, name)


def _geometry_srids(conn: Connection) -> dict[tuple[str, str, str], int]:
    rows = conn.execute(
        sa.text(
            "SELECT f_table_schema, f_table_name, f_geometry_column, srid FROM geometry_columns "
            "WHERE f_table_schema IN ('core', 'cadastre', 'urbanism', 'protected')"
        )
    )
    return {(r[0], r[1], r[2]): r[3] for r in rows}


@pytest.mark.parametrize(("fixture", "srid"), [("engine", 3844), ("engine_26986", 26986)])
def test_geometries_carry_the_storage_srid_and_twins_etrs89(
    request: pytest.FixtureRequest, fixture: str, srid: int
) -> None:
    engine: Engine = request.getfixturevalue(fixture)
    with engine.connect() as conn:
        srids = _geometry_srids(conn)
        assert migrate.current_revision(conn) == migrate.head_revision()
        assert migrate.recorded_storage_srid(conn) == srid
    for schema, table in STORAGE_GEOMETRIES:
        assert srids[(schema, table, "geom")] == srid
    twins = {key: value for key, value in srids.items() if key[2] == "geom_etrs89"}
    assert twins and set(twins.values()) == {4258}


# Each geometry column and the GiST indexes whose keys include it.
GIST_KEYS = """
    SELECT g.f_table_schema || '.' || g.f_table_name || '.' || g.f_geometry_column,
           array_agg(
               (SELECT array_agg(a.attname::text ORDER BY k.n)
                FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
                JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum)
           ) FILTER (WHERE i.indexrelid IS NOT NULL)
    FROM geometry_columns g
    JOIN pg_class c ON c.relname = g.f_table_name
    JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = g.f_table_schema
    LEFT JOIN pg_index i ON i.indrelid = c.oid
        AND (SELECT amname FROM pg_am WHERE oid = (
             SELECT relam FROM pg_class WHERE oid = i.indexrelid)) = 'gist'
        AND (SELECT attnum FROM pg_attribute WHERE attrelid = c.oid
             AND attname = g.f_geometry_column) = ANY(i.indkey)
    WHERE g.f_table_schema IN ('core', 'cadastre', 'urbanism', 'analysis', 'permits')
    GROUP BY 1
"""


def test_every_geometry_column_has_a_gist_index(db: Connection) -> None:
    indexed = {str(column): keys for column, keys in db.execute(sa.text(GIST_KEYS)).all()}
    assert len(indexed) > 20
    assert [column for column, keys in indexed.items() if not keys] == []


def test_a_twin_shares_its_geometry_s_gist_index(db: Connection) -> None:
    """Twins are the second key of their geometry's index (migration 0011), in every
    table; no twin or twinned geometry keeps a single-column GiST index of its own."""
    indexed = {str(column): keys for column, keys in db.execute(sa.text(GIST_KEYS)).all()}
    twins = [column for column in indexed if column.endswith("_etrs89")]
    assert len(twins) == 12
    for twin in twins:
        table, column = twin.rsplit(".", 1)
        geometry = column.removesuffix("_etrs89")
        assert indexed[twin] == [[geometry, column]], twin
        assert indexed[f"{table}.{geometry}"] == [[geometry, column]], twin


@pytest.mark.parametrize(
    ("table", "column", "probe"),
    [
        ("cadastre.parcel", "geom_etrs89", "ST_MakeEnvelope(23.5, 46.7, 23.6, 46.8, 4258)"),
        ("cadastre.parcel", "geom", "ST_MakeEnvelope(390000, 580000, 391000, 581000, 3844)"),
        ("permits.act", "location_etrs89", "ST_MakeEnvelope(23.5, 46.7, 23.6, 46.8, 4258)"),
    ],
)
def test_either_key_of_the_shared_index_is_searched_through_it(
    db: Connection, table: str, column: str, probe: str
) -> None:
    """A query on the twin alone, or on the geometry alone, is an index search (the
    sequential scan is priced out so that an empty table's plan shows the choice)."""
    db.execute(sa.text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(
        db.execute(sa.text(f"EXPLAIN SELECT 1 FROM {table} WHERE {column} && {probe}")).scalars()
    )
    name = table.split(".")[1]
    assert "Index" in plan and f"ix_{name}_" in plan and "Seq Scan" not in plan, plan


@pytest.mark.parametrize("table", VERSIONED)
def test_versioned_tables_have_periods_and_import_runs(db: Connection, table: str) -> None:
    schema, name = table.split(".")
    columns = set(
        db.execute(
            sa.text(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = :s AND table_name = :t"
            ),
            {"s": schema, "t": name},
        ).scalars()
    )
    assert {"valid_from", "valid_to", "import_run_id", "geom", "geom_etrs89"} <= columns


def _insert_parcel(db: Connection, number: str, start: str, end: str | None) -> None:
    db.execute(
        sa.text(
            "INSERT INTO cadastre.parcel "
            "(uat_siruta, cadastral_number, valid_from, valid_to, geom) "
            "VALUES (54975, :n, :f, :t, ST_Multi(ST_GeomFromText("
            "'POLYGON((390000 585000, 390020 585000, 390020 585020, 390000 585000))', 3844)))"
        ),
        {"n": number, "f": start, "t": end},
    )


def test_parcel_versions_of_one_number_cannot_overlap(db: Connection) -> None:
    _insert_parcel(db, "250001", "2020-01-01", "2023-05-01")
    _insert_parcel(db, "250001", "2023-05-01", None)  # the next version: allowed
    nested = db.begin_nested()
    with pytest.raises(sa.exc.IntegrityError, match="ex_parcel_versions"):
        _insert_parcel(db, "250001", "2022-01-01", None)
    nested.rollback()
    as_of = db.execute(
        sa.text(
            "SELECT valid_from::date::text FROM cadastre.parcel WHERE cadastral_number = '250001' "
            "AND tstzrange(valid_from, valid_to) @> '2021-06-30'::timestamptz"
        )
    ).scalar_one()
    assert as_of == "2020-01-01"


def test_wrong_srid_geometry_is_refused(db: Connection) -> None:
    with pytest.raises(sa.exc.DataError):
        db.execute(
            sa.text(
                "INSERT INTO cadastre.parcel (uat_siruta, cadastral_number, geom) VALUES "
                "(54975, '1', ST_Multi(ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))', 4326)))"
            )
        )


def test_personal_data_lives_in_its_own_schema(db: Connection) -> None:
    public_columns = (
        db.execute(
            sa.text(
                "SELECT table_schema || '.' || table_name || '.' || column_name "
                "FROM information_schema.columns "
                "WHERE table_schema IN ('core', 'cadastre', 'urbanism') "
                "AND column_name ~ '(national_id|cnp|phone|email|owner|applicant)'"
            )
        )
        .scalars()
        .all()
    )
    assert public_columns == []
    protected = set(
        db.execute(
            sa.text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'protected'"
            )
        ).scalars()
    )
    assert {"person", "parcel_owner"} <= protected


def test_upgrade_refuses_a_different_storage_srid(engine: Engine) -> None:
    with pytest.raises(DatabaseError, match="EPSG:3844"):
        migrate.upgrade(engine, 26986)


def test_upgrade_is_idempotent(engine: Engine, settings: Settings) -> None:
    assert migrate.upgrade(engine, settings.storage_srid) == migrate.head_revision()


def test_downgrade_then_upgrade_round_trip(server_url: sa.URL) -> None:
    with scratch_database(server_url, "roundtrip") as engine:
        migrate.upgrade(engine, 3844)
        assert migrate.downgrade(engine, 3844, "base") is None
        assert migrate.upgrade(engine, 3844) == migrate.head_revision()


def test_shared_twin_indexes_downgrade_to_one_index_a_column(server_url: sa.URL) -> None:
    """0011 back to 0010 gives every geometry and twin its own GiST index again."""
    with scratch_database(server_url, "twin_index") as engine:
        migrate.upgrade(engine, 3844)
        migrate.downgrade(engine, 3844, "0010_parcel_number_index")
        with engine.connect() as conn:
            indexed = {str(c): keys for c, keys in conn.execute(sa.text(GIST_KEYS)).all()}
        assert indexed["cadastre.parcel.geom_etrs89"] == [["geom_etrs89"]]
        assert indexed["permits.act.location"] == [["location"]]
        assert all(len(keys) == 1 and len(keys[0]) == 1 for keys in indexed.values())
        migrate.upgrade(engine, 3844)
        with engine.connect() as conn:
            indexed = {str(c): keys for c, keys in conn.execute(sa.text(GIST_KEYS)).all()}
        assert indexed["cadastre.parcel.geom_etrs89"] == [["geom", "geom_etrs89"]]


def test_act_twins_migration_fills_stored_acts_and_downgrades(server_url: sa.URL) -> None:
    """0006: twins for acts already stored (TransDatRO), a trigger against stale twins,
    and a clean way back to 0005 that keeps the acts' own geometries."""
    import numpy as np
    import shapely

    from gis_core.crs.transform import transform_geometries

    point = "POINT(391010 586010)"
    square = "MULTIPOLYGON(((391000 586000, 391030 586000, 391030 586025, 391000 586000)))"
    twins = ("location_etrs89", "footprint_etrs89", "geom_etrs89")
    with scratch_database(server_url, "act_twins_mig") as engine:
        assert migrate.upgrade(engine, 3844, "0005_indicators") == "0005_indicators"
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO permits.act (uat_siruta, kind, number, register_key, location, "
                    "footprint, geom) VALUES (54975, 'CU', '1', '1/2024', "
                    "ST_GeomFromText(:p, 3844), ST_GeomFromText(:s, 3844), "
                    "ST_GeomFromText(:s, 3844))"
                ),
                {"p": point, "s": square},
            )
        assert migrate.upgrade(engine, 3844, "0006_act_twins") == "0006_act_twins"
        with engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT ST_AsBinary(location_etrs89), ST_AsBinary(footprint_etrs89), "
                    "ST_AsBinary(geom_etrs89), ST_SRID(location_etrs89) FROM permits.act"
                )
            ).one()
            indexed = set(
                conn.execute(
                    sa.text("SELECT indexname FROM pg_indexes WHERE tablename = 'act'")
                ).scalars()
            )
            trigger = conn.execute(
                sa.text("SELECT count(*) FROM pg_trigger WHERE tgname = 'tr_act_stale_twins'")
            ).scalar_one()
        assert row[3] == 4258
        expected = transform_geometries(
            np.array([shapely.from_wkt(point), shapely.from_wkt(square)], dtype=object), 3844, 4258
        )
        assert shapely.equals_exact(shapely.from_wkb(bytes(row[0])), expected[0], 1e-9)
        assert shapely.equals_exact(shapely.from_wkb(bytes(row[1])), expected[1], 1e-9)
        assert shapely.equals_exact(shapely.from_wkb(bytes(row[2])), expected[1], 1e-9)
        assert {f"ix_act_{twin}" for twin in twins} <= indexed
        assert trigger == 1

        assert migrate.downgrade(engine, 3844, "0005_indicators") == "0005_indicators"
        with engine.connect() as conn:
            columns = set(
                conn.execute(
                    sa.text(
                        "SELECT column_name FROM information_schema.columns "
                        "WHERE table_schema = 'permits' AND table_name = 'act'"
                    )
                ).scalars()
            )
            leftovers = conn.execute(
                sa.text("SELECT count(*) FROM pg_proc WHERE proname = 'clear_stale_act_twins'")
            ).scalar_one()
            kept = conn.execute(sa.text("SELECT ST_AsText(location) FROM permits.act")).scalar_one()
        assert not set(twins) & columns and {"location", "footprint", "geom"} <= columns
        assert leftovers == 0
        assert kept == point
        assert migrate.upgrade(engine, 3844) == migrate.head_revision()


def test_act_twin_columns_are_etrs89_with_gist_indexes(db: Connection) -> None:
    rows = db.execute(
        sa.text(
            "SELECT f_geometry_column, srid, type FROM geometry_columns "
            "WHERE f_table_schema = 'permits' AND f_table_name = 'act'"
        )
    ).all()
    found = {row[0]: (row[1], row[2]) for row in rows}
    assert found["location_etrs89"] == (4258, "POINT")
    assert found["footprint_etrs89"] == (4258, "MULTIPOLYGON")
    assert found["geom_etrs89"] == (4258, "MULTIPOLYGON")
    indexed = {str(column): keys for column, keys in db.execute(sa.text(GIST_KEYS)).all()}
    for column in found:
        assert indexed[f"permits.act.{column}"], column


def test_acts_are_found_by_cadastral_number_through_an_index(db: Connection) -> None:
    """The location check lists a parcel's acts by number: that lookup must not scan."""
    definition = db.execute(
        sa.text(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'permits' "
            "AND tablename = 'act_parcel' AND indexname = 'ix_act_parcel_cadastral_number'"
        )
    ).scalar_one_or_none()
    assert definition is not None and "(cadastral_number)" in definition
