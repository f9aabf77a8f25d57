"""Zone analysis for planners: what is built in each UTR against what its rules allow.

For each UTR of the plans in force on a date (or of one chosen plan, draft or not):
parcel count, total and median parcel area, built footprint and gross floor area,
the actual POT and CUT of the zone and their distribution over its parcels, the
parcels above the zone's maxima, the floor area still allowed (remaining capacity) and
the acts issued per year. One SQL statement builds the whole answer; Python only shapes
it. The facts and the rules of assignment are those of ``layers.analysis.basis``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_core.errors import InvalidParameter, NotFound
from layers.analysis.acts import ActsSource, acts_per_parcel_sql, probe_acts
from layers.analysis.basis import (
    BIG_WORK_MEM,
    AsOf,
    create_parcel_zones,
    local_settings,
)

GROUPINGS = ("utr", "zone")
POT_BINS = 10  # 0-10 %, ..., 90-100 %, and one more bin for parcels above 100 %
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


@dataclass(frozen=True)
class ZoneQuery:
    """What to analyse: the date, an optional plan, per UTR code or per zone polygon."""

    as_of: AsOf
    plan_id: int | None = None
    by: str = "utr"

    def __post_init__(self) -> None:
        if self.by not in GROUPINGS:
            raise InvalidParameter(f"by must be one of {', '.join(GROUPINGS)}", locator="by")


def _group_column(by: str) -> str:
    """The integer the parcels are grouped by: the zone, or the plan's UTR code."""
    return "zone_id" if by == "zone" else "utr_group"


def _histogram_sql() -> str:
    """Parcels per POT bin of 10 % (the last bin holds parcels built over 100 %)."""
    counts = ", ".join(f"count(*) FILTER (WHERE pz.pot_bin = {k})" for k in range(POT_BINS + 1))
    return f"ARRAY[{counts}]"


def _statement(by: str) -> str:
    group = _group_column(by)
    zone_id = "l.grp" if by == "zone" else "NULL::bigint"
    return f"""{_measured_cte()},
agg AS (
    SELECT pz.{group} AS grp,
           max(pz.pot_max) AS pot_max, max(pz.cut_max) AS cut_max,
           max(pz.height_max_m) AS height_max_m,
           count(*) AS parcel_count,
           sum(pz.area) AS total_area,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY pz.area) AS median_area,
           sum(pz.fp) AS footprint,
           sum(pz.gfa) AS floor_area,
           CASE WHEN sum(pz.area) > 0 THEN sum(pz.fp) / sum(pz.area) * 100 END AS pot,
           CASE WHEN sum(pz.area) > 0 THEN sum(pz.gfa) / sum(pz.area) END AS cut,
           percentile_cont(CAST(:quantiles AS float8[])) WITHIN GROUP (ORDER BY pz.pot)
               AS pot_quantiles,
           percentile_cont(CAST(:quantiles AS float8[])) WITHIN GROUP (ORDER BY pz.cut)
               AS cut_quantiles,
           count(*) FILTER (WHERE pz.pot > pz.pot_max) AS over_pot,
           count(*) FILTER (WHERE pz.cut > pz.cut_max) AS over_cut,
           count(*) FILTER (WHERE pz.pot > pz.pot_max OR pz.cut > pz.cut_max) AS over_any,
           sum(greatest(pz.cut_max * pz.area - pz.gfa, 0)) AS remaining_floor_area,
           sum(greatest(pz.pot_max / 100 * pz.area - pz.fp, 0)) AS remaining_footprint,
           {_histogram_sql()} AS pot_histogram
    FROM measured pz
    GROUP BY pz.{group}
),
label AS (
    SELECT DISTINCT ON ({group}) {group} AS grp, plan_id, plan_title, plan_type, utr_code
    FROM _zf_zone ORDER BY {group}
)
SELECT l.plan_id, l.plan_title, l.plan_type, l.utr_code, {zone_id} AS zone_id, agg.*
FROM agg JOIN label l ON l.grp = agg.grp
ORDER BY l.plan_id, l.utr_code{", l.grp" if by == "zone" else ""}
"""


