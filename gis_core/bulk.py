"""Bulk writes with PostgreSQL's COPY: the way every importer moves many rows.

Row-by-row INSERTs cost a round trip and a plan each; COPY streams rows in one
command, tens of times faster. Rows go in PostgreSQL's *binary* COPY format, so values
are never printed and re-parsed, and geometries travel as (E)WKB bytes that PostGIS
reads directly (its binary input accepts WKB/EWKB, which the text format would not).

Binary COPY needs the exact type of every column, so the helper reads them from the
catalog; table and column names are checked against it too, never pasted blindly.
Geometry values must carry the column's SRID (EWKB, e.g. ``shapely.to_wkb(geoms,
include_srid=True)`` after ``shapely.set_srid``) or the column's type check rejects them.

``copy_arrays`` is the columnar fast path for imports: whole columns (Arrow or numpy
arrays) are encoded into the binary COPY stream by Arrow and numpy kernels, so a million
rows cost no Python call per row or value (psycopg's ``write_row`` costs ~10 µs a row).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeAlias

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
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
    typmod: int = -1

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
    try:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            copy.set_types([column.dumper for column in described])
            for row in rows:
                copy.write_row(row)
                count += 1
    except psycopg.Error as exc:
        raise database_error(statement, exc) from None
    return count


def database_error(statement: Any, exc: psycopg.Error) -> sa.exc.DBAPIError:
    """A psycopg error of a COPY as SQLAlchemy raises errors of statements (callers and
    the import runner catch those)."""
    error = sa.exc.DBAPIError.instance(str(statement), None, exc, psycopg.Error)
    return (
        error
        if isinstance(error, sa.exc.DBAPIError)
        else sa.exc.DBAPIError(str(statement), None, exc)
    )


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


ArrayLike: TypeAlias = Sequence[Any] | np.ndarray | pa.Array | pa.ChunkedArray
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no header extension
COPY_TRAILER = b"\xff\xff"
_NULL = np.array([-1], dtype=">i4").tobytes()
_CHUNK_ROWS = 100_000  # rows encoded at once (Arrow's 32-bit offsets, bounded memory)
_FIXED = {  # catalog type -> (Arrow type of the values, big-endian numpy type sent)
    "bigint": (pa.int64(), ">i8"),
    "integer": (pa.int32(), ">i4"),
    "smallint": (pa.int16(), ">i2"),
    "double precision": (pa.float64(), ">f8"),
    "real": (pa.float32(), ">f4"),
    "boolean": (pa.bool_(), "u1"),
}
_VARIABLE = {"text": pa.string(), "character varying": pa.string(), "bytea": pa.binary()}
_NUMERIC_GROUPS = 5  # base-10000 digits before the point: any int64 count of hundredths


def copy_arrays(conn: Connection, table: str, data: Mapping[str, ArrayLike]) -> int:
    """Write column arrays of equal length into ``table`` in PostgreSQL's binary COPY
    format, encoded column by column; returns the row count.

    Takes what ``copy_columns`` takes, plus Arrow arrays (text as ``string``, geometries
    as ``binary`` EWKB). Numeric columns take floats and are rounded to the column's
    scale half away from zero, as PostgreSQL rounds the decimal text of a float;
    NaN (and infinite) floats are NULL. Columns of other types (arrays, timestamps,
    jsonb) go through ``copy_columns``. Runs inside the caller's transaction.
    """
    names = list(data)
    lengths = {len(values) for values in data.values()}
    if len(lengths) > 1:
        raise InvalidInput(f"{table}: columns of unequal length {sorted(lengths)}")
    described = _describe(conn, table, names)
    if not all(_encodable(column) for column in described):
        return copy_columns(conn, table, {name: _as_sequence(data[name]) for name in names})
    count = lengths.pop() if lengths else 0
    columns = [_arrow(column, data[column.name]) for column in described]
    chunks = (
        encode_rows(described, [values.slice(start, _CHUNK_ROWS) for values in columns])
        for start in range(0, count, _CHUNK_ROWS)
    )
    write_binary(conn, table, [column.name for column in described], chunks)
    return count


def write_binary(
    conn: Connection, table: str, columns: Sequence[str], chunks: Iterable[bytes | memoryview]
) -> None:
    """Run one binary COPY of ``chunks``: rows already encoded by :func:`encode_rows`.

    ``table`` and ``columns`` must come from code, not input (they are quoted, not
    checked against the catalog: callers describe the table first).
    """
    raw = conn.connection.dbapi_connection
    if not isinstance(raw, psycopg.Connection):
        raise TypeError("write_binary needs a psycopg 3 connection (postgresql+psycopg URL)")
    statement = binary_copy_statement(table, columns)
    try:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            copy.write(COPY_SIGNATURE)
            for chunk in chunks:
                copy.write(chunk)
            copy.write(COPY_TRAILER)
    except psycopg.Error as exc:
        raise database_error(statement.as_string(raw), exc) from None


def binary_copy_statement(table: str, columns: Sequence[str]) -> sql.Composed:
    """``COPY table (columns) FROM STDIN (FORMAT BINARY)``, identifiers quoted."""
    return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(*table.split(".")),
        sql.SQL(", ").join(sql.Identifier(column) for column in columns),
    )


def describe(conn: Connection, table: str, columns: Sequence[str]) -> list[Any]:
    """The catalog description of ``columns`` that :func:`encode_rows` takes."""
    described = _describe(conn, table, columns)
    unsupported = [column.name for column in described if not _encodable(column)]
    if unsupported:
        raise InvalidInput(f"{table}: no columnar COPY for {', '.join(unsupported)}")
    return described


def encode_rows(described: Sequence[Any], columns: Sequence[ArrayLike]) -> memoryview:
    """The binary COPY rows (no header) of equal-length column arrays, in ``described``
    order (see :func:`describe`); what :func:`write_binary` sends.

    A row is its field count, then each field's length and bytes. The fixed-size pieces
    between two variable values (numbers without NULLs, the length of the next text or
    geometry) are laid side by side in one byte matrix by numpy; one Arrow join then
    interleaves those matrices with the variable values, so each value's bytes are
    copied once.
    """
    arrays = [_arrow(column, values) for column, values in zip(described, columns, strict=True)]
    count = len(arrays[0]) if arrays else 0
    if count == 0:
        return memoryview(b"")
    parts: list[pa.Array] = []
    fixed = [np.broadcast_to(np.frombuffer(_int16(len(arrays)), dtype=np.uint8), (count, 2))]
    for column, values in zip(described, arrays, strict=True):
        matrix = _fixed_matrix(column, values)
        if matrix is not None:
            fixed.append(matrix)
        elif column.spatial or column.type_name.split("(")[0] in _VARIABLE:
            binary = values.cast(pa.binary()) if values.type != pa.binary() else values
            lengths = pc.binary_length(binary).fill_null(-1).to_numpy()
            fixed.append(np.asarray(lengths, dtype=">i4").view(np.uint8).reshape(count, 4))
            parts.append(_matrix_array(np.hstack(fixed)))
            parts.append(binary.fill_null(b"") if binary.null_count else binary)
            fixed = []
        else:
            if fixed:
                parts.append(_matrix_array(np.hstack(fixed)))
            parts.append(_fields(column, values))
            fixed = []
    if fixed:
        parts.append(_matrix_array(np.hstack(fixed)))
    rows = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, b"")
    offsets = np.frombuffer(
        rows.buffers()[1], dtype=np.int32, count=count + 1, offset=rows.offset * 4
    )
    return memoryview(rows.buffers()[2])[int(offsets[0]) : int(offsets[-1])]


def _int16(value: int) -> bytes:
    return np.array([value], dtype=">i2").tobytes()


def _fixed_matrix(column: _Column, values: pa.Array) -> np.ndarray | None:
    """The fields of a fixed-size column without NULLs as a (rows, 4 + size) byte
    matrix (length, then the value); None for other columns."""
    base = column.type_name.split("(")[0]
    if column.spatial or base in _VARIABLE or values.null_count:
        return None
    if base == "numeric":
        payload, valid = _numeric_payload(values, (column.typmod - 4) & 0xFFFF)
        if not valid.all():
            return None
    else:
        numpy_type = _FIXED[base][1]
        payload = np.asarray(values.to_numpy(zero_copy_only=False)).astype(numpy_type)
        payload = payload.view(np.uint8).reshape(len(values), -1)
    matrix = np.empty((payload.shape[0], 4 + payload.shape[1]), dtype=np.uint8)
    matrix[:, :4] = np.frombuffer(np.array([payload.shape[1]], dtype=">i4").tobytes(), np.uint8)
    matrix[:, 4:] = payload
    return matrix


def _matrix_array(matrix: np.ndarray) -> pa.Array:
    """A binary array whose values are the rows of a byte matrix (no copy)."""
    count, width = matrix.shape
    offsets = np.arange(0, width * count + 1, width, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.binary(),
        count,
        [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(matrix))],
    )


def _encodable(column: _Column) -> bool:
    if column.type_name.endswith("[]"):
        return False
    base = column.type_name.split("(")[0]
    if base == "numeric":
        return column.typmod >= 4 and 0 <= (column.typmod - 4) & 0xFFFF <= 4
    return column.spatial or base in _FIXED or base in _VARIABLE


def _as_sequence(values: ArrayLike) -> Sequence[Any] | np.ndarray:
    if isinstance(values, pa.Array | pa.ChunkedArray):
        return values.to_pylist()
    return values


def _arrow(column: _Column, values: ArrayLike) -> pa.Array:
    """``values`` as an Arrow array of the type the column is encoded from."""
    base = column.type_name.split("(")[0]
    if column.spatial or base == "bytea":
        kind = pa.binary()
    elif base == "numeric":
        kind = pa.float64()
    elif base in _FIXED:
        kind = _FIXED[base][0]
    else:
        kind = _VARIABLE[base]
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        if values.type == kind:
            return values
        try:
            return values.cast(kind)  # safe: an overflow or a lossy cast is an error
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InvalidInput(
                f"column {column.name}: {values.type} values unfit for {base}: {exc}"
            ) from None
    if column.spatial:
        values = [_wkb_bytes(value) for value in values]
    elif pa.types.is_floating(kind):
        values = [float(value) if isinstance(value, Decimal) else value for value in values]
    try:
        return pa.array(values, type=kind, from_pandas=base == "numeric")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InvalidInput(f"column {column.name}: values unfit for {base}: {exc}") from None


def _fields(column: _Column, values: pa.Array) -> pa.Array:
    """Each row's field: its int32 byte length (-1 for NULL) followed by the bytes."""
    base = column.type_name.split("(")[0]
    if column.spatial or base in _VARIABLE:
        return _variable_fields(values)
    if base == "numeric":
        return _numeric_fields(values, (column.typmod - 4) & 0xFFFF)
    numpy_type = _FIXED[base][1]
    valid = _valid(values)
    filled = values.fill_null(False if base == "boolean" else 0)
    payload = np.asarray(filled.to_numpy(zero_copy_only=False)).astype(numpy_type)
    return _fixed_fields(payload.view(np.uint8).reshape(len(values), -1), valid)


