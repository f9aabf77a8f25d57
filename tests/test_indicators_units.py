"""Units of the indicators: UTRs merged for publication with their twins, point placement.

A UTR is published as the union of its zones, with the ETRS89 twin; only the zones that
touch another zone of the same UTR are unioned, the others keep their stored twins. A
point goes to the unit holding it, the smallest key on a shared edge, however many
vertices the unit has. Checked with shapely and the TransDatRO transformation; all
writes are rolled back.
"""

from __future__ import annotations

import numpy as np
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gis_core.crs.transform import transform_geometries
from gis_core.twins import fill_missing_twins
from layers.indicators.runs import ComputeRequest, compute_indicators
from layers.indicators.units import place_points
from tests.test_indicators_support import (  # noqa: F401  (fixtures)
    analysis_engine,
    analysis_settings,
)

SRID = 3844


def _corner(conn: Connection) -> tuple[float, float]:
    row = conn.execute(
        sa.text(
            "SELECT ST_XMin(geom), ST_YMin(geom) FROM core.admin_unit WHERE level = 'uat' LIMIT 1"
        )
    ).one()
    return float(row[0]), float(row[1])


def _plan_with_zones(conn: Connection, zones: list[tuple[str, shapely.Geometry]]) -> int:
    plan = conn.execute(
        sa.text(
            "INSERT INTO urbanism.plan (uat_siruta, plan_type, title, status) "
            "VALUES (54975, 'PUZ', 'units test', 'draft') RETURNING id"
        )
    ).scalar_one()
    for code, geom in zones:
        conn.execute(
            sa.text(
                "INSERT INTO urbanism.zone (plan_id, utr_code, geom) "
                "VALUES (:p, :c, ST_Multi(ST_GeomFromWKB(:w, :srid)))"
            ),
            {"p": plan, "c": code, "w": shapely.to_wkb(geom), "srid": SRID},
        )
    return int(plan)


def test_utr_units_are_the_union_of_their_zones_with_exact_twins(analysis_engine: Engine) -> None:
    with analysis_engine.connect() as conn, conn.begin() as outer:
        x, y = _corner(conn)
        a = shapely.box(x, y, x + 100, y + 100)
        b = shapely.box(x + 100, y, x + 200, y + 100)  # touches a: unioned
        c = shapely.box(x + 500, y, x + 600, y + 80)  # alone: kept with its twin
        d = shapely.box(x + 600, y, x + 650, y + 80)  # another UTR beside c
        plan = _plan_with_zones(conn, [("T1", a), ("T1", b), ("T1", c), ("T2", d)])
        fill_missing_twins(conn, "urbanism.zone", SRID)
        # A zone stored without its twin still gets one.
        conn.execute(
            sa.text(
                "UPDATE urbanism.zone SET geom_etrs89 = NULL WHERE plan_id = :p AND utr_code = 'T2'"
            ),
            {"p": plan},
        )
        request = ComputeRequest(indicators=("avg_parcel_size",), units="utr", plan_id=plan)
        run = compute_indicators(conn, request, SRID)[0].run_id
        rows = conn.execute(
            sa.text(
                "SELECT unit_key, ST_AsBinary(geom) AS g, ST_AsBinary(geom_etrs89) AS twin, "
                "ST_IsValid(geom) AS valid, GeometryType(geom) AS kind "
                "FROM analysis.indicator_result WHERE run_id = :r ORDER BY unit_key"
            ),
            {"r": run},
        ).all()
        outer.rollback()
    assert [r.unit_key for r in rows] == ["T1", "T2"]
    assert all(r.valid and r.kind == "MULTIPOLYGON" for r in rows)
    t1 = shapely.from_wkb(bytes(rows[0].g))
    assert shapely.get_num_geometries(t1) == 2
    assert shapely.equals(t1, shapely.union_all([a, b, c]))
    assert abs(t1.area - 28_000) < 1e-6
    assert shapely.equals(shapely.from_wkb(bytes(rows[1].g)), d)
    for row in rows:
        geom = shapely.from_wkb(bytes(row.g))
        expected = transform_geometries(np.array([geom]), SRID, 4258)[0]
        twin = shapely.from_wkb(bytes(row.twin))
        assert shapely.hausdorff_distance(twin, expected) < 1e-9


