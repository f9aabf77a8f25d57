"""Staging and the versioned merge into the core tables.

Features are COPYed into a temporary staging table shaped like the target (same column
types, so values compare exactly), checked there, then merged in a handful of set-based
statements inside the import's one transaction:

1. match each staged row to the current version of the same thing (natural key, then
   the alternative key such as the eTerra E2IDENTIFIER; zones without ids by content);
2. rows whose attributes and geometry equal the current version are left untouched;
3. the current versions of changed rows are closed (``valid_to = now()``) and the new
   versions inserted (``valid_from = now()``), carrying over fields the source lacks;
4. in ``replace`` mode, current rows of the same scope absent from the source are closed.

Geometries compare equal when identical or equal after snapping both to a millimetre
grid (a reprojection or a 3-decimal file must not make everything "changed"). Table
and column names come from the ``Target`` definitions in this package, never from input.

A first import (no current version in the scope) needs no matching at all: every staged
row is inserted with one plain ``INSERT … SELECT``. Big inserts drop the target's
secondary indexes and rebuild them after (one sorted build beats a million insertions);
the version rule of parcels stays checked by its statement trigger (migration 0007).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_core.bulk import drop_secondary_indexes, recreate_indexes

GEOMETRY_KEY = "geom"
SNAP_GRID = 0.001  # metres: equality tolerance of geometries in a metric storage CRS
BULK_ROWS = 50_000  # inserts this large rebuild the target's indexes instead


@dataclass(frozen=True)
class Target:
    """Where one kind of feature is merged and how versions of it are recognised."""

    kind: str
    table: str
    key: tuple[str, ...]  # natural key columns; GEOMETRY_KEY = the geometry itself
    attributes: tuple[str, ...]  # compared and written (besides key, scope and geometry)
    scope: Mapping[str, Any]  # fixed values: which current rows this import speaks for
    alt_key: str | None = None
    key_label: str = "key"
    twin: bool = True
    helpers: tuple[tuple[str, str], ...] = ()  # staging-only columns (name, SQL type)
    geometry_required: bool = True  # False: a feature without geometry is kept (a register row)

    @property
    def stage(self) -> str:
        return f"pg_temp.stage_{self.table.split('.')[1]}"

    @property
    def data_columns(self) -> tuple[str, ...]:
        keys = tuple(k for k in self.key if k != GEOMETRY_KEY)
        return (*keys, *(a for a in self.attributes if a not in keys))

    @property
    def geometry_columns(self) -> tuple[str, ...]:
        return ("geom", "geom_etrs89") if self.twin else ("geom",)


@dataclass
class MergeCounts:
    inserted: int = 0
    changed: int = 0
    unchanged: int = 0
    closed: int = 0
    by_row: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, int]:
        return {
            "inserted": self.inserted,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "closed": self.closed,
        }


def create_stage(conn: Connection, target: Target) -> None:
    """A temporary table with the target's column types, plus row number and label."""
    columns = ", ".join([*target.data_columns, *target.geometry_columns])
    conn.execute(sa.text(f"DROP TABLE IF EXISTS {target.stage}"))
    conn.execute(
        sa.text(
            f"CREATE TEMP TABLE {target.stage.split('.')[1]} ON COMMIT DROP AS "  # noqa: S608
            f"SELECT {columns} FROM {target.table} WITH NO DATA"
        )
    )
    extra = "".join(f", ADD COLUMN {name} {kind}" for name, kind in target.helpers)
    conn.execute(
        sa.text(
            f"ALTER TABLE {target.stage} ADD COLUMN row_no bigint, ADD COLUMN label text{extra}"
        )
    )


def index_stage(conn: Connection, target: Target, *, keys: bool = True) -> None:
    """The staging table's GiST index (and key index), then its statistics."""
    name = target.stage.split(".")[1]
    conn.execute(
        sa.text(f"CREATE INDEX IF NOT EXISTS {name}_geom ON {target.stage} USING gist (geom)")
    )
    if keys:
        index_stage_keys(conn, target)
    conn.execute(sa.text(f"ANALYZE {target.stage}"))


def index_stage_keys(conn: Connection, target: Target) -> None:
    keys = [k for k in target.key if k != GEOMETRY_KEY]
    if keys:
        name = target.stage.split(".")[1]
        conn.execute(
            sa.text(f"CREATE INDEX IF NOT EXISTS {name}_key ON {target.stage} ({', '.join(keys)})")
        )


