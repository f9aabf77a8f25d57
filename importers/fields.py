"""Which source column feeds which of our fields: ``--map`` first, then known names.

Municipal files name the cadastral number CADGENNO, NR_CAD, nationalCadastralReference
or anything else; the importer recognises the common spellings (case, spaces and
underscores ignored), lets ``--map cadastral_number=ML`` override, and reports the
mapping it used so the clerk can check it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gis_core.errors import InvalidInput, InvalidParameter

PARCEL_FIELDS: dict[str, tuple[str, ...]] = {
    "cadastral_number": (
        "CADGENNO",
        "CADNO",
        "NRCAD",
        "NRCADASTRAL",
        "NUMARCADASTRAL",
        "NUMARCAD",
        "CADASTRALNUMBER",
        "NATIONALCADASTRALREFERENCE",
        "IDCADASTRAL",
        "PARCELID",
        "PARCELNUMBER",
        "PIN",
        "APN",
    ),
    "e2_identifier": ("E2IDENTIFIER", "IDE2", "E2ID", "IDETERRA"),
    "land_book_number": ("PAPERLBNO", "NRCF", "CF", "CARTEFUNCIARA", "LANDBOOK", "LANDBOOKNUMBER"),
    "cad_sector": ("CADSECTOR", "SECTORCAD", "SECTOR"),
    "topo_number": ("TOPONO", "NRTOPO", "NRTOPOGRAFIC"),
    "measured_area": (
        "MEASUREDAREA",
        "AREAVALUE",
        "SUPRAFATA",
        "SUPRAFATAMASURATA",
        "SUPMAS",
        "SUPRMAS",
        "SMAS",
    ),
    "legal_area": ("PARCELLEGALAREA", "LEGALAREA", "SUPRAFATAACTE", "SUPACTE"),
    "use_category": ("USECATEGORY", "CATEGORIE", "CATFOL", "CATEGORIEFOLOSINTA"),
    "intravilan": ("INTRAVILAN", "ENCLOSED"),
    "address_text": ("ADDRESSTEXT", "ADRESA", "ADDRESS", "ADRESAIMOBIL"),
    "notes": ("NOTES", "OBSERVATII", "MENTIUNI"),
}
BUILDING_FIELDS: dict[str, tuple[str, ...]] = {
    "source_id": ("OSMID", "OSMWAYID", "ID", "BUILDINGID", "UID", "GMLID", "GLOBALID"),
    "cadastral_number": ("CADGENNO", "NRCAD", "NRCADASTRAL", "CADASTRALNUMBER"),
    "building_number": ("BUILDNO", "NRCONSTRUCTIE", "BUILDINGNUMBER", "NRCORP"),
    "e2_identifier": ("E2IDENTIFIER", "IDE2"),
    "footprint_area": ("MEASUREDAREA", "SUPRAFATACONSTRUITA", "FOOTPRINT"),
    "floor_area": ("TOTALAREA", "SUPRAFATADESFASURATA", "FLOORAREA"),
    "levels": ("LEVELSNO", "NRNIVELURI", "LEVELS", "BUILDINGLEVELS"),
    "destination": ("BUILDINGDESTINATION", "DESTINATIE", "BUILDING", "USE"),
}
ZONE_FIELDS: dict[str, tuple[str, ...]] = {
    "utr_code": ("UTR", "CODUTR", "UTRCODE", "ZONETYPE", "ZONA", "ZONE", "ZONECODE", "COD"),
    "function": ("FUNCTIUNE", "FUNCTION", "FUNCTIUNEDOMINANTA", "DENUMIRE"),
    "source_id": ("GLOBALID", "GMLID", "OBJECTID", "FID", "ID"),
}
RESTRICTION_FIELDS: dict[str, tuple[str, ...]] = {
    "name": ("NAME", "DENUMIRE", "NUME", "HISTNAME", "TITLE"),
    "description": ("DESCRIPTION", "DESCRIERE", "ZONESUBTY", "FLDZONE", "TYPE", "TIP"),
    "source_id": ("GLOBALID", "GMLID", "OBJECTID", "FID", "COD", "CODLMI"),
}
RULE_FIELDS: dict[str, tuple[str, ...]] = {
    "utr_code": ("UTR", "CODUTR", "UTRCODE", "ZONETYPE", "ZONECODE", "COD", "ZONE"),
    "name": ("NAME", "DENUMIRE", "DISTRICTNAME", "NUME"),
    "function": ("FUNCTION", "FUNCTIUNE", "DISTRICTDESCRIPTION", "DESCRIERE", "DESCRIPTION"),
    "allowed_uses": ("ALLOWEDUSES", "UTILIZARIADMISE", "ADMISE"),
    "conditional_uses": ("CONDITIONALUSES", "UTILIZARIADMISECUCONDITIONARI", "CONDITIONATE"),
    "forbidden_uses": ("FORBIDDENUSES", "UTILIZARIINTERZISE", "INTERZISE"),
    "pot_max": ("POTMAX", "POT"),
    "cut_max": ("CUTMAX", "CUT"),
    "height_max_m": ("HEIGHTMAXM", "HMAX", "INALTIMEMAX", "INALTIMEMAXIMA", "HEIGHTMAX", "HEIGHT"),
    "height_regime": ("HEIGHTREGIME", "REGIMINALTIME", "REGIM"),
    "min_plot_area": ("MINPLOTAREA", "SUPRAFATAMINIMA", "SMIN", "PARCELAMINIMA"),
    "min_frontage": ("MINFRONTAGE", "FRONTMINIM", "FRONTMIN"),
    "rules_text": ("RULESTEXT", "REGULAMENT", "TEXT", "OBSERVATII", "NOTES"),
}

_FOLD = re.compile(r"[^A-Z0-9]")


def fold_name(name: str) -> str:
    """CADGENNO, cad_gen_no and "Cad Gen No" all compare equal."""
    return _FOLD.sub("", name.upper())


@dataclass(frozen=True)
class FieldMap:
    """Our field → the source column feeding it (only fields that have one)."""

    columns: dict[str, str]
    detected: tuple[str, ...]  # our fields whose column was recognised, not given

    def source(self, target: str) -> str | None:
        return self.columns.get(target)

    def describe(self) -> str:
        parts = [
            f"{target}={column}{' (detected)' if target in self.detected else ''}"
            for target, column in self.columns.items()
        ]
        return "field mapping: " + (", ".join(parts) if parts else "none")


def parse_map(text: Sequence[str] | str | None) -> dict[str, str]:
    """``--map a=B,c=D`` (repeatable) as {"a": "B", "c": "D"}."""
    if not text:
        return {}
    items = [text] if isinstance(text, str) else list(text)
    mapping: dict[str, str] = {}
    for item in items:
        for pair in item.split(","):
            if not pair.strip():
                continue
            target, sep, column = pair.partition("=")
            if not sep or not target.strip() or not column.strip():
                raise InvalidParameter(
                    f"--map {pair!r}: expected target=source_column", locator="map"
                )
            mapping[target.strip()] = column.strip()
    return mapping


def resolve(
    known: Mapping[str, tuple[str, ...]],
    source_fields: Sequence[str],
    given: Mapping[str, str],
    *,
    required: Sequence[str] = (),
    where: str,
) -> FieldMap:
    """Combine ``--map`` with auto-detection; unknown names are errors naming them."""
    unknown_targets = [target for target in given if target not in known]
    if unknown_targets:
        raise InvalidParameter(
            f"--map: unknown field {', '.join(unknown_targets)}; fields: {', '.join(known)}",
            locator="map",
        )
    by_fold = {fold_name(field): field for field in source_fields}
    columns: dict[str, str] = {}
    for target, column in given.items():
        actual = column if column in source_fields else by_fold.get(fold_name(column))
        if actual is None:
            raise InvalidInput(
                f"{where}: --map {target}={column}: the source has no column {column!r}; "
                f"its columns: {', '.join(source_fields)}"
            )
        columns[target] = actual
    detected = []
    used = set(columns.values())
    for target, names in known.items():
        if target in columns:
            continue
        for name in names:
            found = by_fold.get(name)
            if found is not None and found not in used:
                columns[target] = found
                used.add(found)
                detected.append(target)
                break
    missing = [target for target in required if target not in columns]
    if missing:
        raise InvalidInput(
            f"{where}: no column for {', '.join(missing)} was recognised; its columns: "
            f"{', '.join(source_fields)}. Name it with --map {missing[0]}=COLUMN"
        )
    return FieldMap(columns, tuple(detected))