def test_points_go_to_the_unit_holding_them_and_the_smallest_key_on_an_edge(
    analysis_engine: Engine,
) -> None:
    with analysis_engine.connect() as conn, conn.begin() as outer:
        conn.execute(
            sa.text(
                "CREATE TEMP TABLE _unit (unit_key text, unit_no int) ON COMMIT DROP; "
                "CREATE TEMP TABLE _unit_source (unit_no int, geom geometry) ON COMMIT DROP; "
                "CREATE TEMP TABLE _pts (id bigint, pt geometry) ON COMMIT DROP"
            )
        )
        # Keys in code-point order: 'Z' < 'a'; numbers follow that order.
        conn.execute(sa.text("INSERT INTO _unit VALUES ('Z', 1), ('a', 2), ('round', 3)"))
        conn.execute(
            sa.text(
                "INSERT INTO _unit_source VALUES "
                "(2, ST_MakeEnvelope(0, 0, 10, 10)), (1, ST_MakeEnvelope(10, 0, 20, 10)), "
                "(3, ST_Buffer(ST_MakePoint(100, 100), 50, 1000))"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO _pts VALUES (1, ST_MakePoint(5, 5)), (2, ST_MakePoint(10, 5)), "
                "(3, ST_MakePoint(15, 5)), (4, ST_MakePoint(100, 149.9)), "
                "(5, ST_MakePoint(100, 151)), (6, ST_MakePoint(30, 30))"
            )
        )
        conn.execute(sa.text("CREATE INDEX ON _pts USING gist (pt)"))
        place_points(conn, "_pts", "_placed", "point_id")
        rows = conn.execute(sa.text("SELECT point_id, unit_key FROM _placed")).all()
        found = {int(r.point_id): str(r.unit_key) for r in rows}
        outer.rollback()
    assert found == {1: "a", 2: "Z", 3: "Z", 4: "round"}


def test_a_unit_with_many_vertices_places_its_parcels(analysis_engine: Engine) -> None:
    """A district of 4 000 vertices is cut into pieces for placement: same parcels."""
    with analysis_engine.connect() as conn, conn.begin() as outer:
        centre = conn.execute(
            sa.text(
                "SELECT ST_AsBinary(ST_PointOnSurface(geom)) FROM core.admin_unit "
                "WHERE level = 'uat' LIMIT 1"
            )
        ).scalar_one()
        disc = shapely.buffer(shapely.from_wkb(bytes(centre)), 1500, quad_segs=1000)
        assert shapely.get_num_coordinates(disc) > 4000
        conn.execute(
            sa.text(
                "INSERT INTO analysis.unit_set (name, title, source, source_sha256, "
                "feature_count) VALUES ('disc', 'disc', 'test', 'none', 1)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO analysis.unit (unit_set, unit_key, name, geom) "
                "VALUES ('disc', 'd1', 'disc', ST_Multi(ST_GeomFromWKB(:w, :srid)))"
            ),
            {"w": shapely.to_wkb(disc), "srid": SRID},
        )
        request = ComputeRequest(indicators=("avg_parcel_size",), units="disc")
        outcome = compute_indicators(conn, request, SRID)[0]
        pieces = conn.execute(sa.text("SELECT count(*) FROM _unit_source")).scalar_one()
        objects = conn.execute(
            sa.text("SELECT objects FROM analysis.indicator_result WHERE run_id = :r"),
            {"r": outcome.run_id},
        ).scalar_one()
        parcels = conn.execute(
            sa.text(
                "SELECT ST_AsBinary(geom) FROM cadastre.parcel "
                "WHERE valid_to IS NULL AND geom IS NOT NULL"
            )
        ).scalars()
        points = shapely.point_on_surface(shapely.from_wkb([bytes(w) for w in parcels]))
        outer.rollback()
    assert pieces > 1
    assert objects == int(shapely.intersects(disc, points).sum()) > 0


def test_big_unit_geometries_are_stored_with_lz4(analysis_engine: Engine) -> None:
    """Merged UTR geometries are written compressed with lz4 (pglz spends long on them)."""
    with analysis_engine.connect() as conn, conn.begin() as outer:
        has_lz4 = conn.execute(
            sa.text(
                "SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
                "WHERE name = 'default_toast_compression'"
            )
        ).scalar()
        if not has_lz4:
            outer.rollback()
            return
        run = compute_indicators(
            conn, ComputeRequest(indicators=("avg_parcel_size",), units="utr"), SRID
        )[0].run_id
        methods = set(
            conn.execute(
                sa.text(
                    "SELECT pg_column_compression(geom) FROM analysis.indicator_result "
                    "WHERE run_id = :r AND pg_column_size(geom) > 4096"
                ),
                {"r": run},
            ).scalars()
        )
        setting = conn.execute(sa.text("SHOW default_toast_compression")).scalar()
        outer.rollback()
    assert "lz4" in methods and "pglz" not in methods
    assert setting == "pglz"
