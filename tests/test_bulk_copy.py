"""The columnar binary COPY (``gis_core.bulk.copy_arrays``): every supported type lands
exactly as the row-by-row path (``copy_rows``) writes it, numerics rounded as
PostgreSQL rounds decimal text, NULLs wherever given, and bad input refused by name."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_core.bulk import copy_arrays, copy_rows
from gis_core.errors import InvalidInput

COLUMNS = ("i", "b", "s", "f", "r", "t", "n", "m", "q", "g", "y", "o")
TABLE = (
    "(i integer, b bigint, s smallint, f float8, r real, t text, n numeric(14,2), "
    "m numeric(6,0), q numeric(8,4), g geometry(Point, 3844), y bytea, o boolean)"
)
# Halves in the decimal text of a float are rounded away from zero (1.005 is
# 1.00499999… in binary, but PostgreSQL reads its text "1.005").
FLOATS = [1.234, 1.235, 2.675, -1.005, 0.0, None, 0.125, 1e11 + 0.005, 1234.565, 0.5, -0.5, 3.0]


@pytest.fixture
def tables(db: Connection) -> Connection:
    db.execute(sa.text(f"CREATE TEMP TABLE arrays {TABLE}"))
    db.execute(sa.text(f"CREATE TEMP TABLE rows_ {TABLE}"))
    return db


def _point(x: float) -> bytes:
    return bytes(
        shapely.to_wkb(shapely.set_srid(shapely.Point(x, 585000.0), 3844), include_srid=True)
    )


def _rows(conn: Connection, table: str) -> list[tuple[object, ...]]:
    return [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY i, t"))]


def test_arrays_land_as_rows_do(tables: Connection) -> None:
    count = len(FLOATS)
    ints = [i if i % 3 else None for i in range(count)]
    texts = [None if i % 4 == 0 else f"ş ț {i}" for i in range(count)]
    points = [_point(390000.0 + i) if i % 2 else None for i in range(count)]
    flags = [None if i % 5 == 0 else bool(i % 2) for i in range(count)]
    small = [None if v is None else (v if abs(v) < 1e3 else 2.5) for v in FLOATS]
    columns = {
        "i": ints,
        "b": np.array([i or 0 for i in ints], dtype=np.int64),
        "s": ints,
        "f": pa.array(FLOATS, pa.float64()),
        "r": FLOATS,
        "t": pa.array(texts, pa.string()),
        "n": FLOATS,
        "m": small,
        "q": [None if v is None else Decimal(repr(v)) for v in small],
        "g": pa.array(points, pa.binary()),
        "y": points,
        "o": flags,
    }
    assert copy_arrays(tables, "pg_temp.arrays", columns) == count

    def decimal(value: float | None) -> Decimal | None:
        return None if value is None else Decimal(repr(value))

    rows = [
        (
            ints[k],
            ints[k] or 0,
            ints[k],
            FLOATS[k],
            FLOATS[k],
            texts[k],
            decimal(FLOATS[k]),
            decimal(small[k]),
            decimal(small[k]),
            points[k],
            points[k],
            flags[k],
        )
        for k in range(count)
    ]
    copy_rows(tables, "pg_temp.rows_", COLUMNS, rows)
    assert _rows(tables, "arrays") == _rows(tables, "rows_")
    rounded = tables.execute(sa.text("SELECT n::text FROM arrays ORDER BY i NULLS FIRST, t"))
    assert {"1.24", "2.68", "-1.01", "0.13", "100000000000.01", "1234.57"} <= {
        str(v) for v in rounded.scalars()
    }


def test_columns_without_nulls_land_as_rows_do(tables: Connection) -> None:
    """Fixed-size columns without NULLs are encoded side by side in one matrix, between
    the variable ones (the common case of an import): the rows are the same."""
    count = 40
    ints = list(range(count))
    floats = [FLOATS[k % 5] or 0.5 for k in range(count)]
    texts = [f"ş {k}" * (k % 3) for k in range(count)]
    points = [_point(390000.0 + k) for k in range(count)]
    flags = [bool(k % 2) for k in range(count)]
    columns = {
        "i": np.array(ints, dtype=np.int32),
        "t": pa.array(texts, pa.string()),
        "b": np.array(ints, dtype=np.int64),
        "n": floats,
        "g": pa.array(points, pa.binary()),
        "y": pa.array(points, pa.binary()),
        "o": flags,
        "f": np.array(floats),
    }
    assert copy_arrays(tables, "pg_temp.arrays", columns) == count
    numbers = [Decimal(repr(value)) for value in floats]
    rows = [
        (ints[k], texts[k], ints[k], numbers[k], points[k], points[k], flags[k], floats[k])
        for k in range(count)
    ]
    copy_rows(tables, "pg_temp.rows_", ("i", "t", "b", "n", "g", "y", "o", "f"), rows)
    assert _rows(tables, "arrays") == _rows(tables, "rows_")


def test_nan_is_null_and_many_rows_go_in_chunks(tables: Connection) -> None:
    count = 250_003
    values = np.arange(count, dtype=np.float64) / 100.0
    values[7] = np.nan
    written = copy_arrays(
        tables,
        "pg_temp.arrays",
        {"i": np.arange(count), "n": values, "t": pa.array([f"P{k}" for k in range(count)])},
    )
    assert written == count
    row = tables.execute(sa.text("SELECT count(*), count(n), sum(n), max(t) FROM arrays")).one()
    assert row[0] == count and row[1] == count - 1
    assert float(row[2]) == pytest.approx(float(np.nansum(values)))


def test_bad_input_is_refused_by_name(tables: Connection) -> None:
    with pytest.raises(InvalidInput, match="unequal length"):
        copy_arrays(tables, "pg_temp.arrays", {"i": [1, 2], "t": ["a"]})
    with pytest.raises(InvalidInput, match="no column missing"):
        copy_arrays(tables, "pg_temp.arrays", {"missing": [1]})
    with pytest.raises(InvalidInput, match="column s"):
        copy_arrays(tables, "pg_temp.arrays", {"s": pa.array([1 << 40], pa.int64())})
    with pytest.raises(InvalidInput, match="column i"):
        copy_arrays(tables, "pg_temp.arrays", {"i": ["not a number"]})


def test_other_types_take_the_row_path(tables: Connection) -> None:
    tables.execute(sa.text("CREATE TEMP TABLE mixed (t text[], at timestamptz, n numeric)"))
    copy_arrays(
        tables,
        "pg_temp.mixed",
        {"t": [["a", "b"]], "at": [datetime(2024, 1, 2, tzinfo=UTC)], "n": [Decimal("1.5")]},
    )
    assert tables.execute(sa.text("SELECT t, n FROM mixed")).one() == (["a", "b"], Decimal("1.5"))
