"""CGXML files into parcels, their use sub-parcels, buildings and (if asked) owners.

A CGXML file is ANCPI's complete, signed description of an imobil, so a defect that
makes its content uncertain (a Land without Points, a ring of fewer than three points,
a bad number, points written in two axis orders) fails the whole import with the
file, row and field named: importing the rest would silently drop an imobil from the
register. A self-crossing ring is repaired when the repaired area still matches
MEASUREDAREA, otherwise the file is refused likewise.

Axis order: CGXML writes X = northing, Y = easting. Each file's points are tested
against the municipality in both orders; a file consistently written easting-first is
read that way and reported (finding ``axes_swapped``), a file mixing both is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_core.bulk import copy_rows
from gis_core.crs.transform import transform_points
from gis_core.errors import InvalidInput
from gis_core.search_keys import search_key
from gis_core.settings import Settings
from importers.cadastre import CadastreOptions, building_target, parcel_target, require_staged
from importers.fields import FieldMap
from importers.merge import Target, create_stage, index_stage, merge
from importers.progress import Progress
from importers.readers import cgxml
from importers.readers.batch import FeatureBatch
from importers.report import Finding, ImportReport
from importers.sourcecrs import CrsDecision, Municipality, municipality
from importers.values import boolean
from importers.vector import Converted, VectorJob, stage_batch

STEREO70 = 3844
BATCH_IMOBILE = 2_000
CLOSE_TOLERANCE_M = 0.001


@dataclass
class Drawn:
    """One Land or Building with its ring (easting, northing) and where it came from."""

    row: cgxml.Row
    ring: np.ndarray
    label: str


@dataclass
class Imobil:
    """Everything the platform keeps of one Land."""

    file: str
    land: Drawn
    buildings: list[Drawn] = field(default_factory=list)
    uses: list[cgxml.Row] = field(default_factory=list)
    address: cgxml.Row | None = None
    persons: list[cgxml.Row] = field(default_factory=list)


def import_documents(
    conn: Connection,
    settings: Settings,
    paths: list[Path],
    options: CadastreOptions,
    report: ImportReport,
    run_id: int | None,
    progress: Progress,
) -> None:
    """Stage every document's imobile and buildings, then merge both (one transaction)."""
    place = municipality(conn, settings.storage_srid, settings.uat_siruta)
    parcels = parcel_target(settings.uat_siruta)
    buildings = building_target(settings.uat_siruta, ("cadastral_number", "building_number"))
    parcel_job = VectorJob(conn, parcels, settings.storage_srid, place, report, progress)
    building_job = VectorJob(
        conn, buildings, settings.storage_srid, place, report, progress, check_outside=False
    )
    create_stage(conn, parcels)
    create_stage(conn, buildings)
    _create_side_stages(conn)
    progress.start("CGXML imobile", None)
    files = 0
    pending: list[Imobil] = []
    for document in cgxml.documents(paths):
        files += 1
        pending.extend(_imobile(document, place, report))
        if len(pending) >= BATCH_IMOBILE:
            _stage(parcel_job, building_job, pending, options.with_persons, settings.uat_name)
            progress.advance(len(pending))
            pending = []
    if pending:
        _stage(parcel_job, building_job, pending, options.with_persons, settings.uat_name)
        progress.advance(len(pending))
    progress.finish()
    report.note(f"{files} CGXML files read as EPSG:{STEREO70} (X = northing, Y = easting)")
    if not options.with_persons:
        report.note("Person/Registration data not imported (use --with-persons)")
    require_staged(conn, parcels, report)
    _link_addresses(conn, settings.uat_siruta)
    index_stage(conn, parcels)
    if options.overlap_tolerance is not None:
        from importers.checks import report_overlaps

        report_overlaps(conn, parcels, report, options.overlap_tolerance)
    progress.phase("merging into cadastre.parcel")
    counts = merge(
        conn, parcels, run_id, provided=parcels.data_columns, replace=options.mode == "replace"
    )
    for name, value in counts.as_dict().items():
        report.counts[name] += value
    _write_uses(conn, settings.uat_siruta, run_id)
    building_counts = _merge_buildings(conn, buildings, run_id)
    report.details["buildings"] = building_counts
    if options.with_persons:
        report.details["owners"] = _write_owners(conn, settings.uat_siruta, run_id)
    from gis_core.twins import fill_missing_twins

    for table in ("cadastre.parcel", "cadastre.building"):
        fill_missing_twins(conn, table, settings.storage_srid)


