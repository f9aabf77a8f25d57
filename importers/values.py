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
from typing import Any

import numpy as np

from importers.report import Finding, ImportReport

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
