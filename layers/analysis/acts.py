"""The register of acts (CU, AC, AD), read through SQL only.

``layers`` may not import ``permits`` (the one-way rule), and the register may not
exist yet in a deployment that has not imported acts. So the analyses read the acts
table by name, probe for it and its columns first, and report plainly when it is not
there instead of failing: the other figures still compute.

An act counts in the year of its issue date (acts only requested, or cancelled before
issue, have none) and lies on its primary parcel (or, when none is marked, its first
linked parcel), so every act counts once.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

ACT_COLUMNS = ("id", "kind", "issued_on", "requested_on", "status")
LINK_COLUMNS = ("act_id", "parcel_id", "is_primary")


@dataclass(frozen=True)
class ActsSource:
    """Where the register lives (the permits schema; tests point it elsewhere)."""

    schema: str = "permits"
    acts: str = "act"
    links: str = "act_parcel"

    def __post_init__(self) -> None:
        for name in (self.schema, self.acts, self.links):
            if not name.isidentifier() or not name.islower():
                raise ValueError(f"bad identifier {name!r}")

    @property
    def acts_table(self) -> str:
        return f"{self.schema}.{self.acts}"

    @property
    def links_table(self) -> str:
        return f"{self.schema}.{self.links}"


@dataclass(frozen=True)
class ActsState:
    """Whether the register can be read, and the message to show when it cannot."""

    source: ActsSource
    ok: bool
    message: str


def probe_acts(conn: Connection, source: ActsSource) -> ActsState:
    """Check that the acts and link tables exist with the columns the analyses read."""
    for table, needed in ((source.acts, ACT_COLUMNS), (source.links, LINK_COLUMNS)):
        found = set(
            conn.execute(
                sa.text(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = :s AND table_name = :t"
                ),
                {"s": source.schema, "t": table},
            ).scalars()
        )
        if not found:
            return ActsState(
                source,
                False,
                f"skipped: the acts register {source.schema}.{table} does not exist yet "
                "(upgrade the database and import the register of acts)",
            )
        missing = [c for c in needed if c not in found]
        if missing:
            return ActsState(
                source,
                False,
                f"skipped: {source.schema}.{table} lacks column(s) {', '.join(missing)}",
            )
    return ActsState(source, True, f"read from {source.acts_table}")


def acts_per_parcel_sql(source: ActsSource | None = None) -> str:
    """CTE ``act_on_parcel(act_id, parcel_id, kind, year, days_to_issue)`` for issued acts.

    Uses ``parcel`` (the parcels as of T, e.g. ``basis``'s ``_zf_parcel``); acts on parcels
    of another period fall away with their parcel. Identifiers come from ``ActsSource``
    (checked identifiers, never user text).
    """
    source = source or ActsSource()
    return f"""
act_on_parcel AS (
    SELECT DISTINCT ON (a.id) a.id AS act_id, l.parcel_id, a.kind,
           extract(year FROM a.issued_on)::int AS year,
           CASE WHEN a.requested_on IS NOT NULL AND a.issued_on >= a.requested_on
                THEN (a.issued_on - a.requested_on) END AS days_to_issue
    FROM {source.acts_table} a
    JOIN {source.links_table} l ON l.act_id = a.id
    JOIN parcel p ON p.id = l.parcel_id
    WHERE a.issued_on IS NOT NULL AND a.status <> 'requested'
    ORDER BY a.id, l.is_primary DESC, l.parcel_id
)"""