def _create_side_stages(conn: Connection) -> None:
    conn.execute(
        sa.text(
            "CREATE TEMP TABLE stage_use (cadastral_number text, number integer, "
            "use_category text, measured_area numeric(14, 2), intravilan boolean) ON COMMIT DROP"
        )
    )
    conn.execute(
        sa.text(
            "CREATE TEMP TABLE stage_owner (cadastral_number text, kind text, name text, "
            "national_id text, id_document text, address_text text, share text, "
            "right_kind text) ON COMMIT DROP"
        )
    )


# --- reading one document ------------------------------------------------------------


def _imobile(
    document: cgxml.CgxmlDocument, place: Municipality, report: ImportReport
) -> list[Imobil]:
    name = document.name
    swapped = _axis_order(document, place, report)
    by_land: dict[str, list[cgxml.Point]] = {}
    by_building: dict[str, list[cgxml.Point]] = {}
    for point in document.points:
        if point.immovable_id is not None:
            by_land.setdefault(point.immovable_id, []).append(point)
        elif point.building_id is not None:
            by_building.setdefault(point.building_id, []).append(point)
    addresses = {row.get("ADDRESSID"): row for row in document.table("Address")}
    result = []
    for land in document.table("Land"):
        land_id = land.get("LANDID")
        number_text = land.get("CADGENNO")
        label = f"{name}: Land LANDID={land_id or '?'}" + (
            f" (cadastral number {number_text})" if number_text else ""
        )
        if number_text is None:
            raise InvalidInput(
                f"{label} at line {land.line}, field CADGENNO: the Land has no cadastral number"
            )
        ring = _ring(by_land.get(land_id or "", []), swapped, label, land.line, "IMMOVABLEID")
        imobil = Imobil(
            name, Drawn(land, ring, label), address=addresses.get(land.get("ADDRESSID"))
        )
        for building in document.table("Building"):
            if building.get("LANDID") != land_id:
                continue
            building_label = (
                f"{name}: Building BUILDINGID={building.get('BUILDINGID')} of {number_text}"
            )
            points = by_building.get(building.get("BUILDINGID") or "", [])
            building_ring = _ring(points, swapped, building_label, building.line, "BUILDINGID")
            imobil.buildings.append(Drawn(building, building_ring, building_label))
        imobil.uses = [row for row in document.table("Parcel") if row.get("LANDID") == land_id]
        imobil.persons = document.table("Person") if len(document.table("Land")) == 1 else []
        result.append(imobil)
    return result


def _axis_order(document: cgxml.CgxmlDocument, place: Municipality, report: ImportReport) -> bool:
    """True when the file is written easting-first (X = easting), against the convention."""
    if not document.points:
        return False
    x = np.array([p.x for p in document.points])
    y = np.array([p.y for p in document.points])
    standard = _inside(place, east=y, north=x)
    swapped = _inside(place, east=x, north=y)
    if standard.all():
        return False
    if swapped.all():
        report.add(
            Finding(
                "axes_swapped",
                "Points are written X = easting, Y = northing (CGXML has X = northing); "
                "read in that order",
                feature=document.name,
                field="X/Y",
            )
        )
        return True
    majority_swapped = swapped.sum() > standard.sum()
    odd = np.flatnonzero(standard if majority_swapped else swapped & ~standard)
    if odd.size == 0:
        odd = np.flatnonzero(~standard & ~swapped)
    point = document.points[int(odd[0])]
    raise InvalidInput(
        f"{document.name}: Points row at line {point.line} (NO={point.number}), fields X/Y: "
        f"X={point.x:.3f}, Y={point.y:.3f} does not fit {place.described} in the axis order "
        "of the file's other points (or in any order): the file mixes or garbles coordinates"
    )


