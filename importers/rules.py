"""The rules table of a plan (RLU): one row per UTR, from CSV or XLSX, into ``regulation``.

CSV files come in every dialect municipal offices produce (comma or semicolon, UTF-8
with or without BOM, or the Windows code page CP1250); the delimiter is sniffed and the
encoding detected. Uses are lists separated by ";" or "|". POT is a percentage (0–100),
CUT a ratio (0–20), heights metres; a bad value is a finding naming the row and column
and the value is left empty. Rows are upserted by (plan, UTR code).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_core.errors import InvalidInput
from importers.fields import RULE_FIELDS, resolve
from importers.report import Finding, ImportReport
from importers.values import number, text, uses

NUMERIC_LIMITS = {
    "pot_max": (0.0, 100.0),
    "cut_max": (0.0, 20.0),
    "height_max_m": (0.0, 500.0),
    "min_plot_area": (0.0, 1e9),
    "min_frontage": (0.0, 1e5),
}
LISTS = ("allowed_uses", "conditional_uses", "forbidden_uses")
TEXTS = ("name", "function", "height_regime", "rules_text")


def read_table(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """Header and rows of a CSV or XLSX file (first sheet)."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(path)
    if suffix in (".csv", ".txt", ".tsv"):
        return _read_csv(path)
    raise InvalidInput(f"{path}: the rules table must be .csv or .xlsx")


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "cp1250"):
        try:
            content = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    try:
        dialect = csv.Sniffer().sniff(content[:8192], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(content), dialect=dialect)
    header = [name.strip() for name in reader.fieldnames or []]
    reader.fieldnames = header
    return header, list(reader)


def _read_xlsx(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = workbook.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        first = next(rows, None)
        if first is None:
            return [], []
        header = [str(cell).strip() if cell is not None else "" for cell in first]
        data = [
            dict(zip(header, row, strict=False)) for row in rows if any(c is not None for c in row)
        ]
    finally:
        workbook.close()
    return header, data


def write_rules(
    conn: Connection,
    plan_id: int,
    path: Path,
    given: Mapping[str, str],
    report: ImportReport,
) -> dict[str, int]:
    """Upsert the table's rules into the plan; returns counts (inserted, updated, unchanged)."""
    header, rows = read_table(path)
    mapping = resolve(RULE_FIELDS, header, given, required=["utr_code"], where=str(path))
    report.note(f"{path}: {mapping.describe()}")
    seen: dict[str, int] = {}
    records = []
    for number_in_file, row in enumerate(rows, start=2):
        where = f"{path.name} row {number_in_file}"
        record = _record(row, mapping.columns, where, report)
        if record is None:
            continue
        code = record["utr_code"]
        if code in seen:
            report.add(
                Finding(
                    "duplicate_rule",
                    f"UTR {code} is already defined in row {seen[code]}; this row is ignored",
                    feature=where,
                    field="utr_code",
                )
            )
            continue
        seen[code] = number_in_file
        records.append(record)
    return _upsert(conn, plan_id, records)


def _record(
    row: Mapping[str, Any], columns: Mapping[str, str], where: str, report: ImportReport
) -> dict[str, Any] | None:
    def cell(target: str) -> Any:
        column = columns.get(target)
        return row.get(column) if column else None

    code = text(cell("utr_code"))
    if code is None:
        report.add(
            Finding("rule_without_utr", "the row has no UTR code: ignored", where, "utr_code")
        )
        return None
    record: dict[str, Any] = {"utr_code": code}
    for name in TEXTS:
        record[name] = text(cell(name))
    for name in LISTS:
        record[name] = uses(cell(name))
    for name, (low, high) in NUMERIC_LIMITS.items():
        value = cell(name)
        try:
            parsed = number(value)
        except ValueError:
            report.add(
                Finding("bad_number", f"{value!r} is not a number", where, columns.get(name))
            )
            parsed = None
        if parsed is not None and not low <= parsed <= high:
            report.add(
                Finding(
                    "bad_number",
                    f"{parsed:g} is out of range for {name} ({low:g}…{high:g})",
                    where,
                    columns.get(name),
                )
            )
            parsed = None
        record[name] = parsed
    return record


_COLUMNS = ("utr_code", *TEXTS, *LISTS, *NUMERIC_LIMITS)


def _upsert(conn: Connection, plan_id: int, records: list[dict[str, Any]]) -> dict[str, int]:
    counts = {"inserted": 0, "updated": 0, "unchanged": 0}
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS if c != "utr_code")
    differs = " OR ".join(
        f"r.{c} IS DISTINCT FROM EXCLUDED.{c}" for c in _COLUMNS if c != "utr_code"
    )
    statement = sa.text(
        f"INSERT INTO urbanism.regulation AS r (plan_id, {', '.join(_COLUMNS)}) "  # noqa: S608
        f"VALUES (:plan_id, {', '.join(':' + c for c in _COLUMNS)}) "
        f"ON CONFLICT (plan_id, utr_code) DO UPDATE SET {updates} WHERE {differs} "
        "RETURNING (xmax = 0) AS inserted"
    )
    for record in records:
        result = conn.execute(statement, {"plan_id": plan_id, **record}).first()
        if result is None:
            counts["unchanged"] += 1
        elif result[0]:
            counts["inserted"] += 1
        else:
            counts["updated"] += 1
    return counts
