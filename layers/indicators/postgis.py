"""The indicators computed in PostGIS: temporary fact tables, one statement per indicator.

The city as of T is read once into temporary tables: the parcels' facts shared with the
zone analysis (``basis.create_parcel_facts``: area, point on surface, built totals) and
the buildings with their points on surface, each placed in exactly one unit by one
set-based join over a GiST index of the points (the unit containing the point; on a
shared edge the smallest key in code-point order wins, the rule the Dask path follows
too), the restrictions and the green space cut into small pieces under GiST indexes.
Each indicator is then one aggregation over them, returning
``(unit_key, numerator, denominator, objects)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from layers.analysis.acts import ActsSource, acts_per_parcel_sql, probe_acts
from layers.analysis.basis import (
    BIG_WORK_MEM,
    BUILDING_FP,
    BUILDING_GFA,
    PARALLEL,
    UNIT_KEYS,
    AsOf,
    as_of_filter,
    create_parcel_facts,
    create_parcel_placement,
    local_settings,
    unit_zones_sql,
)
from layers.indicators.catalogue import Indicator, IndicatorParameters
from layers.indicators.units import PIECE_VERTICES, UnitSpec, create_unit_pieces, place_points

Partial = tuple[str, float | None, float | None, int | None]


@dataclass
class Context:
    """What one computation session has prepared, and why an indicator may be skipped."""

    conn: Connection
    as_of: AsOf
    units: UnitSpec
    year: int
    plan_id: int
    parameters: IndicatorParameters
    acts: ActsSource
    prepared: set[str]
    notes: dict[str, str]


TEMP_TABLES = (
    "_parcel_placed",
    "_building_unit",
    "_building",
    "_green",
    "_population",
    "_act",
)


def drop_fact_tables(conn: Connection) -> None:
    """Forget the facts of an earlier computation in the same transaction.

    The parcels' facts and placement (``basis``) stay: they know what they were made for.
    """
    conn.execute(sa.text("DROP VIEW IF EXISTS _parcel_unit"))
    conn.execute(sa.text(f"DROP TABLE IF EXISTS {', '.join(TEMP_TABLES)}"))


def _run(conn: Connection, statement: str, params: dict[str, Any] | None = None) -> None:
    conn.execute(sa.text(statement), params or {})


def prepare_parcels(ctx: Context) -> None:
    """View ``_parcel_unit`` (parcel_id, unit_key, area): the parcels as of T in their units.

    The parcels' facts are the zone analysis's (``basis.create_parcel_facts``), made
    once per transaction and instant. Units made of zones (UTRs, zones) take the
    placement the zone analysis makes too (``basis.create_parcel_placement``), so a
    zone analysis and UTR indicators for one instant place the parcels once.
    """
    if "parcels" in ctx.prepared:
        return
    _run(ctx.conn, "DROP VIEW IF EXISTS _parcel_unit")
    if ctx.units.kind in UNIT_KEYS:
        create_parcel_placement(ctx.conn, ctx.as_of, None, ctx.plan_id, ctx.units.kind)
        source = "SELECT parcel_id, unit_key, area FROM _zf_placed WHERE unit_key IS NOT NULL"
    else:
        create_parcel_facts(ctx.conn, ctx.as_of)
        with local_settings(ctx.conn, work_mem=BIG_WORK_MEM):
            place_points(ctx.conn, "_zf_parcel", "_parcel_placed", "parcel_id", ("area",))
        _run(ctx.conn, "ANALYZE _parcel_placed")
        source = "SELECT parcel_id, unit_key, area FROM _parcel_placed"
    _run(ctx.conn, f"CREATE TEMP VIEW _parcel_unit AS {source}")
    ctx.prepared.add("parcels")


def prepare_buildings(ctx: Context) -> None:
    """``_building_unit`` (building_id, unit_key, fp, gfa): buildings by their points."""
    if "buildings" in ctx.prepared:
        return
    if ctx.units.kind in UNIT_KEYS:
        # Units made of zones: one join of the zones with the buildings' GiST index, on
        # base tables only, so PostgreSQL shares it among its parallel workers.
        with local_settings(ctx.conn, work_mem=BIG_WORK_MEM, **PARALLEL):
            _run(
                ctx.conn,
                "CREATE TEMP TABLE _building_unit ON COMMIT DROP AS "
                "SELECT DISTINCT ON (b.id) b.id AS building_id, z.unit_key, "
                f"{BUILDING_FP} AS fp, {BUILDING_GFA} AS gfa "
                f"FROM ({unit_zones_sql(ctx.units.kind)}) z JOIN cadastre.building b "
                "ON b.geom && z.geom AND ST_Intersects(z.geom, ST_PointOnSurface(b.geom)) "
                f"WHERE {as_of_filter('b')} "
                'ORDER BY b.id, z.unit_key COLLATE "C"',
                {**ctx.as_of.params(), "unit_plan": ctx.plan_id},
            )
        ctx.prepared.add("buildings")
        return
    _run(
        ctx.conn,
        "CREATE TEMP TABLE _building ON COMMIT DROP AS "
        f"SELECT b.id, {BUILDING_FP} AS fp, {BUILDING_GFA} AS gfa, "
        "ST_PointOnSurface(b.geom) AS pt "
        f"FROM cadastre.building b WHERE b.geom IS NOT NULL AND {as_of_filter('b')}",
        ctx.as_of.params(),
    )
    _run(ctx.conn, "CREATE INDEX ON _building USING gist (pt); ANALYZE _building")
    with local_settings(ctx.conn, work_mem=BIG_WORK_MEM):
        place_points(ctx.conn, "_building", "_building_unit", "building_id", ("fp", "gfa"))
    ctx.prepared.add("buildings")


def green_source(conn: Connection) -> str:
    """``input`` when a green input layer is loaded, else ``zones`` (green UTRs)."""
    found = conn.execute(
        sa.text("SELECT 1 FROM analysis.input_layer WHERE kind = 'green' LIMIT 1")
    ).first()
    return "input" if found else "zones"


def prepare_green(ctx: Context) -> None:
    if "green" in ctx.prepared:
        return
    if green_source(ctx.conn) == "input":
        source = (
            "SELECT f.geom FROM analysis.input_feature f JOIN analysis.input_layer l "
            "ON l.name = f.input_layer WHERE l.kind = 'green'"
        )
    else:
        source = (
            "SELECT z.geom FROM urbanism.zone z WHERE z.plan_id = :plan_id "
            f"AND {as_of_filter('z')} AND z.utr_code LIKE ANY(CAST(:patterns AS text[]))"
        )
    _run(
        ctx.conn,
        "CREATE TEMP TABLE _green ON COMMIT DROP AS "
        "SELECT ST_Subdivide(geom, :v) AS geom FROM ("
        f"SELECT ST_UnaryUnion(ST_Collect(ST_MakeValid(geom))) AS geom FROM ({source}) s) g "
        "WHERE geom IS NOT NULL",
        {
            **ctx.as_of.params(),
            "plan_id": ctx.plan_id,
            "v": PIECE_VERTICES,
            "patterns": [f"{p}%" for p in ctx.parameters.green_utr_prefixes],
        },
    )
    _run(ctx.conn, "CREATE INDEX ON _green USING gist (geom)")
    create_unit_pieces(ctx.conn)
    ctx.prepared.add("green")


def prepare_population(ctx: Context) -> bool:
    """``_population(unit_key, population)``: keyed rows for these units, else points."""
    if "population" in ctx.prepared:
        return "no_population" not in ctx.notes
    ctx.prepared.add("population")
    keyed = ctx.conn.execute(
        sa.text("SELECT max(year) FROM analysis.population WHERE unit_set = :u AND year <= :y"),
        {"u": ctx.units.population_key, "y": ctx.year},
    ).scalar()
    if keyed is not None:
        _run(
            ctx.conn,
            "CREATE TEMP TABLE _population ON COMMIT DROP AS SELECT unit_key, population "
            "FROM analysis.population WHERE unit_set = :u AND year = :y",
            {"u": ctx.units.population_key, "y": int(keyed)},
        )
        ctx.notes["population"] = f"population of {keyed} per unit ({ctx.units.label})"
        return True
    points = ctx.conn.execute(
        sa.text("SELECT 1 FROM analysis.input_layer WHERE kind = 'population' LIMIT 1")
    ).first()
    if points is None:
        ctx.notes["no_population"] = (
            f"skipped: no population for units {ctx.units.label!r} up to {ctx.year} "
            "(import a table per unit or population points)"
        )
        return False
    if ctx.units.kind in UNIT_KEYS:
        units = f"SELECT unit_key, geom FROM ({unit_zones_sql(ctx.units.kind)}) z"
    else:
        units = "SELECT u.unit_key, s.geom FROM _unit_source s JOIN _unit u USING (unit_no)"
    _run(
        ctx.conn,
        "CREATE TEMP TABLE _population ON COMMIT DROP AS "
        "SELECT unit_key, sum(value) AS population FROM ("
        "SELECT DISTINCT ON (f.id) f.id, f.value, u.unit_key FROM analysis.input_feature f "
        "JOIN analysis.input_layer l ON l.name = f.input_layer AND l.kind = 'population' "
        f"JOIN ({units}) u ON u.geom && f.geom AND ST_Intersects(u.geom, f.geom) "
        'ORDER BY f.id, u.unit_key COLLATE "C") x GROUP BY unit_key',
        {**ctx.as_of.params(), "unit_plan": ctx.plan_id},
    )
    ctx.notes["population"] = "population points summed per unit"
    return True


def prepare_acts(ctx: Context) -> bool:
    if "acts" in ctx.prepared:
        return "no_acts" not in ctx.notes
    ctx.prepared.add("acts")
    state = probe_acts(ctx.conn, ctx.acts)
    if not state.ok:
        ctx.notes["no_acts"] = state.message
        return False
    prepare_parcels(ctx)
    _run(
        ctx.conn,
        "CREATE TEMP TABLE _act ON COMMIT DROP AS "
        "WITH parcel AS (SELECT parcel_id AS id FROM _parcel_unit), "
        f"{acts_per_parcel_sql(ctx.acts)} "
        "SELECT a.act_id, a.kind, a.year, a.days_to_issue, pu.unit_key FROM act_on_parcel a "
        "JOIN _parcel_unit pu ON pu.parcel_id = a.parcel_id WHERE a.year = :year",
        {"year": ctx.year},
    )
    return True


def has_input(ctx: Context, kind: str) -> bool:
    found = ctx.conn.execute(
        sa.text("SELECT 1 FROM analysis.input_layer WHERE kind = :k LIMIT 1"), {"k": kind}
    ).first()
    if found is None:
        ctx.notes[f"no_{kind}"] = f"skipped: no {kind} input layer is loaded"
        return False
    return True


# -- the indicators -------------------------------------------------------------------
def _rows(ctx: Context, statement: str, params: dict[str, Any] | None = None) -> list[Partial]:
    result = ctx.conn.execute(sa.text(statement), params or {})
    return [
        (
            str(r[0]),
            None if r[1] is None else float(r[1]),
            None if r[2] is None else float(r[2]),
            None if r[3] is None else int(r[3]),
        )
        for r in result
    ]


def _building_sum(column: str) -> Callable[[Context], list[Partial]]:
    def compute(ctx: Context) -> list[Partial]:
        prepare_buildings(ctx)
        return _rows(
            ctx,
            f"SELECT u.unit_key, coalesce(sum(b.{column}), 0), u.area, count(b.building_id) "
            "FROM _unit u LEFT JOIN _building_unit b ON b.unit_key = u.unit_key "
            "GROUP BY u.unit_key, u.area",
        )

    return compute


def avg_parcel_size(ctx: Context) -> list[Partial]:
    prepare_parcels(ctx)
    return _rows(
        ctx,
        "SELECT unit_key, sum(area), count(*), count(*) FROM _parcel_unit GROUP BY unit_key",
    )


def _restriction_share(kinds_of: Callable[[IndicatorParameters], tuple[str, ...]]) -> Any:
    def compute(ctx: Context) -> list[Partial]:
        prepare_parcels(ctx)
        # Each restriction cut into small pieces; pieces outside, parcels through their
        # index inside, so PostGIS prepares each piece once (its geometry cache). The
        # join reads base tables only: PostgreSQL shares it among its parallel workers.
        # A parcel under several restrictions counts once.
        with local_settings(ctx.conn, work_mem=BIG_WORK_MEM, **PARALLEL):
            return _rows(
                ctx,
                "WITH hit AS (SELECT DISTINCT p.id FROM urbanism.restriction r "
                "CROSS JOIN LATERAL ST_Subdivide(ST_MakeValid(r.geom), :v) AS s(geom) "
                "JOIN cadastre.parcel p ON p.geom && s.geom AND ST_Intersects(s.geom, p.geom) "
                f"WHERE r.kind = ANY(CAST(:kinds AS text[])) AND {as_of_filter('r')} "
                f"AND {as_of_filter('p')}) "
                "SELECT pu.unit_key, count(hit.id), count(*), count(*) "
                "FROM _parcel_unit pu LEFT JOIN hit ON hit.id = pu.parcel_id "
                "GROUP BY pu.unit_key",
                {
                    **ctx.as_of.params(),
                    "kinds": list(kinds_of(ctx.parameters)),
                    "v": PIECE_VERTICES,
                },
            )

    return compute


def _access_share(kind: str) -> Callable[[Context], list[Partial] | None]:
    def compute(ctx: Context) -> list[Partial] | None:
        if not has_input(ctx, kind):
            return None
        prepare_parcels(ctx)
        return _rows(
            ctx,
            "SELECT pu.unit_key, count(*) FILTER (WHERE EXISTS (SELECT 1 "
            "FROM analysis.input_feature f JOIN analysis.input_layer l "
            "ON l.name = f.input_layer AND l.kind = :kind "
            "WHERE ST_DWithin(f.geom, p.geom, :d))), count(*), count(*) "
            "FROM _parcel_unit pu JOIN cadastre.parcel p ON p.id = pu.parcel_id "
            "GROUP BY pu.unit_key",
            {"kind": kind, "d": ctx.parameters.distance(kind)},
        )

    return compute


def green_per_inhabitant(ctx: Context) -> list[Partial] | None:
    if not prepare_population(ctx):
        return None
    prepare_green(ctx)
    return _rows(
        ctx,
        "WITH g AS (SELECT up.unit_key, sum(ST_Area(ST_Intersection(up.geom, gr.geom))) AS a "
        "FROM _unit_piece up JOIN _green gr ON gr.geom && up.geom "
        "AND ST_Intersects(gr.geom, up.geom) GROUP BY up.unit_key) "
        "SELECT u.unit_key, coalesce(g.a, 0), pop.population, NULL FROM _unit u "
        "LEFT JOIN g ON g.unit_key = u.unit_key "
        "LEFT JOIN _population pop ON pop.unit_key = u.unit_key",
    )


def acts_per_1000(ctx: Context) -> list[Partial] | None:
    if not prepare_acts(ctx) or not prepare_population(ctx):
        return None
    return _rows(
        ctx,
        "WITH a AS (SELECT unit_key, count(*) AS n FROM _act GROUP BY unit_key) "
        "SELECT u.unit_key, coalesce(a.n, 0), pop.population, coalesce(a.n, 0) FROM _unit u "
        "LEFT JOIN a ON a.unit_key = u.unit_key "
        "LEFT JOIN _population pop ON pop.unit_key = u.unit_key",
    )


def time_to_issue(ctx: Context) -> list[Partial] | None:
    if not prepare_acts(ctx):
        return None
    return _rows(
        ctx,
        "SELECT unit_key, sum(days_to_issue), count(days_to_issue), count(*) FROM _act "
        "GROUP BY unit_key",
    )


COMPUTE: dict[str, Callable[[Context], list[Partial] | None]] = {
    "built_density": _building_sum("gfa"),
    "built_share": _building_sum("fp"),
    "green_per_inhabitant": green_per_inhabitant,
    "park_access_share": _access_share("park"),
    "school_access_share": _access_share("school"),
    "transit_access_share": _access_share("transit_stop"),
    "acts_per_1000": acts_per_1000,
    "flood_share": _restriction_share(lambda p: p.flood_kinds),
    "protected_share": _restriction_share(lambda p: p.protected_kinds),
    "avg_parcel_size": avg_parcel_size,
    "time_to_issue": time_to_issue,
}


def compute_partials(ctx: Context, indicator: Indicator) -> list[Partial] | None:
    """The per-unit sums of one indicator, or None when an input is missing (see notes)."""
    return COMPUTE[indicator.id](ctx)


def skip_reason(ctx: Context, indicator: Indicator) -> str:
    """Why ``compute_partials`` returned None, for the run's summary and the CLI."""
    for need in indicator.needs:
        message = ctx.notes.get(f"no_{need}")
        if message:
            return message
    return "skipped: an input is missing"