def _inside(place: Municipality, *, east: np.ndarray, north: np.ndarray) -> np.ndarray:
    if place.storage_srid == STEREO70:
        return place.contains(east, north)
    moved = transform_points(STEREO70, place.storage_srid, east, north)
    return place.contains(moved.x, moved.y) & ~moved.failed


def _ring(
    points: list[cgxml.Point], swapped: bool, label: str, line: int, column: str
) -> np.ndarray:
    """The closed ring (easting, northing) of a Land or Building, in file order."""
    if not points:
        raise InvalidInput(
            f"{label} at line {line}: no Points rows with {column} = its id, so it has no boundary"
        )
    coords = np.array([(p.x, p.y) if swapped else (p.y, p.x) for p in points], dtype=np.float64)
    if len(coords) > 1 and np.hypot(*(coords[-1] - coords[0])) <= CLOSE_TOLERANCE_M:
        coords = coords[:-1]
    distinct = np.unique(np.round(coords, 3), axis=0)
    if len(distinct) < 3:
        raise InvalidInput(
            f"{label} at line {line}: its Points (NO {points[0].number}…{points[-1].number}) "
            f"give {len(distinct)} distinct positions; a ring needs at least 3 to be closed"
        )
    return np.vstack([coords, coords[:1]])


# --- staging ---------------------------------------------------------------------------


def _stage(
    parcel_job: VectorJob,
    building_job: VectorJob,
    imobile: list[Imobil],
    with_persons: bool,
    uat_name: str,
) -> None:
    decision = CrsDecision(STEREO70, False)
    parcel_job.report.counts["read"] += len(imobile)
    _stage_drawn(parcel_job, [i.land for i in imobile], _land_columns(imobile, uat_name), decision)
    drawn = [b for i in imobile for b in i.buildings]
    if drawn:
        _stage_drawn(building_job, drawn, _building_columns(imobile), decision)
    conn = parcel_job.conn
    copy_rows(
        conn,
        "pg_temp.stage_use",
        ["cadastral_number", "number", "use_category", "measured_area", "intravilan"],
        [
            (
                i.land.row.get("CADGENNO"),
                _integer(use, "NUMBER"),
                use.get("USECATEGORY") or i.land.row.get("USECATEGORY") or "?",
                _area(use, "MEASUREDAREA"),
                boolean(use.get("INTRAVILAN")),
            )
            for i in imobile
            for use in i.uses
        ],
    )
    if with_persons:
        copy_rows(conn, "pg_temp.stage_owner", list(_OWNER_COLUMNS), _owner_rows(imobile))


def _stage_drawn(
    job: VectorJob, drawn: list[Drawn], columns: dict[str, list[Any]], decision: CrsDecision
) -> None:
    polygons = np.asarray([shapely.Polygon(d.ring) for d in drawn], dtype=object)
    batch = FeatureBatch(
        start=job.next_row,
        wkb=np.asarray(shapely.to_wkb(polygons), dtype=object),
        columns={},
        labels=np.asarray([d.label for d in drawn], dtype=object),
    )
    geoms = np.asarray(polygons, dtype=object)
    unread = np.zeros(len(drawn), dtype=bool)
    measured = columns.get("measured_area") or columns.get("footprint_area")

    def convert(_batch: FeatureBatch, _fields: FieldMap, _report: ImportReport) -> Converted:
        return Converted(columns, None, measured)

    before = job.report.finding_counts["repaired"]
    mismatches = job.report.finding_counts["area_mismatch"]
    stage_batch(job, batch, geoms, unread, decision, FieldMap({}, ()), convert)
    if (
        job.report.finding_counts["repaired"] > before
        and job.report.finding_counts["area_mismatch"] > mismatches
    ):
        repaired = [f for f in job.report.findings if f.code == "repaired"][-1]
        raise InvalidInput(
            f"{repaired.feature}: the boundary crosses itself and the repaired polygon no "
            "longer matches MEASUREDAREA, so the file cannot be trusted; fix it at the source"
        )
    job.next_row += len(drawn)


