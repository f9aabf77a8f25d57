"""Comparison of two plan versions: which parcels changed zone or rules, and by how much.

A plan state is either one plan (e.g. the PUG and the PUZ that amends it, or a draft
against the approved plan) or "the plans in force on a date" (the zoning as it stood
before and after an amendment). Every parcel of the city as of the later date is
placed in its zone under both states (by its point on surface, as in the zone analysis)
and its building capacity (CUT max × parcel area) computed under each; the answer lists
the parcels whose UTR code or rules differ, and sums the change per transition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_core.errors import InvalidParameter
from layers.analysis.basis import AsOf, create_parcel_facts, create_parcel_zones

MAX_LISTED = 10_000


@dataclass(frozen=True)
class PlanState:
    """One side of a comparison: a plan id, or the plans in force on a date."""

    as_of: AsOf
    plan_id: int | None = None

    def params(self, suffix: str) -> dict[str, Any]:
        return {
            f"as_of{suffix}": self.as_of.instant,
            f"as_of_date{suffix}": self.as_of.day,
            f"plan_id{suffix}": self.plan_id,
        }

    def describe(self) -> dict[str, Any]:
        return {"plan_id": self.plan_id, "as_of": self.as_of.instant.isoformat()}


def _statement() -> str:
    return """
WITH parcel_fact AS (SELECT * FROM _zf_parcel),
pz_a AS (SELECT * FROM _zf_parcel_zone_a),
pz_b AS (SELECT * FROM _zf_parcel_zone_b),
compared AS (
    SELECT pf.id AS parcel_id, pf.cadastral_number, pf.area, pf.gfa,
           a.zone_id AS zone_a, a.utr_code AS utr_a, a.pot_max AS pot_max_a,
           a.cut_max AS cut_max_a, a.height_max_m AS height_a,
           b.zone_id AS zone_b, b.utr_code AS utr_b, b.pot_max AS pot_max_b,
           b.cut_max AS cut_max_b, b.height_max_m AS height_b,
           a.cut_max * pf.area AS capacity_a, b.cut_max * pf.area AS capacity_b
    FROM parcel_fact pf
    LEFT JOIN pz_a a ON a.parcel_id = pf.id
    LEFT JOIN pz_b b ON b.parcel_id = pf.id
    WHERE a.parcel_id IS NOT NULL OR b.parcel_id IS NOT NULL
)
SELECT * FROM compared
WHERE utr_a IS DISTINCT FROM utr_b
   OR pot_max_a IS DISTINCT FROM pot_max_b
   OR cut_max_a IS DISTINCT FROM cut_max_b
   OR height_a IS DISTINCT FROM height_b
ORDER BY cadastral_number
"""


def compare_plans(
    conn: Connection, before: PlanState, after: PlanState, *, parcels_as_of: AsOf | None = None
) -> dict[str, Any]:
    """Parcels whose zone or rules differ between ``before`` and ``after``.

    Parcels are taken as of ``parcels_as_of`` (default: the later of the two dates).
    """
    if before == after:
        raise InvalidParameter("the two plan states are the same", locator="other_plan")
    when = parcels_as_of or max(before.as_of, after.as_of, key=lambda a: a.instant)
    create_parcel_facts(conn, when)
    create_parcel_zones(conn, before.as_of, before.plan_id, "_a")
    create_parcel_zones(conn, after.as_of, after.plan_id, "_b")
    rows = conn.execute(sa.text(_statement())).mappings().all()
    parcels = [_parcel(row) for row in rows]
    return {
        "before": before.describe(),
        "after": after.describe(),
        "parcels_as_of": when.instant.isoformat(),
        "changed_parcels": len(parcels),
        "capacity_change": _total(p["capacity_change"] for p in parcels),
        "transitions": _transitions(parcels),
        "parcels": parcels[:MAX_LISTED],
        "truncated": len(parcels) > MAX_LISTED,
    }


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _parcel(row: Any) -> dict[str, Any]:
    capacity_a, capacity_b = _num(row["capacity_a"]), _num(row["capacity_b"])
    change = (capacity_b or 0.0) - (capacity_a or 0.0)
    return {
        "cadastral_number": row["cadastral_number"],
        "area": _num(row["area"]),
        "floor_area": _num(row["gfa"]),
        "utr_before": row["utr_a"],
        "utr_after": row["utr_b"],
        "pot_max_before": _num(row["pot_max_a"]),
        "pot_max_after": _num(row["pot_max_b"]),
        "cut_max_before": _num(row["cut_max_a"]),
        "cut_max_after": _num(row["cut_max_b"]),
        "height_max_before": _num(row["height_a"]),
        "height_max_after": _num(row["height_b"]),
        "capacity_before": capacity_a,
        "capacity_after": capacity_b,
        "capacity_change": change,
    }


def _total(values: Any) -> float:
    return float(sum(values))


def _transitions(parcels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Changed parcels grouped by (UTR before, UTR after), largest capacity change first."""
    groups: dict[tuple[str | None, str | None], dict[str, Any]] = {}
    for parcel in parcels:
        key = (parcel["utr_before"], parcel["utr_after"])
        group = groups.setdefault(
            key, {"utr_before": key[0], "utr_after": key[1], "parcels": 0, "capacity_change": 0.0}
        )
        group["parcels"] += 1
        group["capacity_change"] += parcel["capacity_change"]
    return sorted(groups.values(), key=lambda g: -abs(g["capacity_change"]))
