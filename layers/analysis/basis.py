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


# Parcels as of T with their area, representative point and built totals.
PARCEL_FACTS = f"""
parcel AS MATERIALIZED (
    SELECT p.id, p.cadastral_number, p.geom, ST_Area(p.geom) AS area,
           ST_PointOnSurface(p.geom) AS pt
    FROM cadastre.parcel p
    WHERE p.geom IS NOT NULL AND {as_of_filter("p")}
),
building AS MATERIALIZED (
    SELECT b.id, b.cadastral_number, b.geom,
           coalesce(b.footprint_area, ST_Area(b.geom)) AS fp,
           coalesce(b.floor_area,
                    coalesce(b.footprint_area, ST_Area(b.geom)) * greatest(coalesce(b.levels, 1), 1)
           ) AS gfa
    FROM cadastre.building b
    WHERE {as_of_filter("b")}
),
building_by_number AS (
    SELECT b.id AS building_id, pa.id AS parcel_id, b.fp, b.gfa
    FROM building b JOIN parcel pa ON pa.cadastral_number = b.cadastral_number
),
building_by_place AS (
    SELECT DISTINCT ON (b.id) b.id AS building_id, pa.id AS parcel_id, b.fp, b.gfa
    FROM building b
    JOIN cadastre.parcel pa ON pa.geom && b.geom
        AND ST_Intersects(pa.geom, ST_PointOnSurface(b.geom)) AND {as_of_filter("pa")}
    WHERE b.geom IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM parcel n WHERE n.cadastral_number = b.cadastral_number)
    ORDER BY b.id, pa.id
),
built AS (
    SELECT parcel_id, sum(fp) AS fp, sum(gfa) AS gfa, count(*) AS buildings
    FROM (SELECT * FROM building_by_number UNION ALL SELECT * FROM building_by_place) x
    GROUP BY parcel_id
),
parcel_fact AS (
    SELECT pa.id, pa.cadastral_number, pa.geom, pa.pt, pa.area,
           coalesce(bt.fp, 0) AS fp, coalesce(bt.gfa, 0) AS gfa,
           coalesce(bt.buildings, 0) AS buildings
    FROM parcel pa LEFT JOIN built bt ON bt.parcel_id = pa.id
)"""


def zone_candidates(cte: str = "zone_rule", suffix: str = "") -> str:
    """Zones whose plan is in force on the day (or every zone of one chosen plan).

    Parameters are ``:as_of{suffix}``, ``:as_of_date{suffix}`` and ``:plan_id{suffix}``,
    so one statement can hold two plan states (plan comparison).
    """
    _checked(cte, f"p{suffix}")
    as_of, day, plan = f"as_of{suffix}", f"as_of_date{suffix}", f"plan_id{suffix}"
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
    WHERE {as_of_filter("z", as_of)}
      AND (
        (CAST(:{plan} AS bigint) IS NULL
         AND pl.status IN ('approved', 'expired')
         AND (pl.valid_from IS NULL OR pl.valid_from <= :{day})
         AND (pl.valid_to IS NULL OR pl.valid_to >= :{day}))
        OR z.plan_id = CAST(:{plan} AS bigint)
      )
)"""


PIECE_VERTICES = 64


def create_parcel_facts(conn: Connection, as_of: AsOf) -> None:
    """Temporary ``_zf_parcel`` (id, number, pt, area, fp, gfa): the parcels as of T."""
    conn.execute(sa.text("DROP TABLE IF EXISTS _zf_parcel"))
    conn.execute(
        sa.text(
            f"CREATE TEMP TABLE _zf_parcel ON COMMIT DROP AS WITH {PARCEL_FACTS} "
            "SELECT id, cadastral_number, pt, area, fp, gfa FROM parcel_fact"
        ),
        as_of.params(),
    )
    conn.execute(sa.text("ALTER TABLE _zf_parcel ADD PRIMARY KEY (id)"))
    conn.execute(sa.text("ANALYZE _zf_parcel"))


def create_parcel_zones(
    conn: Connection, as_of: AsOf, plan_id: int | None, suffix: str = ""
) -> str:
    """Temporary ``_zf_parcel_zone{suffix}``: each parcel's zone and rules; its name.

    The candidate zones are cut into pieces of at most ``PIECE_VERTICES`` vertices under
    a GiST index, so placing a point costs a small polygon test, not a whole zone's;
    the lateral probe per parcel keeps the plan an index lookup whatever the estimates.
    """
    _checked(f"p{suffix}")
    zone, piece, placed = f"_zf_zone{suffix}", f"_zf_piece{suffix}", f"_zf_parcel_zone{suffix}"
    conn.execute(sa.text(f"DROP TABLE IF EXISTS {placed}, {piece}, {zone}"))
    params = {
        f"as_of{suffix}": as_of.instant,
        f"as_of_date{suffix}": as_of.day,
        f"plan_id{suffix}": plan_id,
        "v": PIECE_VERTICES,
    }
    conn.execute(
        sa.text(
            f"CREATE TEMP TABLE {zone} ON COMMIT DROP AS "
            f"WITH {zone_candidates('zone_rule', suffix)} SELECT * FROM zone_rule"
        ),
        params,
    )
    conn.execute(
        sa.text(
            f"CREATE TEMP TABLE {piece} ON COMMIT DROP AS "
            f"SELECT zone_id, ST_Subdivide(geom, :v) AS geom FROM {zone}"
        ),
        params,
    )
    conn.execute(sa.text(f"CREATE INDEX ON {piece} USING gist (geom)"))
    conn.execute(sa.text(f"ALTER TABLE {zone} ADD PRIMARY KEY (zone_id)"))
    conn.execute(sa.text(f"ANALYZE {piece}; ANALYZE {zone}"))
    conn.execute(
        sa.text(
            f"CREATE TEMP TABLE {placed} ON COMMIT DROP AS "
            "SELECT p.id AS parcel_id, z.* FROM _zf_parcel p CROSS JOIN LATERAL ("
            "SELECT z.zone_id, z.plan_id, z.utr_code, z.plan_title, z.plan_type, z.pot_max, "
            f"z.cut_max, z.height_max_m FROM {piece} pc JOIN {zone} z ON z.zone_id = pc.zone_id "
            "WHERE pc.geom && p.pt AND ST_Intersects(pc.geom, p.pt) "
            "ORDER BY z.precedence, z.plan_from DESC NULLS LAST, z.zone_id LIMIT 1) z"
        )
    )
    return placed
