"""ANCPI CGXML files (and the older "CP" variant): rows of tables, geometry as Points.

The format (see DOMAIN.md): root ``<CGXML>`` (``<CP>`` in the older variant), each
child a table row named after its table (Land, Parcel, Building, Points, Address,
Person, Registration, ...), each grandchild a column with an upper-case name. The
older variant renames a few columns (CADNO for CADGENNO, IDE2 for E2IDENTIFIER, AREA
for MEASUREDAREA, LANDID for the Points' IMMOVABLEID); they are read as the standard
names so the rest of the importer sees one format.

This module only reads: numbers are parsed here (a bad number is an error naming the
file, row and column), geometry is assembled by the cadastre pipeline.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from lxml import etree

from gis_core.errors import InvalidInput
from importers.readers.safexml import iter_elements, local_name

ROOTS = ("CGXML", "CP")
SUFFIXES = (".cgxml", ".xml")
# Canonical table names, looked up case-insensitively.
TABLES = (
    "FileDescription",
    "Land",
    "Parcel",
    "Building",
    "IU",
    "BuildingCommonParts",
    "Points",
    "Address",
    "Person",
    "Registration",
    "RegistrationXEntity",
    "Deed",
    "Contested",
    "ContestedxEntity",
)
_TABLE_BY_UPPER = {name.upper(): name for name in TABLES}
# Column names of the older variant (and common synonyms) → the standard names.
ALIASES = {
    "Land": {"CADNO": "CADGENNO", "IDE2": "E2IDENTIFIER", "AREA": "MEASUREDAREA"},
    "Building": {"AREA": "MEASUREDAREA", "IDE2": "E2IDENTIFIER"},
    "Parcel": {"AREA": "MEASUREDAREA"},
    "Points": {"LANDID": "IMMOVABLEID"},
}


@dataclass(frozen=True)
class Row:
    """One table row: its column values as written (stripped) and its line in the file."""

    table: str
    values: dict[str, str]
    line: int

    def get(self, column: str) -> str | None:
        value = self.values.get(column)
        return value if value else None


@dataclass(frozen=True)
class Point:
    """A boundary vertex: ``x``/``y`` exactly as the file's X and Y columns."""

    number: int | None
    x: float
    y: float
    immovable_id: str | None
    building_id: str | None
    line: int


@dataclass
class CgxmlDocument:
    """All rows of one file, grouped by table, with the points parsed."""

    name: str
    root: str = ""
    rows: dict[str, list[Row]] = field(default_factory=dict)
    points: list[Point] = field(default_factory=list)

    def table(self, name: str) -> list[Row]:
        return self.rows.get(name, [])


def is_cgxml_path(path: Path) -> bool:
    return path.suffix.lower() in SUFFIXES


def expand(path: Path) -> list[tuple[str, Path, str | None]]:
    """The CGXML documents behind a PATH argument: (display name, file, zip member)."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and is_cgxml_path(p))
        if not files:
            raise InvalidInput(f"{path}: the folder holds no .cgxml files")
        return [(str(p), p, None) for p in files]
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as archive:
            members = sorted(
                name
                for name in archive.namelist()
                if not name.endswith("/") and is_cgxml_path(Path(name))
            )
        return [(f"{path}!{member}", path, member) for member in members]
    return [(str(path), path, None)]


def zip_holds_cgxml(path: Path) -> bool:
    with zipfile.ZipFile(path) as archive:
        return any(is_cgxml_path(Path(name)) for name in archive.namelist())


def read_document(name: str, path: Path, member: str | None) -> CgxmlDocument:
    """Parse one CGXML document (a file or a zip member) safely and completely."""
    if member is None:
        with path.open("rb") as stream:
            return _parse(stream, name)
    with zipfile.ZipFile(path) as archive, archive.open(member) as stream:
        return _parse(stream, name)


def _parse(stream: IO[bytes], name: str) -> CgxmlDocument:
    document = CgxmlDocument(name)
    root: etree._Element | None = None
    for element in iter_elements(stream, name):
        parent = element.getparent()
        if parent is None:
            root = element
            continue
        if parent.getparent() is not None:
            continue  # a column: read with its row
        _add_row(document, element)
        element.clear()
        while element.getprevious() is not None:
            del parent[0]
    if root is None or local_name(root).upper() not in ROOTS:
        found = local_name(root) if root is not None else "nothing"
        raise InvalidInput(f"{name}: not a CGXML file (root element <{found}>, expected <CGXML>)")
    document.root = local_name(root).upper()
    if not document.table("Land"):
        raise InvalidInput(f"{name}: the file has no Land rows (no imobil to import)")
    return document


def _add_row(document: CgxmlDocument, element: etree._Element) -> None:
    table = _TABLE_BY_UPPER.get(local_name(element).upper())
    if table is None:
        return  # tables this platform does not use (nomenclatures, signatures, ...)
    aliases = ALIASES.get(table, {})
    values: dict[str, str] = {}
    for child in element:
        column = local_name(child).upper()
        values[aliases.get(column, column)] = (child.text or "").strip()
    line = int(element.sourceline or 0)
    if table == "Points":
        document.points.append(_point(document.name, values, line))
        return
    document.rows.setdefault(table, []).append(Row(table, values, line))


def _point(name: str, values: dict[str, str], line: int) -> Point:
    number_text = values.get("NO", "")
    where = f"{name}: Points row at line {line} (NO={number_text or '?'})"
    number = parse_int(number_text, where, "NO") if number_text else None
    immovable = values.get("IMMOVABLEID") or None
    building = values.get("BUILDINGID") or None
    if immovable is None and building is None:
        raise InvalidInput(f"{where}, field IMMOVABLEID: the point belongs to no Land or Building")
    return Point(
        number=number,
        x=parse_float(values.get("X", ""), where, "X"),
        y=parse_float(values.get("Y", ""), where, "Y"),
        immovable_id=immovable,
        building_id=building,
        line=line,
    )


def parse_float(text: str, where: str, column: str) -> float:
    """A decimal number as CGXML writes it (a decimal comma is accepted)."""
    cleaned = text.strip().replace(",", ".")
    try:
        value = float(cleaned)
    except ValueError:
        raise InvalidInput(f"{where}, field {column}: {text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise InvalidInput(f"{where}, field {column}: {text!r} is not a finite number")
    return value


def parse_int(text: str, where: str, column: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise InvalidInput(f"{where}, field {column}: {text!r} is not a whole number") from None


def parse_bool(text: str | None) -> bool | None:
    if text is None:
        return None
    folded = text.strip().lower()
    if folded in ("true", "1", "da", "yes", "y"):
        return True
    if folded in ("false", "0", "nu", "no", "n"):
        return False
    return None


def documents(paths: list[Path]) -> Iterator[CgxmlDocument]:
    """Every document behind the PATH arguments, one at a time (memory: one file)."""
    for path in paths:
        for name, file_path, member in expand(path):
            yield read_document(name, file_path, member)
