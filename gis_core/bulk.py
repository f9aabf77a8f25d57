"""Bulk writes with PostgreSQL's COPY: the way every importer moves many rows.

Row-by-row INSERTs cost a round trip and a plan each; COPY streams rows in one
command, tens of times faster. Rows go in PostgreSQL's *binary* COPY format, so values
are never printed and re-parsed, and geometries travel as (E)WKB bytes that PostGIS
reads directly (its binary input accepts WKB/EWKB, which the text format would not).

Binary COPY needs the exact type of every column, so the helper reads them from the
catalog; table and column names are checked against it too, never pasted blindly.
Geometry values must carry the column's SRID (EWKB, e.g. ``shapely.to_wkb(geoms,
include_srid=True)`` after ``shapely.set_srid``) or the column's type check rejects them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import psycopg
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.engine import Connection

from gis_core.errors import InvalidInput

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
_SPATIAL_TYPES = frozenset({"geometry", "geography"})
# The psycopg dumper to use for catalog types whose name differs from a dumper name.
_DUMPER_NAMES = {
    "timestamp with time zone": "timestamptz",
    "timestamp without time zone": "timestamp",
}


@dataclass(frozen=True)
class _Column:
    name: str
    type_name: str

    @property
    def spatial(self) -> bool:
        return self.type_name.split("(")[0] in _SPATIAL_TYPES

    @property
    def numeric(self) -> bool:
        return self.type_name.startswith("numeric")

    @property
    def dumper(self) -> str:
        """Type name for psycopg's binary dumpers (geometries are sent as raw bytes)."""
        if self.spatial:
            return "bytea"
        base = self.type_name.split("(")[0]
        if self.type_name.endswith("[]"):
            return _DUMPER_NAMES.get(base.removesuffix("[]"), base.removesuffix("[]")) + "[]"
        return _DUMPER_NAMES.get(base, base)


def copy_rows(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
) -> int:
    """Write ``rows`` (tuples in ``columns`` order) into ``schema.table``; returns the count.

    Values: Python scalars, ``None`` for NULL, ``date``/``datetime``, lists for arrays,
    JSON as ``str`` for jsonb; numeric columns take ``Decimal``, ``int`` or ``float``;
    geometry columns take EWKB ``bytes`` or its hex ``str``. Runs inside the caller's
    transaction, so a failure anywhere leaves nothing written.
    """
    described = _describe(conn, table, columns)
    fixers = _fixers(described)
    if fixers:
        rows = (_fixed(row, fixers) for row in rows)
    return _copy(conn, table, described, rows)


def _fixed(row: Sequence[Any], fixers: list[tuple[int, Any]]) -> list[Any]:
    fixed = list(row)
    for index, fix in fixers:
        fixed[index] = fix(fixed[index])
    return fixed


def _copy(
    conn: Connection, table: str, described: list[_Column], rows: Iterable[Sequence[Any]]
) -> int:
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(*table.split(".")),
        sql.SQL(", ").join(sql.Identifier(column.name) for column in described),
    )
    raw = conn.connection.dbapi_connection
    if not isinstance(raw, psycopg.Connection):
        raise TypeError("copy_rows needs a psycopg 3 connection (postgresql+psycopg URL)")
    count = 0
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        copy.set_types([column.dumper for column in described])
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def copy_columns(
    conn: Connection, table: str, data: Mapping[str, Sequence[Any] | np.ndarray]
) -> int:
    """Write column arrays of equal length (numpy arrays or sequences) into ``table``.

    The columnar form of ``copy_rows`` for generated data: numpy arrays are turned
    into Python values once per column (``tolist``), not once per cell.
    """
    names = list(data)
    lengths = {len(values) for values in data.values()}
    if len(lengths) > 1:
        raise InvalidInput(f"{table}: columns of unequal length {sorted(lengths)}")
    described = _describe(conn, table, names)
    fixes = dict(_fixers(described))
    values = []
    for index, name in enumerate(names):
        column = _python_values(data[name])
        fix = fixes.get(index)
        values.append([fix(value) for value in column] if fix else column)
    return _copy(conn, table, described, zip(*values, strict=True))


def _python_values(values: Sequence[Any] | np.ndarray) -> list[Any]:
    if isinstance(values, np.ndarray):
        return list(values.tolist())
    return list(values)


def _describe(conn: Connection, table: str, columns: Sequence[str]) -> list[_Column]:
    """The catalog type of each column; unknown tables or columns are a clear error."""
    schema, _, name = table.rpartition(".")
    schema = schema or "public"
    for part in (schema, name, *columns):
        if not _IDENTIFIER.match(part):
            raise InvalidInput(f"{table}: {part!r} is not a plain lower-case identifier")
    result = conn.execute(
        sa.text(
            "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute "
            "WHERE attrelid = to_regclass(:table) AND attnum > 0 AND NOT attisdropped"
        ),
        {"table": f"{schema}.{name}"},
    )
    found = {str(column): str(type_name) for column, type_name in result}
    if not found:
        raise InvalidInput(f"table {table} does not exist")
    missing = [column for column in columns if column not in found]
    if missing:
        raise InvalidInput(f"{table} has no column {', '.join(missing)}")
    return [_Column(column, str(found[column])) for column in columns]


def _fixers(columns: list[_Column]) -> list[tuple[int, Any]]:
    """Per-column conversions binary COPY needs (hex WKB to bytes, floats to Decimal)."""
    fixers: list[tuple[int, Any]] = []
    for index, column in enumerate(columns):
        if column.spatial:
            fixers.append((index, _wkb_bytes))
        elif column.numeric:
            fixers.append((index, _decimal))
    return fixers


def _wkb_bytes(value: Any) -> Any:
    if isinstance(value, str):
        return bytes.fromhex(value)
    return value


def _decimal(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


def drop_secondary_indexes(
    conn: Connection, tables: Sequence[str], *, exclusions: bool = True
) -> list[str]:
    """Drop the secondary indexes (and, with ``exclusions``, the exclusion constraints)
    of ``tables`` before a bulk insert; return the statements that recreate them.

    The statements are read from the catalog, so the migrations stay their only author.
    One sorted build after the insert beats a million single insertions into a B-tree or
    GiST index, and re-adding an exclusion constraint re-checks every row, so the
    guarantee is the same. Run it inside the load's transaction: a failure restores
    everything. Indexes that back a constraint (primary keys, uniques) stay.
    """
    names = {"tables": list(tables)}
    indexes = conn.execute(
        sa.text(
            "SELECT format('DROP INDEX %s', i.indexrelid::regclass), "
            "pg_get_indexdef(i.indexrelid) "
            "FROM pg_index i WHERE i.indrelid = ANY(CAST(:tables AS regclass[])) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) "
            "ORDER BY i.indexrelid::regclass::text"
        ),
        names,
    ).all()
    constraints = (
        conn.execute(
            sa.text(
                "SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname), "
                "format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname, "
                "pg_get_constraintdef(oid)) "
                "FROM pg_constraint WHERE contype = 'x' "
                "AND conrelid = ANY(CAST(:tables AS regclass[])) ORDER BY conname"
            ),
            names,
        ).all()
        if exclusions
        else []
    )
    for drop, _ in [*indexes, *constraints]:
        conn.execute(sa.text(str(drop)))
    return [str(create) for _, create in [*indexes, *constraints]]


def recreate_indexes(conn: Connection, statements: Sequence[str]) -> None:
    """Run the statements :func:`drop_secondary_indexes` returned (catalog text only)."""
    for statement in statements:
        conn.execute(sa.text(statement))