def _scope_sql(target: Target, alias: str) -> tuple[str, dict[str, Any]]:
    parts = [f"{alias}.valid_to IS NULL"]
    params: dict[str, Any] = {}
    for number, (column, value) in enumerate(target.scope.items()):
        parts.append(f"{alias}.{column} = :scope{number}")
        params[f"scope{number}"] = value
    return " AND ".join(parts), params


def _geometry_equal(left: str, right: str) -> str:
    return (
        f"(({left}.geom IS NULL AND {right}.geom IS NULL) OR {left}.geom = {right}.geom OR "
        f"ST_Equals(ST_SnapToGrid({left}.geom, {SNAP_GRID}), "
        f"ST_SnapToGrid({right}.geom, {SNAP_GRID})))"
    )


def _key_sql(target: Target, key: Sequence[str]) -> str:
    parts = []
    for column in key:
        if column == GEOMETRY_KEY:
            parts.append(f"o.geom && s.geom AND {_geometry_equal('o', 's')}")
        else:
            parts.append(f"o.{column} = s.{column}")
    return " AND ".join(parts)


def merge(
    conn: Connection,
    target: Target,
    run_id: int | None,
    *,
    provided: Sequence[str],
    replace: bool,
) -> MergeCounts:
    """Merge the staged rows into the target (see the module docstring)."""
    scope, params = _scope_sql(target, "o")
    if not _has_current(conn, target, scope, params):
        return _insert_all(conn, target, run_id, provided)
    conn.execute(sa.text(f"ANALYZE {target.stage}"))
    compared = [c for c in target.data_columns if c in provided]
    same = " AND ".join(
        [*(f"s.{c} IS NOT DISTINCT FROM o.{c}" for c in compared), _geometry_equal("s", "o")]
    )
    conn.execute(sa.text("DROP TABLE IF EXISTS pg_temp.merge_match"))
    conn.execute(
        sa.text(
            "CREATE TEMP TABLE merge_match ON COMMIT DROP AS "  # noqa: S608
            f"SELECT s.row_no, o.id AS old_id, coalesce({same}, false) AS same "
            f"FROM {target.stage} s LEFT JOIN LATERAL (SELECT o.* FROM {target.table} o "
            f"WHERE {scope} AND {_key_sql(target, target.key)} LIMIT 1) o ON true"
        ),
        params,
    )
    if target.alt_key is not None:
        alt = target.alt_key
        conn.execute(
            sa.text(
                f"UPDATE merge_match m SET old_id = o.id, same = coalesce({same}, false) "  # noqa: S608
                f"FROM {target.stage} s, {target.table} o "
                f"WHERE m.old_id IS NULL AND s.row_no = m.row_no AND s.{alt} IS NOT NULL "
                f"AND {scope} AND o.{alt} = s.{alt} "
                "AND NOT EXISTS (SELECT 1 FROM merge_match x WHERE x.old_id = o.id)"
            ),
            params,
        )
    counts = MergeCounts()
    tally = conn.execute(
        sa.text(
            "SELECT count(*) FILTER (WHERE old_id IS NULL), "
            "count(*) FILTER (WHERE old_id IS NOT NULL AND NOT same), "
            "count(*) FILTER (WHERE same) FROM merge_match"
        )
    ).one()
    counts.inserted, counts.changed, counts.unchanged = (int(v) for v in tally)
    now = conn.execute(sa.text("SELECT now()")).scalar_one()
    if counts.changed:
        conn.execute(
            sa.text(
                f"UPDATE {target.table} SET valid_to = :now WHERE id IN "  # noqa: S608
                "(SELECT old_id FROM merge_match WHERE old_id IS NOT NULL AND NOT same)"
            ),
            {"now": now},
        )
    if counts.inserted or counts.changed:
        saved = drop_secondary_indexes(conn, [target.table]) if _bulk(conn, target, counts) else []
        _insert_versions(conn, target, run_id, provided, now)
        recreate_indexes(conn, saved)
        if saved:
            conn.execute(sa.text(f"ANALYZE {target.table}"))
    if replace:
        closed = conn.execute(
            sa.text(
                f"UPDATE {target.table} o SET valid_to = :now WHERE {scope} "  # noqa: S608
                "AND NOT EXISTS (SELECT 1 FROM merge_match m WHERE m.old_id = o.id)"
                " AND o.valid_from < :now"
            ),
            {**params, "now": now},
        )
        counts.closed = int(closed.rowcount)
    return counts


