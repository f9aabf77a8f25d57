"""The parcels' facts the zone analysis and the indicators share, and their rules.

The parcels placed in zones and units (``basis.create_parcel_placement``) and the
parcels' facts (``basis.create_parcel_facts``) are made once per transaction and instant
and serve every answer that needs them; they must be made again when the instant or the
data moves, and buildings without a usable cadastral number must still count on the
parcel holding them. All writes here are rolled back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from layers.analysis.basis import AsOf
from layers.analysis.zones import ZoneQuery, analyse_zones
from layers.indicators.runs import ComputeRequest, compute_indicators
from tests.test_indicators_support import (  # noqa: F401  (fixtures)
    analysis_engine,
    analysis_settings,
)

SRID = 3844


def _facts_table(conn: Connection, name: str = "_zf_parcel") -> int | None:
    """The OID of a temporary table of facts: a new table has a new OID."""
    found = conn.execute(sa.text(f"SELECT to_regclass('pg_temp.{name}')::oid")).scalar()
    return None if found is None else int(found)


def _totals(document: dict) -> tuple[float, float, int]:
    zones = document["zones"]
    return (
        sum(z["footprint"] for z in zones),
        sum(z["floor_area"] for z in zones),
        sum(z["parcel_count"] for z in zones),
    )


def test_facts_are_shared_for_one_instant_and_made_again_when_data_moves(
    analysis_engine: Engine,
) -> None:
    as_of = AsOf.of(None)
    with analysis_engine.connect() as conn, conn.begin() as outer:
        zones = analyse_zones(conn, ZoneQuery(as_of))
        placed = _facts_table(conn, "_zf_placed")
        assert placed is not None
        request = ComputeRequest(indicators=("avg_parcel_size",), units="utr", as_of=as_of)
        outcome = compute_indicators(conn, request, SRID)[0]
        # The indicators on UTRs read the same placed parcels: not made again.
        assert _facts_table(conn, "_zf_placed") == placed
        # The same parcels, in the zone analysis and in the indicator.
        counted = sum(z["parcel_count"] for z in zones["zones"])
        objects = conn.execute(
            sa.text("SELECT objects FROM analysis.indicator_result WHERE run_id = :r"),
            {"r": outcome.run_id},
        ).scalars()
        assert counted == sum(n or 0 for n in objects) == 2000
        # The run is stored for the instant it was asked for.
        stored = conn.execute(
            sa.text("SELECT as_of, year FROM analysis.indicator_run WHERE id = :r"),
            {"r": outcome.run_id},
        ).one()
        assert stored.as_of == as_of.instant
        assert stored.year == as_of.day.year
        # Another instant: made again.
        later = AsOf(as_of.instant + timedelta(seconds=1))
        before = _totals(analyse_zones(conn, ZoneQuery(later)))
        remade = _facts_table(conn, "_zf_placed")
        assert remade != placed
        # Same instant, but a building changed in the transaction: made again, and the
        # change shows.
        conn.execute(
            sa.text(
                "UPDATE cadastre.building SET floor_area = floor_area + 1000 WHERE id = "
                "(SELECT b.id FROM cadastre.building b JOIN cadastre.parcel p "
                "ON p.cadastral_number = b.cadastral_number AND p.valid_to IS NULL "
                "WHERE b.valid_to IS NULL AND b.floor_area IS NOT NULL ORDER BY b.id LIMIT 1)"
            )
        )
        after = _totals(analyse_zones(conn, ZoneQuery(later)))
        assert _facts_table(conn, "_zf_placed") != remade
        assert math.isclose(after[1] - before[1], 1000.0, rel_tol=1e-9)
        assert after[0] == before[0] and after[2] == before[2]
        # Indicators on a grid read the parcels' facts, made once for the instant.
        grid = ComputeRequest(indicators=("avg_parcel_size",), units="hex:500", as_of=later)
        compute_indicators(conn, grid, SRID)
        made = _facts_table(conn)
        assert made is not None
        compute_indicators(conn, grid, SRID)
        assert _facts_table(conn) == made
        outer.rollback()


def test_buildings_without_a_known_number_count_on_the_parcel_holding_them(
    analysis_engine: Engine,
) -> None:
    with analysis_engine.connect() as conn, conn.begin() as outer:
        before = _totals(analyse_zones(conn, ZoneQuery(AsOf.of(None))))
        # Two small buildings at a parcel's point on surface: one without a number,
        # one citing a number no parcel has.
        for number in (None, "no-such-parcel"):
            conn.execute(
                sa.text(
                    "INSERT INTO cadastre.building (uat_siruta, cadastral_number, levels, "
                    "footprint_area, floor_area, geom) SELECT 54975, :n, 3, 50, 150, "
                    "ST_Multi(ST_Buffer(ST_PointOnSurface(geom), 0.2, 'quad_segs=1')) "
                    "FROM cadastre.parcel WHERE valid_to IS NULL ORDER BY id LIMIT 1"
                ),
                {"n": number},
            )
        after = _totals(analyse_zones(conn, ZoneQuery(AsOf.of(None))))
        assert math.isclose(after[0] - before[0], 100.0, rel_tol=1e-9)
        assert math.isclose(after[1] - before[1], 300.0, rel_tol=1e-9)
        assert after[2] == before[2]
        outer.rollback()


def test_the_session_settings_are_put_back(analysis_engine: Engine) -> None:
    with analysis_engine.connect() as conn, conn.begin() as outer:
        conn.execute(sa.text("SET LOCAL work_mem = '4MB'"))
        analyse_zones(conn, ZoneQuery(AsOf.of(None)))
        compute_indicators(conn, ComputeRequest(indicators=("avg_parcel_size",)), SRID)
        assert conn.execute(sa.text("SHOW work_mem")).scalar() == "4MB"
        outer.rollback()


def test_the_big_joins_read_base_tables_so_postgresql_can_share_them(
    analysis_engine: Engine,
) -> None:
    """Placing parcels and buildings and finding restricted parcels may run in parallel.

    A statement that reads a temporary table cannot use PostgreSQL's parallel workers;
    these three read base tables only where the work is, and their plans say so.
    """
    watched = {
        "placement": "CREATE TEMP TABLE _zf_placed ",
        "buildings": "CREATE TEMP TABLE _building_unit ",
        "restrictions": "WITH hit AS ",
    }
    seen: dict[str, tuple[str, Mapping[str, Any]]] = {}

    def record(
        conn: object,
        cursor: object,
        statement: str,
        params: Mapping[str, Any],
        context: object,
        executemany: bool,
    ) -> None:
        for name, start in watched.items():
            if statement.startswith(start):
                seen[name] = (
                    statement.removeprefix(start).removeprefix("ON COMMIT DROP AS "),
                    params,
                )

    as_of = AsOf.of(None)
    with analysis_engine.connect() as conn, conn.begin() as outer:
        sa.event.listen(conn, "before_cursor_execute", record)
        try:
            analyse_zones(conn, ZoneQuery(as_of))
            request = ComputeRequest(
                indicators=("built_density", "protected_share"), units="utr", as_of=as_of
            )
            compute_indicators(conn, request, SRID)
        finally:
            sa.event.remove(conn, "before_cursor_execute", record)
        for setting in ("min_parallel_table_scan_size", "parallel_setup_cost"):
            conn.execute(sa.text(f"SET LOCAL {setting} = 0"))
        raw = conn.connection.dbapi_connection
        assert raw is not None and set(seen) == set(watched)
        parallel = set()
        for name, (statement, params) in seen.items():
            if name == "restrictions":
                statement = "WITH hit AS " + statement
            cursor = raw.cursor()
            cursor.execute("EXPLAIN " + statement, params)
            plan = "\n".join(str(row[0]) for row in cursor.fetchall())
            cursor.close()
            if "Workers Planned" in plan:
                parallel.add(name)
        outer.rollback()
    assert parallel == set(watched)
