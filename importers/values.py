"""Attribute values as files carry them, turned into what the tables hold.

Keys are text exactly as written (trimmed), except that a number stored in a float
column (123.0) is written as the integer the clerk typed. Numbers accept a decimal
comma; a value that is not a number becomes a finding naming the feature and field
(the value is left empty, the feature kept). Text is stored as written: diacritics,
cedilla or comma-below, are never rewritten (search folds them, see search_keys).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from importers.report import Finding, ImportReport

Column: TypeAlias = np.ndarray | pa.Array | None

TRUE_WORDS = frozenset({"true", "1", "da", "yes", "y", "t", "intravilan"})
FALSE_WORDS = frozenset({"false", "0", "nu", "no", "n", "f", "extravilan"})


def text(value: Any) -> str | None:
    """Trimmed text; None for null, NaN and blanks; 123.0 → "123"."""
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    result = str(value).strip()
    return result or None


def texts(values: np.ndarray | None, count: int) -> list[str | None]:
    if values is None:
        return [None] * count
    return [text(v) for v in values.tolist()]


def text_array(values: Column, count: int) -> pa.Array:
    """``texts`` of a whole column as an Arrow string array; Arrow text and integer
    columns are converted by Arrow kernels (whitespace trimmed, blanks empty)."""
    if values is None:
        return pa.nulls(count, pa.string())
    if isinstance(values, pa.Array):
        kind = values.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            trimmed = pc.utf8_trim_whitespace(values).cast(pa.string())
            return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)
        if pa.types.is_integer(kind):
            return values.cast(pa.string())
        values = np.asarray(values.to_pylist(), dtype=object)
    return pa.array(texts(values, count), type=pa.string())


def number_array(
    values: Column,
    count: int,
    labels: Callable[[int], str],
    field: str,
    report: ImportReport,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
) -> pa.Array:
    """``numbers`` of a whole column as an Arrow float64 array (empty: null); Arrow
    integer and float columns are checked with numpy, others value by value."""
    if values is None:
        return pa.nulls(count, pa.float64())
    if isinstance(values, pa.Array) and (
        pa.types.is_integer(values.type) or pa.types.is_floating(values.type)
    ):
        x = np.asarray(values.cast(pa.float64()).fill_null(np.nan).to_numpy(), dtype=np.float64)
        x = x.copy()
        for index in np.flatnonzero(np.isinf(x)).tolist():
            report.add(Finding("bad_number", f"{x[index]!r} is not a number", labels(index), field))
        x[np.isinf(x)] = np.nan
        low = x < minimum if minimum is not None else np.zeros(count, dtype=bool)
        high = x > maximum if maximum is not None else np.zeros(count, dtype=bool)
        for index in np.flatnonzero(low | high).tolist():
            report.add(
                Finding(
                    "bad_number",
                    f"{x[index]:g} is out of range ({minimum}…{maximum})",
                    labels(index),
                    field,
                )
            )
        x[low | high] = np.nan
        return pa.array(x, type=pa.float64(), from_pandas=True)
    if isinstance(values, pa.Array):
        values = np.asarray(values.to_pylist(), dtype=object)
    parsed = numbers(values, labels, field, report, minimum=minimum, maximum=maximum)
    return pa.array(parsed, type=pa.float64())


def boolean_array(values: Column, count: int) -> pa.Array:
    """``booleans`` of a whole column as an Arrow boolean array."""
    if values is None:
        return pa.nulls(count, pa.bool_())
    if isinstance(values, pa.Array):
        if pa.types.is_boolean(values.type):
            return values
        values = np.asarray(values.to_pylist(), dtype=object)
    return pa.array(booleans(values), type=pa.bool_())


def number(value: Any) -> float | None:
    """A finite number, or None for blank; raises ValueError for anything else."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int | float | Decimal):
        result = float(value)
    else:
        cleaned = str(value).strip().replace(" ", "").replace(",", ".")
        if not cleaned:
            return None
        try:
            result = float(Decimal(cleaned))
        except InvalidOperation:
            raise ValueError(value) from None
    if math.isnan(result):
        return None
    if math.isinf(result):
        raise ValueError(value)
    return result


def numbers(
    values: np.ndarray | None,
    labels: Callable[[int], str],
    field: str,
    report: ImportReport,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
) -> list[float | None]:
    """Numbers of one column; bad values reported (code ``bad_number``) and left empty."""
    if values is None:
        return []
    out: list[float | None] = []
    for index, value in enumerate(values.tolist()):
        try:
            parsed = number(value)
        except ValueError:
            report.add(Finding("bad_number", f"{value!r} is not a number", labels(index), field))
            out.append(None)
            continue
        if parsed is not None and (
            (minimum is not None and parsed < minimum) or (maximum is not None and parsed > maximum)
        ):
            report.add(
                Finding(
                    "bad_number",
                    f"{parsed:g} is out of range ({minimum}…{maximum})",
                    labels(index),
                    field,
                )
            )
            parsed = None
        out.append(parsed)
    return out


def boolean(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float):
        if isinstance(value, float) and math.isnan(value):
            return None
        return bool(value)
    folded = str(value).strip().lower()
    if folded in TRUE_WORDS:
        return True
    if folded in FALSE_WORDS:
        return False
    return None


def booleans(values: np.ndarray | None) -> list[bool | None]:
    if values is None:
        return []
    return [boolean(v) for v in values.tolist()]


def uses(value: Any) -> list[str]:
    """A list of uses from one cell: "locuire; comerț | birouri" → three items."""
    cell = text(value)
    if cell is None:
        return []
    for separator in ("|", "\n"):
        cell = cell.replace(separator, ";")
    return [item.strip() for item in cell.split(";") if item.strip()]