def analyse_zones(
    conn: Connection, query: ZoneQuery, acts: ActsSource | None = None
) -> dict[str, Any]:
    """The zone analysis as a JSON-ready document (``zones`` list plus the context)."""
    if query.plan_id is not None:
        _check_plan(conn, query.plan_id)
    params: dict[str, Any] = {**query.as_of.params(), "plan_id": query.plan_id}
    create_parcel_zones(conn, query.as_of, query.plan_id)
    with local_settings(conn, work_mem=BIG_WORK_MEM):
        rows = _zone_rows(conn, query, params)
    acts_state = probe_acts(conn, acts or ActsSource())
    per_year = _acts_per_year(conn, query, params, acts_state.source) if acts_state.ok else {}
    zones = []
    for row in rows:
        key = _row_key(row, query.by)
        record = _zone_record(row)
        record["pot_histogram"] = [int(n) for n in row.pot_histogram]
        record["acts_per_year"] = per_year.get(key, {}) if acts_state.ok else None
        zones.append(record)
    return {
        "as_of": query.as_of.instant.isoformat(),
        "plan_id": query.plan_id,
        "by": query.by,
        "pot_histogram_bins": [f"{10 * i}-{10 * (i + 1)}" for i in range(POT_BINS)] + [">100"],
        "quantiles": list(QUANTILES),
        "acts": acts_state.message,
        "zones": zones,
    }


def _check_plan(conn: Connection, plan_id: int) -> None:
    found = conn.execute(
        sa.text("SELECT 1 FROM urbanism.plan WHERE id = :id"), {"id": plan_id}
    ).first()
    if found is None:
        raise NotFound(f"plan {plan_id} does not exist", locator="plan")


def _zone_rows(conn: Connection, query: ZoneQuery, params: Mapping[str, Any]) -> list[sa.Row[Any]]:
    statement = _statement(query.by)
    return list(conn.execute(sa.text(statement), {**params, "quantiles": list(QUANTILES)}))


def _row_key(row: Any, by: str) -> tuple[Any, ...]:
    return (row.plan_id, row.utr_code, row.zone_id if by == "zone" else None)


def _zone_record(row: Any) -> dict[str, Any]:
    def num(value: Any) -> float | None:
        return None if value is None else float(value)

    return {
        "plan_id": row.plan_id,
        "plan": row.plan_title,
        "plan_type": row.plan_type,
        "utr_code": row.utr_code,
        "zone_id": row.zone_id,
        "pot_max": num(row.pot_max),
        "cut_max": num(row.cut_max),
        "height_max_m": num(row.height_max_m),
        "parcel_count": int(row.parcel_count),
        "total_area": num(row.total_area),
        "median_area": num(row.median_area),
        "footprint": num(row.footprint),
        "floor_area": num(row.floor_area),
        "pot": num(row.pot),
        "cut": num(row.cut),
        "pot_quantiles": [num(v) for v in row.pot_quantiles or []],
        "cut_quantiles": [num(v) for v in row.cut_quantiles or []],
        "parcels_over_pot": int(row.over_pot),
        "parcels_over_cut": int(row.over_cut),
        "parcels_over_any": int(row.over_any),
        "remaining_floor_area": num(row.remaining_floor_area),
        "remaining_footprint": num(row.remaining_footprint),
    }


def _measured_cte() -> str:
    """The temporary facts (parcels placed in zones, with their areas) as CTEs."""
    return f"""
WITH parcel_zone AS NOT MATERIALIZED (SELECT * FROM _zf_parcel_zone),
parcel AS (SELECT parcel_id AS id FROM parcel_zone),
measured AS (
    SELECT pz.*,
           CASE WHEN pz.area > 0 THEN pz.fp / pz.area * 100 END AS pot,
           CASE WHEN pz.area > 0 THEN pz.gfa / pz.area END AS cut,
           CASE WHEN pz.area > 0 THEN least(floor(pz.fp / pz.area * 10), {POT_BINS})::int END
               AS pot_bin
    FROM parcel_zone pz
)"""


def _acts_per_year(
    conn: Connection, query: ZoneQuery, params: Mapping[str, Any], source: ActsSource
) -> dict[tuple[Any, ...], dict[str, int]]:
    """Acts issued per year on the parcels of each zone (by the act's primary parcel)."""
    zone = "pz.zone_id" if query.by == "zone" else "NULL::bigint"
    statement = f"""{_measured_cte()},
{acts_per_parcel_sql(source)}
SELECT pz.plan_id, pz.utr_code, {zone} AS zone_id, a.year, count(*) AS n
FROM parcel_zone pz JOIN act_on_parcel a ON a.parcel_id = pz.parcel_id
GROUP BY 1, 2, 3, 4
"""
    found: dict[tuple[Any, ...], dict[str, int]] = {}
    for row in conn.execute(sa.text(statement), dict(params)):
        years = found.setdefault((row.plan_id, row.utr_code, row.zone_id), {})
        years[str(int(row.year))] = int(row.n)
    return found
