"""Which register column feeds which field of an act (``--map target=source,...``).

Romanian registers use a handful of customary headers (``nr_act``, ``data_act``, ``tip``,
``nr_cadastral``, ...) that are recognised without a map; anything else is mapped on
the command line. A map that names an unknown target or a column the file does not
have is refused before any row is read, with the list of what exists.
"""

from __future__ import annotations

from collections.abc import Mapping

from gis_core.errors import InvalidParameter
from gis_core.search_keys import fold

TARGETS: dict[str, str] = {
    "number": "act number, e.g. 123 or 123/15.03.2024 (required)",
    "issued_on": "date of issue",
    "kind": "CU, AC or AD (or the words for them)",
    "status": "emis/issued, prelungit/extended, anulat/cancelled, finalizat/completed, ...",
    "purpose": "purpose of a CU or the works of an AC/AD",
    "address": "address of the imobil",
    "cadastral_numbers": "cadastral number(s) of the imobile, the first one primary",
    "land_book": "land-book (carte funciară) number",
    "validity_months": "validity in months set at issue",
    "requested_on": "date the request was registered",
    "applicant": "applicant's name (personal data)",
    "applicant_id": "applicant's CNP or CUI (personal data)",
    "source_id": "the register's own row identifier, when act numbers repeat",
    "uat_siruta": "SIRUTA code of the UAT the act belongs to",
    "x": "easting / longitude of the site (with y, in --source-crs)",
    "y": "northing / latitude of the site",
    "footprint_area": "proposed built footprint, m²",
    "floor_area": "proposed gross floor area, m²",
    "height_m": "proposed height, m",
    "levels": "proposed number of levels",
}
# Customary headers of Romanian registers, compared folded (no case, no diacritics).
CUSTOMARY: dict[str, str] = {
    "nr_act": "number",
    "numar_act": "number",
    "nr. act": "number",
    "data_act": "issued_on",
    "data_emiterii": "issued_on",
    "tip": "kind",
    "tip_act": "kind",
    "stare": "status",
    "scop": "purpose",
    "obiect": "purpose",
    "adresa_imobil": "address",
    "adresa": "address",
    "nr_cadastral": "cadastral_numbers",
    "numar_cadastral": "cadastral_numbers",
    "nr_cf": "land_book",
    "durata_valabilitate_luni": "validity_months",
    "valabilitate_luni": "validity_months",
    "data_cererii": "requested_on",
    "solicitant": "applicant",
    "beneficiar": "applicant",
    "cnp": "applicant_id",
    "cui": "applicant_id",
    "siruta": "uat_siruta",
}


def parse_map_option(text: str | None) -> dict[str, str]:
    """``"number=CaseID,cadastral_numbers=MapLots"`` as {target: source column}."""
    mapping: dict[str, str] = {}
    if not text:
        return mapping
    for item in text.split(","):
        if not item.strip():
            continue
        target, sep, source = item.partition("=")
        target, source = target.strip(), source.strip()
        if not sep or not target or not source:
            raise InvalidParameter(f"--map: {item.strip()!r} is not target=column", locator="map")
        if target not in TARGETS:
            known = ", ".join(TARGETS)
            raise InvalidParameter(
                f"--map: unknown field {target!r}; fields are: {known}", locator="map"
            )
        if target in mapping:
            raise InvalidParameter(f"--map: field {target!r} mapped twice", locator="map")
        mapping[target] = source
    return mapping


def resolve_columns(
    columns: list[str], explicit: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """{target: column} for this file, and the columns nobody reads (reported as a note)."""
    by_fold = {fold(c): c for c in columns}
    resolved: dict[str, str] = {}
    for target, source in explicit.items():
        column = source if source in columns else by_fold.get(fold(source), "")
        if not column:
            raise InvalidParameter(
                f"--map: {target}={source}: the file has no column {source!r} "
                f"(columns: {', '.join(columns)})",
                locator="map",
            )
        resolved[target] = column
    used = set(resolved.values())
    for name in columns:
        customary = CUSTOMARY.get(fold(name))
        if customary and customary not in resolved and name not in used:
            resolved[customary] = name
            used.add(name)
    if "number" not in resolved:
        raise InvalidParameter(
            "no column gives the act number: map one with --map number=COLUMN "
            f"(columns: {', '.join(columns)})",
            locator="map",
        )
    ignored = [c for c in columns if c not in used]
    return resolved, ignored
