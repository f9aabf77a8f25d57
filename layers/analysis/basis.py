"""The facts every zone analysis and indicator starts from, as SQL fragments.

One definition of "the state of the city as of T" is shared by the planners' zone
analysis and the strategy teams' indicators, so their figures always agree:

- versioned rows (parcels, buildings, zones, restrictions) count when their period
  covers T (``valid_from < T <= valid_to``, open periods are current);
- a parcel's area is the area of its geometry (measured areas may be missing or
  disagree with the drawing);
- a building belongs to the parcel with its cadastral number, or, when it has none or
  the number is unknown, to the parcel containing its point on surface;
- footprint = the recorded footprint area, else the geometry's area; gross floor area
  = the recorded floor area, else footprint × levels (one level when unknown);
- a parcel lies in the zone (or unit) containing its point on surface; where plans
  overlap, a PUD beats a PUZ beats the PUG, then the newer plan.

Fragments are constant text with bound parameters ``:as_of`` (timestamptz),
``:as_of_date`` (date) and ``:plan_id`` (bigint or NULL); nothing is pasted into them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_core.errors import InvalidParameter


def _checked(*names: str) -> None:
    for name in names:
        if not name.isidentifier():
            raise ValueError(f"bad identifier {name!r}")


def as_of_filter(alias: str, param: str = "as_of") -> str:
    """Rows of a versioned table (alias ``alias``) that described reality at ``:param``."""
    _checked(alias, param)
    period_open = f"{alias}.valid_to IS NULL OR {alias}.valid_to >= :{param}"
    return f"{alias}.valid_from < :{param} AND ({period_open})"


@dataclass(frozen=True)
class AsOf:
    """The instant the analysis describes: the end of a day, or now."""

    instant: datetime

    @classmethod
    def of(cls, day: date | None) -> AsOf:
        """End of ``day`` (UTC), or the current instant when no day is given."""
        if day is None:
            return cls(datetime.now(UTC))
        return cls(datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC))

    @classmethod
    def parse(cls, text: str | None, locator: str = "as_of") -> AsOf:
        """``YYYY-MM-DD`` from a command line or a query string."""
        if text is None or not text.strip():
            return cls.of(None)
        try:
            return cls.of(date.fromisoformat(text.strip()))
        except ValueError:
            raise InvalidParameter(
                f"{locator} must be a date YYYY-MM-DD, got {text!r}", locator=locator
            ) from None

    @property
    def day(self) -> date:
        """The calendar day plans must be in force on."""
        return (self.instant - timedelta(microseconds=1)).date()

    def params(self) -> dict[str, object]:
        return {"as_of": self.instant, "as_of_date": self.day}


# The footprint and gross floor area of a building row ``b`` (see the module docstring).
BUILDING_FP = "coalesce(b.footprint_area, ST_Area(b.geom))"
BUILDING_GFA = (
    "coalesce(b.floor_area, coalesce(b.footprint_area, ST_Area(b.geom)) "
    "* greatest(coalesce(b.levels, 1), 1))"
)


@contextmanager
def local_settings(conn: Connection, **values: str) -> Iterator[None]:
    """Planner and memory settings for a few big statements, then the previous values.

    ``set_config(..., true)`` keeps them inside the transaction; they are put back on
    exit so the caller's later statements run as configured.
    """
    previous = {
        name: conn.execute(sa.text("SELECT current_setting(:n)"), {"n": name}).scalar_one()
        for name in values
    }
    for name, value in values.items():
        conn.execute(sa.text("SELECT set_config(:n, :v, true)"), {"n": name, "v": value})
    # On an error the transaction (or savepoint) fails and takes the settings with it.
    yield
    for name, value in previous.items():
        conn.execute(sa.text("SELECT set_config(:n, :v, true)"), {"n": name, "v": value})


# Memory for the sorts and hashes of a whole city (a million parcels) in one pass.
BIG_WORK_MEM = "256MB"


def fast_compression(conn: Connection) -> dict[str, str]:
    """lz4 for big values written out of line (e.g. a UTR's merged geometry), if the server has it.

    pglz (PostgreSQL's default) tries hard on tens of megabytes of coordinates before it
    gives up; lz4 is several times quicker either way, and faster to read back.
    """
    found = conn.execute(
        sa.text(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
    ).scalar()
    return {"default_toast_compression": "lz4"} if found else {}


FACT_TABLES = ("cadastre.parcel", "cadastre.building")


def _facts_key(conn: Connection, as_of: AsOf) -> str:
    """The instant and the data versions of the tables the parcel facts are made from."""
    versions = conn.execute(
        sa.text(
            "SELECT coalesce(string_agg(table_name || '=' || version, ',' "
            "ORDER BY table_name), '') FROM core.data_version "
            "WHERE table_name = ANY(CAST(:t AS text[]))"
        ),
        {"t": list(FACT_TABLES)},
    ).scalar_one()
    return f"{as_of.instant.isoformat()}|{versions}"


def _made_for(conn: Connection, state: str) -> str | None:
    """The key a cached temporary table was made for (``state`` holds it), or None."""
    _checked(state)
    if conn.execute(sa.text(f"SELECT to_regclass('pg_temp.{state}')")).scalar() is None:
        return None
    key = conn.execute(sa.text(f"SELECT key FROM pg_temp.{state}")).scalar()
    return None if key is None else str(key)


def _remember(conn: Connection, state: str, key: str) -> None:
    _checked(state)
    conn.execute(sa.text(f"DROP TABLE IF EXISTS {state}"))
    conn.execute(
        sa.text(f"CREATE TEMP TABLE {state} ON COMMIT DROP AS SELECT CAST(:k AS text) AS key"),
        {"k": key},
    )


def create_parcel_facts(conn: Connection, as_of: AsOf) -> None:
    """Temporary ``_zf_parcel`` (id, number, pt, area, fp, gfa, buildings) as of T.

    One set-based pass over the base tables (PostgreSQL may run it with parallel
    workers: it reads no temporary table): every parcel with its area, its point on
    surface and the totals of the buildings carrying its cadastral number. Buildings
    whose number matches no parcel (or have none) are then added to the parcel
    holding their point on surface; there are usually few. A GiST index on the
    points serves every placement in zones or units.

    The table lives until the end of the transaction and is made once for an
    instant: a zone analysis and indicators computed in the same transaction for
    the same instant share it (the parcels' and buildings' data-version counters
    must not have moved in between, or it is made again).
    """
    key = _facts_key(conn, as_of)
    if _made_for(conn, "_zf_state") == key:
        return
    conn.execute(sa.text("DROP TABLE IF EXISTS _zf_state"))
    conn.execute(sa.text("DROP TABLE IF EXISTS _zf_parcel"))
    with local_settings(conn, work_mem=BIG_WORK_MEM):
        conn.execute(
            sa.text(
                "CREATE TEMP TABLE _zf_parcel ON COMMIT DROP AS "
                "SELECT p.id, p.cadastral_number, ST_PointOnSurface(p.geom) AS pt, "
                "ST_Area(p.geom) AS area, coalesce(bn.fp, 0) AS fp, coalesce(bn.gfa, 0) AS gfa, "
                "coalesce(bn.buildings, 0) AS buildings "
                "FROM cadastre.parcel p LEFT JOIN ("
                f"SELECT b.cadastral_number, sum({BUILDING_FP}) AS fp, sum({BUILDING_GFA}) AS gfa, "
                "count(*) AS buildings FROM cadastre.building b "
                f"WHERE b.cadastral_number IS NOT NULL AND {as_of_filter('b')} "
                "GROUP BY b.cadastral_number) bn ON bn.cadastral_number = p.cadastral_number "
                f"WHERE p.geom IS NOT NULL AND {as_of_filter('p')}"
            ),
            as_of.params(),
        )
        conn.execute(
            sa.text(
                "WITH loose AS ("
                f"SELECT b.id, b.geom, {BUILDING_FP} AS fp, {BUILDING_GFA} AS gfa "
                f"FROM cadastre.building b WHERE b.geom IS NOT NULL AND {as_of_filter('b')} "
                "AND (b.cadastral_number IS NULL OR NOT EXISTS (SELECT 1 FROM _zf_parcel n "
                "WHERE n.cadastral_number = b.cadastral_number))), "
                "placed AS (SELECT DISTINCT ON (l.id) l.id, pa.id AS parcel_id, l.fp, l.gfa "
                "FROM loose l JOIN cadastre.parcel pa ON pa.geom && l.geom "
                f"AND ST_Intersects(pa.geom, ST_PointOnSurface(l.geom)) AND {as_of_filter('pa')} "
                "ORDER BY l.id, pa.id) "
                "UPDATE _zf_parcel p SET fp = p.fp + coalesce(x.fp, 0), "
                "gfa = p.gfa + coalesce(x.gfa, 0), buildings = p.buildings + x.n "
                "FROM (SELECT parcel_id, sum(fp) AS fp, sum(gfa) AS gfa, count(*) AS n "
                "FROM placed GROUP BY parcel_id) x WHERE p.id = x.parcel_id"
            ),
            as_of.params(),
        )
    conn.execute(sa.text("CREATE INDEX ON _zf_parcel USING gist (pt)"))
    conn.execute(sa.text("ANALYZE _zf_parcel"))
    _remember(conn, "_zf_state", key)


def zone_candidates(cte: str = "zone_rule", suffix: str = "") -> str:
    """Zones whose plan is in force on the day (or every zone of one chosen plan).

    Parameters are ``:as_of{suffix}``, ``:as_of_date{suffix}`` and ``:plan_id{suffix}``,
    so one statement can hold two plan states (plan comparison).
    """
    _checked(cte, f"p{suffix}")
    as_of = f"as_of{suffix}"
    return f"""
{cte} AS MATERIALIZED (
    SELECT z.id AS zone_id, z.plan_id, z.utr_code, z.geom, pl.title AS plan_title,
           pl.plan_type, r.pot_max::float8 AS pot_max, r.cut_max::float8 AS cut_max,
           r.height_max_m::float8 AS height_max_m,
           CASE pl.plan_type WHEN 'PUD' THEN 0 WHEN 'PUZ' THEN 1 ELSE 2 END AS precedence,
           pl.valid_from AS plan_from
    FROM urbanism.zone z
    JOIN urbanism.plan pl ON pl.id = z.plan_id
    LEFT JOIN urbanism.regulation r ON r.id = z.regulation_id
    WHERE {as_of_filter("z", as_of)} AND {_in_force(suffix)}
)"""


def _in_force(suffix: str = "") -> str:
    """Zone ``z`` of plan ``pl`` is a candidate: its plan is in force, or it is the chosen one."""
    _checked(f"p{suffix}")
    day, plan = f"as_of_date{suffix}", f"plan_id{suffix}"
    return f"""coalesce(
        (CAST(:{plan} AS bigint) IS NULL
         AND pl.status IN ('approved', 'expired')
         AND (pl.valid_from IS NULL OR pl.valid_from <= :{day})
         AND (pl.valid_to IS NULL OR pl.valid_to >= :{day}))
        OR z.plan_id = CAST(:{plan} AS bigint), false)"""


def pug_in_force(conn: Connection, as_of: AsOf) -> int | None:
    """The newest approved PUG in force on the day, or None."""
    found = conn.execute(
        sa.text(
            "SELECT id FROM urbanism.plan WHERE plan_type = 'PUG' "
            "AND status IN ('approved', 'expired') "
            "AND (valid_from IS NULL OR valid_from <= :d) AND (valid_to IS NULL OR valid_to >= :d) "
            "ORDER BY valid_from DESC NULLS LAST, id DESC LIMIT 1"
        ),
        {"d": as_of.day},
    ).scalar()
    return None if found is None else int(found)


UNIT_KEYS = {"utr": "z.utr_code", "zones": "z.id::text"}

# Let PostgreSQL share the big joins with its parallel workers: the zones are a small
# table, but each zone stands for hundreds of index probes and point tests.
PARALLEL = {
    "min_parallel_table_scan_size": "0",
    "parallel_setup_cost": "0",
    "parallel_tuple_cost": "0.01",
}


def unit_zones_sql(units: str) -> str:
    """Zones ``z`` of plan ``:unit_plan`` as of ``:as_of`` with their unit key (base tables)."""
    return (
        f"SELECT z.id, z.geom, {UNIT_KEYS[units]} AS unit_key FROM urbanism.zone z "
        f"WHERE z.plan_id = CAST(:unit_plan AS bigint) AND {as_of_filter('z')} "
        "AND NOT ST_IsEmpty(z.geom)"
    )


def create_parcel_placement(
    conn: Connection, as_of: AsOf, plan_id: int | None, unit_plan_id: int | None, units: str
) -> None:
    """Temporary ``_zf_placed``: every parcel in its zone and in its unit, with its facts.

    A parcel's zone is the zone analysis's (the zones of the plans in force, or of
    ``plan_id``; the best rank where they overlap; ``zone_id`` is NULL when none holds
    the parcel); its unit is the indicators' (``units`` = ``utr`` or ``zones`` of plan
    ``unit_plan_id``; the smallest key in code-point order on a shared edge). Both come
    from one join of the union of the two zone sets (usually the same zones) with the
    parcels, zone by zone over the parcels' GiST index: each zone is prepared once and
    each candidate parcel costs its point on surface and one point-in-polygon test. The
    join reads base tables only, so PostgreSQL shares it among its parallel workers;
    one sort orders each parcel's zones and a window takes its unit. The built totals
    follow ``create_parcel_facts``'s rules. Made once per transaction for the same
    instant, data, plans and units, so a zone analysis and UTR indicators computed
    together place the parcels once. ``_zf_zone`` keeps the analysis's zones (rank,
    ``utr_group``, rules; no geometry).
    """
    if units not in UNIT_KEYS:
        raise ValueError(f"units {units!r} are not made of zones")
    key = f"{_facts_key(conn, as_of)}|{plan_id}|{unit_plan_id}|{units}"
    if _made_for(conn, "_zf_placed_state") == key:
        return
    conn.execute(
        sa.text("DROP TABLE IF EXISTS _zf_placed_state, _zf_placed, _zf_zone, _zf_bn CASCADE")
    )
    params = {**as_of.params(), "plan_id": plan_id, "unit_plan": unit_plan_id}
    conn.execute(
        sa.text(
            f"CREATE TEMP TABLE _zf_zone ON COMMIT DROP AS WITH {zone_candidates()} "
            "SELECT zone_id, plan_id, utr_code, plan_title, plan_type, pot_max, cut_max, "
            "height_max_m, row_number() OVER ("
            "ORDER BY precedence, plan_from DESC NULLS LAST, zone_id) AS rank, "
            "dense_rank() OVER (ORDER BY plan_id, utr_code) AS utr_group FROM zone_rule"
        ),
        params,
    )
    conn.execute(sa.text("ALTER TABLE _zf_zone ADD PRIMARY KEY (zone_id); ANALYZE _zf_zone"))
    zones = (
        "SELECT z.id AS zone_id, z.geom, "
        f"{_in_force()} AS in_analysis, "
        "CASE pl.plan_type WHEN 'PUD' THEN 0 WHEN 'PUZ' THEN 1 ELSE 2 END AS precedence, "
        "pl.valid_from AS plan_from, CASE WHEN z.plan_id = CAST(:unit_plan AS bigint) "
        f"THEN {UNIT_KEYS[units]} END AS unit_key "
        "FROM urbanism.zone z JOIN urbanism.plan pl ON pl.id = z.plan_id "
        f"WHERE {as_of_filter('z')} AND ({_in_force()} OR z.plan_id = CAST(:unit_plan AS bigint))"
    )
    order = "z.in_analysis DESC, z.precedence, z.plan_from DESC NULLS LAST, z.zone_id"
    with local_settings(conn, work_mem=BIG_WORK_MEM, **PARALLEL):
        conn.execute(
            sa.text(
                "CREATE TEMP TABLE _zf_bn ON COMMIT DROP AS "
                f"SELECT b.cadastral_number, sum({BUILDING_FP}) AS fp, "
                f"sum({BUILDING_GFA}) AS gfa, count(*) AS buildings FROM cadastre.building b "
                f"WHERE b.cadastral_number IS NOT NULL AND {as_of_filter('b')} "
                "GROUP BY b.cadastral_number"
            ),
            params,
        )
        conn.execute(sa.text("ANALYZE _zf_bn"))
        conn.execute(
            sa.text(
                "CREATE TEMP TABLE _zf_placed ON COMMIT DROP AS "
                "SELECT x.parcel_id, x.cadastral_number, x.zone_id, zz.utr_group, zz.plan_id, "
                "zz.utr_code, zz.pot_max, zz.cut_max, zz.height_max_m, x.unit_key, x.area, "
                "coalesce(bn.fp, 0) AS fp, coalesce(bn.gfa, 0) AS gfa, "
                "coalesce(bn.buildings, 0) AS buildings FROM ("
                "SELECT DISTINCT ON (p.id) p.id AS parcel_id, p.cadastral_number, "
                "CASE WHEN z.in_analysis THEN z.zone_id END AS zone_id, "
                'min(z.unit_key COLLATE "C") OVER w AS unit_key, ST_Area(p.geom) AS area '
                f"FROM ({zones}) z JOIN cadastre.parcel p ON p.geom && z.geom "
                "AND ST_Intersects(z.geom, ST_PointOnSurface(p.geom)) "
                f"WHERE p.geom IS NOT NULL AND {as_of_filter('p')} "
                f"WINDOW w AS (PARTITION BY p.id ORDER BY {order}, ST_Area(p.geom) "
                "ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) "
                # The area closes the sort key (it never decides: zone ids are unique) so
                # the workers compute it and the parcels' polygons stay where they are.
                f"ORDER BY p.id, {order}, ST_Area(p.geom)) x "
                "LEFT JOIN _zf_zone zz ON zz.zone_id = x.zone_id "
                "LEFT JOIN _zf_bn bn ON bn.cadastral_number = x.cadastral_number"
            ),
            params,
        )
        # Buildings whose number matches no parcel (or that have none) count on the
        # parcel holding their point on surface.
        loose = (
            f"SELECT b.id, b.geom, {BUILDING_FP} AS fp, {BUILDING_GFA} AS gfa "
            f"FROM cadastre.building b WHERE b.geom IS NOT NULL AND {as_of_filter('b')} AND "
        )
        conn.execute(
            sa.text(
                f"CREATE TEMP TABLE _zf_loose ON COMMIT DROP AS {loose} "
                "b.cadastral_number IS NULL UNION ALL "
                f"{loose} b.cadastral_number IS NOT NULL AND NOT EXISTS (SELECT 1 "
                "FROM cadastre.parcel n WHERE n.cadastral_number = b.cadastral_number "
                f"AND n.geom IS NOT NULL AND {as_of_filter('n')})"
            ),
            params,
        )
    conn.execute(
        sa.text(
            "WITH placed AS (SELECT DISTINCT ON (l.id) l.id, pa.id AS parcel_id, l.fp, l.gfa "
            "FROM _zf_loose l JOIN cadastre.parcel pa ON pa.geom && l.geom "
            f"AND ST_Intersects(pa.geom, ST_PointOnSurface(l.geom)) AND {as_of_filter('pa')} "
            "ORDER BY l.id, pa.id) "
            "UPDATE _zf_placed p SET fp = p.fp + coalesce(x.fp, 0), "
            "gfa = p.gfa + coalesce(x.gfa, 0), buildings = p.buildings + x.n "
            "FROM (SELECT parcel_id, sum(fp) AS fp, sum(gfa) AS gfa, count(*) AS n "
            "FROM placed GROUP BY parcel_id) x WHERE p.parcel_id = x.parcel_id"
        ),
        params,
    )
    conn.execute(sa.text("DROP TABLE _zf_loose; ANALYZE _zf_placed"))
    _remember(conn, "_zf_placed_state", key)


def create_parcel_zones(
    conn: Connection, as_of: AsOf, plan_id: int | None, suffix: str = ""
) -> str:
    """Temporary ``_zf_parcel_zone{suffix}``: each parcel's zone, rules and facts; its name.

    ``_zf_zone{suffix}`` holds the candidate zones with their ``rank`` and ``utr_group``
    (one number per plan and UTR code, so the analyses group by an integer). Without a
    suffix, the placement is ``create_parcel_placement``'s (with the UTRs of the PUG in
    force, which indicators on UTRs share); with one (a plan comparison's two sides),
    a placement of its own.

    The join runs zone by zone over the GiST index of the parcels' points, so each
    zone's polygon is prepared once (PostGIS caches it while the same zone repeats)
    and every point costs one cheap point-in-polygon test; zones need no cutting.
    Where zones overlap (plans over plans), the zone with the best ``rank``
    (PUD, PUZ, PUG, then the newer plan, then the smaller id) keeps the parcel.
    """
    _checked(f"p{suffix}")
    if not suffix:
        create_parcel_placement(conn, as_of, plan_id, pug_in_force(conn, as_of), "utr")
        conn.execute(sa.text("DROP VIEW IF EXISTS _zf_parcel_zone"))
        conn.execute(
            sa.text(
                "CREATE TEMP VIEW _zf_parcel_zone AS SELECT parcel_id, zone_id, utr_group, "
                "plan_id, utr_code, pot_max, cut_max, height_max_m, area, fp, gfa "
                "FROM _zf_placed WHERE zone_id IS NOT NULL"
            )
        )
        return "_zf_parcel_zone"
    zone, placed = f"_zf_zone{suffix}", f"_zf_parcel_zone{suffix}"
    conn.execute(sa.text(f"DROP TABLE IF EXISTS {placed}, {zone}"))
    params = {
        f"as_of{suffix}": as_of.instant,
        f"as_of_date{suffix}": as_of.day,
        f"plan_id{suffix}": plan_id,
    }
    conn.execute(
        sa.text(
            f"CREATE TEMP TABLE {zone} ON COMMIT DROP AS "
            f"WITH {zone_candidates('zone_rule', suffix)} SELECT *, row_number() OVER ("
            "ORDER BY precedence, plan_from DESC NULLS LAST, zone_id) AS rank, "
            "dense_rank() OVER (ORDER BY plan_id, utr_code) AS utr_group FROM zone_rule"
        ),
        params,
    )
    conn.execute(sa.text(f"ANALYZE {zone}"))
    with local_settings(conn, work_mem=BIG_WORK_MEM):
        conn.execute(
            sa.text(
                f"CREATE TEMP TABLE {placed} ON COMMIT DROP AS "
                "SELECT DISTINCT ON (p.id) p.id AS parcel_id, z.zone_id, z.utr_group, z.plan_id, "
                "z.utr_code, z.pot_max, z.cut_max, z.height_max_m, "
                f"p.area, p.fp, p.gfa FROM {zone} z JOIN _zf_parcel p "
                "ON z.geom && p.pt AND ST_Intersects(z.geom, p.pt) ORDER BY p.id, z.rank"
            )
        )
    return placed