def _bulk(conn: Connection, target: Target, counts: MergeCounts) -> bool:
    """Whether inserting is cheaper with the indexes dropped and rebuilt afterwards:
    many rows, and at least as many as the table already holds (planner's estimate)."""
    rows = counts.inserted + counts.changed
    if rows < BULK_ROWS:
        return False
    estimate = conn.execute(
        sa.text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:table)"),
        {"table": target.table},
    ).scalar_one()
    return rows >= max(float(estimate or 0), 0.0)


def _has_current(conn: Connection, target: Target, scope: str, params: Mapping[str, Any]) -> bool:
    """Whether the scope holds a current version (else every staged row is new)."""
    return bool(
        conn.execute(
            sa.text(f"SELECT EXISTS (SELECT 1 FROM {target.table} o WHERE {scope})"),  # noqa: S608
            dict(params),
        ).scalar_one()
    )


def _insert_all(
    conn: Connection, target: Target, run_id: int | None, provided: Sequence[str]
) -> MergeCounts:
    """A first import: every staged row becomes the current version, in staging order."""
    conn.execute(sa.text("DROP TABLE IF EXISTS pg_temp.merge_match"))
    conn.execute(
        sa.text(
            "CREATE TEMP TABLE merge_match ON COMMIT DROP AS "  # noqa: S608
            f"SELECT row_no, NULL::bigint AS old_id, false AS same FROM {target.stage} LIMIT 0"
        )
    )
    counts = MergeCounts(inserted=staged_count(conn, target))
    if not counts.inserted:
        return counts
    now = conn.execute(sa.text("SELECT now()")).scalar_one()
    saved = drop_secondary_indexes(conn, [target.table]) if _bulk(conn, target, counts) else []
    data = list(target.data_columns)
    params, scope_values = _version_params(target, run_id, now)
    columns = [*target.scope, *data, *target.geometry_columns, "valid_from", "import_run_id"]
    values = [
        *scope_values,
        *(f"s.{c}" if c in provided else "NULL" for c in data),
        *(f"s.{c}" for c in target.geometry_columns),
        ":now",
        ":run",
    ]
    conn.execute(
        sa.text(
            f"INSERT INTO {target.table} ({', '.join(columns)}) "  # noqa: S608
            f"SELECT {', '.join(values)} FROM {target.stage} s"
        ),
        params,
    )
    recreate_indexes(conn, saved)
    if saved:
        conn.execute(sa.text(f"ANALYZE {target.table}"))
    return counts


def _version_params(
    target: Target, run_id: int | None, now: Any
) -> tuple[dict[str, Any], list[str]]:
    """Bound parameters of a new version (run, instant, scope values) and the scope's
    placeholders, in the order of ``target.scope``."""
    params: dict[str, Any] = {"run": run_id, "now": now}
    placeholders = []
    for number, column in enumerate(target.scope):
        params[f"scope{number}"] = target.scope[column]
        placeholders.append(f":scope{number}")
    return params, placeholders


def _insert_versions(
    conn: Connection, target: Target, run_id: int | None, provided: Sequence[str], now: Any
) -> None:
    data = list(target.data_columns)
    selected = [f"s.{c}" if c in provided else f"o.{c}" for c in data]
    geometry = [f"s.{c}" for c in target.geometry_columns]
    params, scope_values = _version_params(target, run_id, now)
    columns = [*target.scope, *data, *target.geometry_columns, "valid_from", "import_run_id"]
    values = [*scope_values, *selected, *geometry, ":now", ":run"]
    conn.execute(
        sa.text(
            f"INSERT INTO {target.table} ({', '.join(columns)}) "  # noqa: S608
            f"SELECT {', '.join(values)} FROM {target.stage} s "
            "JOIN merge_match m ON m.row_no = s.row_no "
            f"LEFT JOIN {target.table} o ON o.id = m.old_id "
            "WHERE m.old_id IS NULL OR NOT m.same ORDER BY s.row_no"
        ),
        params,
    )


def staged_count(conn: Connection, target: Target) -> int:
    return int(conn.execute(sa.text(f"SELECT count(*) FROM {target.stage}")).scalar_one())  # noqa: S608