def _land_columns(imobile: list[Imobil], uat_name: str) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {name: [] for name in parcel_target(0).data_columns}
    columns["address_key"] = []
    for imobil in imobile:
        land = imobil.land.row
        columns["cadastral_number"].append(land.get("CADGENNO"))
        columns["e2_identifier"].append(land.get("E2IDENTIFIER"))
        columns["land_book_number"].append(land.get("PAPERLBNO") or land.get("CADGENNO"))
        columns["cad_sector"].append(land.get("CADSECTOR"))
        columns["topo_number"].append(land.get("TOPONO"))
        columns["measured_area"].append(_area(land, "MEASUREDAREA"))
        columns["legal_area"].append(_area(land, "PARCELLEGALAREA"))
        columns["use_category"].append(land.get("USECATEGORY"))
        columns["intravilan"].append(boolean(land.get("ENCLOSED")))
        text = _address_text(imobil, uat_name)
        columns["address_text"].append(text)
        columns["address_key"].append(search_key(text) if text else None)
        columns["notes"].append(land.get("NOTES"))
        columns["address_id"].append(None)
    return columns


def _address_text(imobil: Imobil, uat_name: str) -> str | None:
    """ "Strada Memorandumului nr. 21, Cluj-Napoca" (or the DESCRIPTION of a field)."""
    row = imobil.address
    if row is None:
        return None
    street = " ".join(part for part in (row.get("STREETTYPE"), row.get("STREETNAME")) if part)
    if not street:
        return row.get("DESCRIPTION")
    number_text = row.get("POSTALNUMBER")
    text = f"{street} nr. {number_text}" if number_text else street
    return f"{text}, {uat_name}"


def _building_columns(imobile: list[Imobil]) -> dict[str, list[Any]]:
    target = building_target(0, ("cadastral_number", "building_number"))
    columns: dict[str, list[Any]] = {name: [] for name in target.data_columns}
    for imobil in imobile:
        for building in imobil.buildings:
            row = building.row
            columns["cadastral_number"].append(imobil.land.row.get("CADGENNO"))
            columns["building_number"].append(
                f"C{row.get('BUILDNO')}" if row.get("BUILDNO") else None
            )
            columns["e2_identifier"].append(row.get("E2IDENTIFIER"))
            columns["destination"].append(row.get("BUILDINGDESTINATION"))
            columns["footprint_area"].append(_area(row, "MEASUREDAREA"))
            columns["floor_area"].append(_area(row, "TOTALAREA"))
            columns["levels"].append(_integer(row, "LEVELSNO"))
            columns["height_m"].append(None)
            columns["is_legal"].append(boolean(row.get("ISLEGAL")))
            columns["source_id"].append(None)
    return columns


def _area(row: cgxml.Row, column: str) -> float | None:
    text = row.get(column)
    if text is None:
        return None
    where = f"{row.table} row at line {row.line}"
    return cgxml.parse_float(text, where, column)


def _integer(row: cgxml.Row, column: str) -> int | None:
    text = row.get(column)
    if text is None:
        return None
    return cgxml.parse_int(text, f"{row.table} row at line {row.line}", column)


_OWNER_COLUMNS = (
    "cadastral_number",
    "kind",
    "name",
    "national_id",
    "id_document",
    "address_text",
    "share",
    "right_kind",
)


def _owner_rows(imobile: list[Imobil]) -> Iterator[tuple[Any, ...]]:
    for imobil in imobile:
        for person in imobil.persons:
            name = (
                " ".join(part for part in (person.get("LASTNAME"), person.get("FIRSTNAME")) if part)
                or person.get("NAME")
                or "?"
            )
            physical = boolean(person.get("ISPHYSICAL"))
            yield (
                imobil.land.row.get("CADGENNO"),
                "legal" if physical is False else "natural",
                name,
                person.get("IDCODE") or person.get("CNP"),
                person.get("IDCARD") or person.get("IDDOCUMENT"),
                person.get("ADDRESS"),
                person.get("QUOTA") or person.get("SHARE"),
                person.get("RIGHTTYPE"),
            )


# --- merging ---------------------------------------------------------------------------