def _valid(values: pa.Array) -> np.ndarray:
    if values.null_count == 0:
        return np.ones(len(values), dtype=bool)
    return np.asarray(values.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def _fixed_fields(payload: np.ndarray, valid: np.ndarray) -> pa.Array:
    """Fields from an (n, width) byte matrix; rows not ``valid`` become NULL."""
    count, width = payload.shape
    matrix = np.empty((count, 4 + width), dtype=np.uint8)
    matrix[:, :4] = np.frombuffer(np.array([width], dtype=">i4").tobytes(), dtype=np.uint8)
    matrix[:, 4:] = payload
    sizes = np.full(count, 4 + width, dtype=np.int32)
    if not valid.all():
        matrix[~valid, :4] = np.frombuffer(_NULL, dtype=np.uint8)
        sizes[~valid] = 4
        keep = np.ones(matrix.shape, dtype=bool)
        keep[~valid, 4:] = False
        data = matrix[keep]
    else:
        data = matrix.reshape(-1)
    offsets = np.zeros(count + 1, dtype=np.int32)
    np.cumsum(sizes, out=offsets[1:])
    return pa.Array.from_buffers(
        pa.binary(), count, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def _variable_fields(values: pa.Array) -> pa.Array:
    binary = values.cast(pa.binary()) if values.type != pa.binary() else values
    lengths = np.asarray(pc.binary_length(binary).fill_null(-1).to_numpy(), dtype=">i4")
    count = len(binary)
    offsets = np.arange(0, 4 * count + 1, 4, dtype=np.int32)
    prefix = pa.Array.from_buffers(
        pa.binary(), count, [None, pa.py_buffer(offsets), pa.py_buffer(lengths.tobytes())]
    )
    return pc.binary_join_element_wise(prefix, binary.fill_null(b""), b"")


def _numeric_fields(values: pa.Array, scale: int) -> pa.Array:
    """numeric(p, scale) fields (see :func:`_numeric_payload`), NULL for NaN."""
    payload, valid = _numeric_payload(values, scale)
    return _fixed_fields(payload, valid)


def _numeric_payload(values: pa.Array, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """numeric(p, scale) in its binary form: base-10000 digits with a fixed weight.

    A float is rounded to ``scale`` decimals half away from zero, as PostgreSQL rounds
    the shortest decimal text of the float (``Decimal(repr(x))``): products that land
    within a few units in the last place of a half are decided on that text, in Python
    (rare), all others by numpy. PostgreSQL drops the leading zero digits on receipt
    and checks the precision.
    """
    count = len(values)
    x = np.asarray(values.fill_null(np.nan).to_numpy(zero_copy_only=False), dtype=np.float64)
    valid = np.isfinite(x)
    factor = 10.0**scale
    scaled = np.where(valid, x * factor, 0.0)
    size = np.abs(scaled)
    if np.any(size >= 2.0**62):
        raise InvalidInput(f"a value of {np.nanmax(np.abs(x)):g} is too large for numeric")
    units = np.trunc(size + 0.5)
    near_half = np.abs(size - np.trunc(size) - 0.5) <= size * 1e-15
    for index in np.flatnonzero(near_half & valid).tolist():
        exact = Decimal(repr(float(x[index]))).scaleb(scale).quantize(Decimal(1), "ROUND_HALF_UP")
        units[index] = float(abs(exact))
    whole = units.astype(np.int64)
    fraction_groups = 1 if scale else 0
    digits = np.empty((count, _NUMERIC_GROUPS + fraction_groups), dtype=">i2")
    integer = whole // 10**scale
    for group in range(_NUMERIC_GROUPS):
        digits[:, _NUMERIC_GROUPS - 1 - group] = (integer // 10000**group) % 10000
    if scale:
        digits[:, -1] = (whole % 10**scale) * 10 ** (4 - scale)
    header = np.empty((count, 4), dtype=">i2")
    header[:, 0] = digits.shape[1]
    header[:, 1] = _NUMERIC_GROUPS - 1
    header[:, 2] = np.where(scaled < 0, 0x4000, 0)
    header[:, 3] = scale
    payload = np.concatenate([header.view(np.uint8), digits.view(np.uint8)], axis=1)
    return payload, valid


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
            "SELECT attname, format_type(atttypid, NULL), atttypmod FROM pg_attribute "
            "WHERE attrelid = to_regclass(:table) AND attnum > 0 AND NOT attisdropped"
        ),
        {"table": f"{schema}.{name}"},
    )
    found = {str(column): (str(type_name), int(typmod)) for column, type_name, typmod in result}
    if not found:
        raise InvalidInput(f"table {table} does not exist")
    missing = [column for column in columns if column not in found]
    if missing:
        raise InvalidInput(f"{table} has no column {', '.join(missing)}")
    return [_Column(column, *found[column]) for column in columns]


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
    conn: Connection,
    tables: Sequence[str],
    *,
    exclusions: bool = True,
    left_null: Collection[str] = (),
) -> list[str]:
    """Drop the secondary indexes (and, with ``exclusions``, the exclusion constraints)
    of ``tables`` before a bulk insert; return the statements that recreate them.

    ``left_null``: columns the insert leaves NULL. A partial index of the rows where one
    of them is not NULL (``WHERE address_id IS NOT NULL``) gets no entry from the
    insert, so it stays: rebuilding it would only scan the table again to find nothing.

    The statements are read from the catalog, so the migrations stay their only author.
    One sorted build after the insert beats a million single insertions into a B-tree or
    GiST index, and re-adding an exclusion constraint re-checks every row, so the
    guarantee is the same. Run it inside the load's transaction: a failure restores
    everything. Indexes that back a constraint (primary keys, uniques) stay, and so do
    triggers: the version rule of parcels (migration 0007) is a statement trigger that
    checks each bulk statement set-wise, hashing its join when the indexes are gone.
    """
    names = {"tables": list(tables)}
    indexes = conn.execute(
        sa.text(
            "SELECT format('DROP INDEX %s', i.indexrelid::regclass), "
            "pg_get_indexdef(i.indexrelid) "
            "FROM pg_index i WHERE i.indrelid = ANY(CAST(:tables AS regclass[])) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) "
            "AND (i.indpred IS NULL OR pg_get_expr(i.indpred, i.indrelid) <> ALL("
            "CAST(:unfilled AS text[]))) "
            "ORDER BY i.indexrelid::regclass::text"
        ),
        {**names, "unfilled": [f"({column} IS NOT NULL)" for column in left_null]},
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
