"""Reading a register of acts: CSV, XLSX or any vector file GDAL opens.

Every cell is read as text (a spreadsheet's idea of a number would turn ``0123`` into
123 and cadastral numbers into floats); the row parser decides what each field means.
Rows carry the label a clerk finds them by: ``row 17`` is line 17 of a CSV or row 17 of
the sheet (the header is row 1), ``feature 17`` the 17th feature of a vector layer.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import shapely

from gis_core.errors import InvalidInput

CSV_SUFFIXES = (".csv", ".txt", ".tsv")
SHEET_SUFFIXES = (".xlsx", ".ods")
_DELIMITERS = ";,\t|"
_ENCODINGS = ("utf-8-sig", "cp1250")


@dataclass
class RegisterTable:
    """The rows of a register as text, plus geometries for vector sources."""

    source: str
    columns: list[str]
    rows: list[dict[str, str | None]]
    labels: list[str]
    geoms: np.ndarray | None = None  # shapely geometries in ``epsg`` (None entries allowed)
    epsg: int | None = None
    notes: list[str] = field(default_factory=list)


def read_register(path: Path, layer: str | None = None) -> RegisterTable:
    """Read ``path`` whatever its format; a file that cannot be read is a clear error."""
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return _read_csv(path)
    return _read_gdal(path, layer, sheet=suffix in SHEET_SUFFIXES)


def _read_csv(path: Path) -> RegisterTable:
    raw = path.read_bytes()
    text, encoding = _decode(raw, path)
    sample = text[:20_000]
    try:
        dialect: Any = csv.Sniffer().sniff(sample.splitlines()[0] if sample else "", _DELIMITERS)
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInput(f"{path}: the file is empty") from None
    columns = [name.strip() for name in header]
    _check_header(path, columns)
    rows: list[dict[str, str | None]] = []
    labels: list[str] = []
    for values in reader:
        line = reader.line_num
        if not any(value.strip() for value in values):
            continue
        if len(values) != len(columns):
            raise InvalidInput(
                f"{path}: row {line} has {len(values)} fields, the header {len(columns)}",
                locator=f"row {line}",
            )
        rows.append({c: (v if v.strip() else None) for c, v in zip(columns, values, strict=True)})
        labels.append(f"row {line}")
    table = RegisterTable(str(path), columns, rows, labels)
    table.notes.append(f"read as CSV, {encoding}, delimiter {dialect.delimiter!r}")
    return table


def _decode(raw: bytes, path: Path) -> tuple[str, str]:
    for encoding in _ENCODINGS:
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise InvalidInput(f"{path}: neither UTF-8 nor Windows-1250 text")


def _check_header(path: Path, columns: list[str]) -> None:
    seen: set[str] = set()
    for name in columns:
        if not name:
            raise InvalidInput(f"{path}: a column of the header has no name", locator="header")
        if name.casefold() in seen:
            raise InvalidInput(f"{path}: column {name!r} appears twice", locator=name)
        seen.add(name.casefold())


def _read_gdal(path: Path, layer: str | None, *, sheet: bool) -> RegisterTable:
    options = {"FIELD_TYPES": "STRING", "HEADERS": "FORCE"} if sheet else {}
    try:
        frame = pyogrio.read_dataframe(path, layer=layer, **options)
    except Exception as exc:  # GDAL raises many types; the message is what matters
        raise InvalidInput(f"{path}: cannot be read ({exc})") from None
    geometry_name = getattr(frame, "geometry", None) is not None and frame.geometry.name
    columns = [str(c) for c in frame.columns if c != geometry_name]
    _check_header(path, columns)
    rows: list[dict[str, str | None]] = []
    for record in frame[columns].itertuples(index=False, name=None):
        rows.append({c: _text(v) for c, v in zip(columns, record, strict=True)})
    first = 2 if sheet else 1
    word = "row" if sheet else "feature"
    labels = [f"{word} {index + first}" for index in range(len(rows))]
    table = RegisterTable(str(path), columns, rows, labels)
    if geometry_name:
        geoms = np.asarray(frame.geometry.values, dtype=object)
        geoms[shapely.is_empty(geoms)] = None
        table.geoms = geoms
        table.epsg = frame.crs.to_epsg() if frame.crs is not None else None
    table.notes.append(f"read with GDAL ({pyogrio.read_info(path, layer=layer)['driver']})")
    return table


def _text(value: object) -> str | None:
    """A cell as text; GDAL gives floats for numbers and NaN/None for empty cells."""
    if value is None:
        return None
    if isinstance(value, float):
        if value != value:  # NaN
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    text = str(value)
    return text if text.strip() else None