def _link_addresses(conn: Connection, uat_siruta: int) -> None:
    """Point parcels at the gazetteer address with the same search key (ș/ş alike)."""
    conn.execute(
        sa.text(
            "UPDATE pg_temp.stage_parcel s SET address_id = a.id FROM (SELECT DISTINCT ON "
            "(search_text) id, search_text FROM cadastre.address WHERE uat_siruta = :uat "
            "ORDER BY search_text, id) a WHERE a.search_text = s.address_key"
        ),
        {"uat": uat_siruta},
    )


def _write_uses(conn: Connection, uat_siruta: int, run_id: int | None) -> None:
    """Use sub-parcels of the parcel versions this run inserted."""
    conn.execute(
        sa.text(
            "INSERT INTO cadastre.parcel_use (parcel_id, number, use_category, measured_area, "
            "intravilan, geom) SELECT p.id, u.number, u.use_category, u.measured_area, "
            "u.intravilan, CASE WHEN (SELECT count(*) FROM pg_temp.stage_use x "
            "WHERE x.cadastral_number = u.cadastral_number) = 1 THEN p.geom END "
            "FROM pg_temp.stage_use u JOIN cadastre.parcel p ON p.cadastral_number = "
            "u.cadastral_number AND p.uat_siruta = :uat AND p.valid_to IS NULL "
            "AND p.import_run_id IS NOT DISTINCT FROM :run "
            "AND p.valid_from = now()"
        ),
        {"uat": uat_siruta, "run": run_id},
    )


def _merge_buildings(conn: Connection, target: Target, run_id: int | None) -> dict[str, int]:
    """Buildings of the imported imobile; those no longer in their file are closed."""
    index_stage(conn, target)
    counts = merge(conn, target, run_id, provided=target.data_columns, replace=False)
    closed = conn.execute(
        sa.text(
            "UPDATE cadastre.building b SET valid_to = now() WHERE b.valid_to IS NULL "
            "AND b.uat_siruta = :uat AND b.valid_from < now() "
            "AND b.cadastral_number IN (SELECT cadastral_number FROM pg_temp.stage_parcel) "
            "AND NOT EXISTS (SELECT 1 FROM merge_match m WHERE m.old_id = b.id)"
        ),
        {"uat": target.scope["uat_siruta"]},
    )
    counts.closed = int(closed.rowcount)
    return counts.as_dict()


def _write_owners(conn: Connection, uat_siruta: int, run_id: int | None) -> int:
    """Owners into the protected tables, attached to the current parcel versions."""
    conn.execute(
        sa.text(
            "DELETE FROM protected.parcel_owner o USING cadastre.parcel p "
            "WHERE o.parcel_id = p.id AND p.uat_siruta = :uat AND p.valid_to IS NULL "
            "AND p.cadastral_number IN (SELECT cadastral_number FROM pg_temp.stage_owner)"
        ),
        {"uat": uat_siruta},
    )
    conn.execute(
        sa.text(
            "INSERT INTO protected.person (kind, name, national_id, id_document, address_text, "
            "import_run_id) SELECT DISTINCT ON (coalesce(national_id, name)) kind, name, "
            "national_id, id_document, address_text, :run FROM pg_temp.stage_owner s "
            "WHERE NOT EXISTS (SELECT 1 FROM protected.person p WHERE p.national_id = "
            "s.national_id OR (s.national_id IS NULL AND p.name = s.name))"
        ),
        {"run": run_id},
    )
    inserted = conn.execute(
        sa.text(
            "INSERT INTO protected.parcel_owner (parcel_id, person_id, share, right_kind) "
            "SELECT DISTINCT ON (p.id, person.id) p.id, person.id, s.share, s.right_kind "
            "FROM pg_temp.stage_owner s JOIN cadastre.parcel p ON p.cadastral_number = "
            "s.cadastral_number AND p.uat_siruta = :uat AND p.valid_to IS NULL "
            "JOIN protected.person person ON person.national_id = s.national_id "
            "OR (s.national_id IS NULL AND person.name = s.name)"
        ),
        {"uat": uat_siruta},
    )
    return int(inserted.rowcount)
