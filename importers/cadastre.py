"""``urbangis import cadastre``: parcels (imobile) or buildings from CGXML, any OGR vector
file or a WFS, validated, versioned and merged in one transaction.

Parcels are recognised across imports by their cadastral number within the UAT, and
by the eTerra E2IDENTIFIER when the number changed. Buildings from CGXML by cadastral
number and building number (C1, C2, ...); buildings from other sources by their
source id (OSM id, gml:id, ...).

Rejections: a feature without a cadastral number, without a usable polygon or whose
coordinates cannot be transformed is rejected and reported, the others are imported;
if nothing importable remains the import fails. ``--strict`` fails on any finding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gis_core.errors import InvalidInput, InvalidParameter
from gis_core.settings import Settings
from importers import fields as field_names
from importers.fields import FieldMap, resolve
from importers.merge import Target, staged_count
from importers.progress import Progress
from importers.readers import cgxml
from importers.readers.batch import FeatureBatch, VectorSource
from importers.report import ImportReport
from importers.runner import RunRequest, run_import
from importers.sourcecrs import municipality
from importers.values import boolean_array, number_array, text_array
from importers.vector import (
    DEFAULT_BATCH,
    Converted,
    VectorJob,
    complete,
    create,
    stage_source,
)

MODES = ("append", "replace")
FEATURES = ("parcels", "buildings")
PARCEL_TEXT = (
    "e2_identifier",
    "land_book_number",
    "cad_sector",
    "topo_number",
    "use_category",
    "address_text",
    "notes",
)
PARCEL_COLUMNS = (
    *PARCEL_TEXT,
    "measured_area",
    "legal_area",
    "intravilan",
    "address_id",
)
BUILDING_TEXT = ("cadastral_number", "building_number", "e2_identifier", "destination")
BUILDING_COLUMNS = (
    *BUILDING_TEXT,
    "footprint_area",
    "floor_area",
    "levels",
    "height_m",
    "is_legal",
)
MAX_AREA = 1e11


@dataclass(frozen=True)
class CadastreOptions:
    """The command's options (see ``urbangis import cadastre --help``)."""

    source_crs: int | None = None
    layer: str | None = None
    field_map: Mapping[str, str] = field(default_factory=dict)
    mode: str = "append"
    dry_run: bool = False
    strict: bool = False
    with_persons: bool = False
    features: str = "parcels"
    encoding: str | None = None
    where: str | None = None
    overlap_tolerance: float | None = 1.0
    batch_size: int = DEFAULT_BATCH

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidParameter(f"--mode must be one of {', '.join(MODES)}", locator="mode")
        if self.features not in FEATURES:
            raise InvalidParameter(
                f"--features must be one of {', '.join(FEATURES)}", locator="features"
            )

    def parameters(self) -> dict[str, Any]:
        return {
            "source_crs": self.source_crs,
            "layer": self.layer,
            "map": dict(self.field_map),
            "mode": self.mode,
            "strict": self.strict,
            "with_persons": self.with_persons,
            "features": self.features,
            "encoding": self.encoding,
            "where": self.where,
        }


def parcel_target(uat_siruta: int) -> Target:
    return Target(
        kind="parcels",
        table="cadastre.parcel",
        key=("cadastral_number",),
        alt_key="e2_identifier",
        attributes=PARCEL_COLUMNS,
        scope={"uat_siruta": uat_siruta},
        key_label="cadastral number",
        helpers=(("address_key", "text"),),
        geometry_required=False,
    )


def building_target(uat_siruta: int, key: tuple[str, ...]) -> Target:
    return Target(
        kind="buildings",
        table="cadastre.building",
        key=key,
        alt_key="e2_identifier" if key != ("source_id",) else None,
        attributes=(*BUILDING_COLUMNS, "source_id"),
        scope={"uat_siruta": uat_siruta},
        key_label="building" if key != ("source_id",) else "source id",
    )


def import_cadastre(
    engine: Engine,
    settings: Settings,
    paths: Sequence[str],
    options: CadastreOptions,
    progress: Progress | None = None,
) -> ImportReport:
    """Import parcels or buildings from ``paths``; returns the report (raises ImportFailed)."""
    if not paths:
        raise InvalidParameter("give at least one PATH to import", locator="PATH")
    progress = progress or Progress(enabled=False)
    request = RunRequest(
        kind=f"cadastre.{options.features}",
        sources=list(paths),
        parameters=options.parameters(),
        dry_run=options.dry_run,
        strict=options.strict,
    )
    if all(_is_cgxml(path) for path in paths):
        from importers.cgxml_import import import_documents

        def body(conn: Connection, report: ImportReport, run_id: int | None) -> None:
            import_documents(
                conn, settings, [Path(p) for p in paths], options, report, run_id, progress
            )

        return run_import(engine, request, body)
    if any(_is_cgxml(path) for path in paths):
        raise InvalidParameter(
            "CGXML files and other formats cannot be mixed in one import: run them separately",
            locator="PATH",
        )

    def vector_body(conn: Connection, report: ImportReport, run_id: int | None) -> None:
        _import_vectors(conn, settings, paths, options, report, run_id, progress)

    return run_import(engine, request, vector_body)


def _is_cgxml(path: str) -> bool:
    if path.upper().startswith("WFS:"):
        return False
    candidate = Path(path)
    if candidate.is_dir():
        return any(cgxml.is_cgxml_path(p) for p in candidate.rglob("*") if p.is_file())
    if candidate.suffix.lower() == ".cgxml":
        return True
    if candidate.suffix.lower() == ".zip" and candidate.is_file():
        return cgxml.zip_holds_cgxml(candidate)
    if candidate.suffix.lower() == ".xml" and candidate.is_file():
        with candidate.open("rb") as stream:
            head = stream.read(4096).upper()
        return b"<CGXML" in head or b"<CP>" in head or b"<CP " in head
    return False


def open_sources(
    paths: Sequence[str], layer: str | None, encoding: str | None, where: str | None
) -> list[VectorSource]:
    """A reader for each PATH: a WFS URL or a file/zip OGR reads."""
    from importers.readers.ogr import OgrSource

    sources: list[VectorSource] = []
    for path in paths:
        if path.upper().startswith("WFS:"):
            from importers.readers.wfs import WfsSource

            sources.append(WfsSource(path[4:], layer=layer))
        else:
            sources.append(OgrSource(Path(path), layer=layer, encoding=encoding, where=where))
    return sources


def _import_vectors(
    conn: Connection,
    settings: Settings,
    paths: Sequence[str],
    options: CadastreOptions,
    report: ImportReport,
    run_id: int | None,
    progress: Progress,
) -> None:
    sources = open_sources(paths, options.layer, options.encoding, options.where)
    place = municipality(conn, settings.storage_srid, settings.uat_siruta)
    parcels = options.features == "parcels"
    target = (
        parcel_target(settings.uat_siruta)
        if parcels
        else building_target(settings.uat_siruta, ("source_id",))
    )
    job = VectorJob(
        conn,
        target,
        settings.storage_srid,
        place,
        report,
        progress,
        source_crs=options.source_crs,
        batch_size=options.batch_size,
        run_id=run_id,
        direct_ok=len(sources) == 1,
    )
    create(job)
    provided: set[str] = set()
    for source in sources:
        report.notes.extend(source.info.notes)
        fields = resolve(
            field_names.PARCEL_FIELDS if parcels else field_names.BUILDING_FIELDS,
            source.info.fields,
            options.field_map,
            required=["cadastral_number"] if parcels else ["source_id"],
            where=source.info.name,
        )
        report.note(f"{source.info.name}: {fields.describe()}")
        provided.update(fields.columns)
        stage_source(job, source, fields, parcel_values if parcels else building_values)
    require_staged(conn, target, report, staged=job.staged)
    summed = [c for c in ("measured_area", "legal_area") if c in provided] if parcels else []
    if parcels:
        provided.add("cadastral_number")
    complete(
        job,
        run_id,
        provided=sorted(provided),
        replace=options.mode == "replace",
        overlap_tolerance=options.overlap_tolerance,
        summed=summed,
    )


def require_staged(
    conn: Connection, target: Target, report: ImportReport, *, staged: int | None = None
) -> None:
    """Fail when nothing importable remains (every feature rejected, or none at all).
    ``staged``: the count when the caller kept it (else the staging table is counted)."""
    if staged if staged is not None else staged_count(conn, target):
        return
    read = report.counts["read"]
    if read == 0:
        raise InvalidInput("the source holds no features: nothing to import")
    reasons = ", ".join(f"{code} {n}" for code, n in report.rejection_reasons.most_common())
    first = next((f for f in report.findings if f.rejected), None)
    example = f"; first: {first.line()}" if first else ""
    raise InvalidInput(f"nothing to import: all {read} features were rejected ({reasons}){example}")


def _column(batch: FeatureBatch, fields: FieldMap, target: str) -> np.ndarray | pa.Array | None:
    """The source column feeding ``target``: its Arrow array when the reader has one."""
    source = fields.source(target)
    if not source:
        return None
    if batch.arrow is not None and source in batch.arrow:
        return batch.arrow[source]
    return batch.columns.get(source)


def _labeller(batch: FeatureBatch, keys: pa.Array, key_label: str) -> Any:
    def label(index: int) -> str:
        key = keys[index].as_py()
        return f"{key_label} {key}" if key is not None else batch.label(index)

    return label


def parcel_values(batch: FeatureBatch, fields: FieldMap, report: ImportReport) -> Converted:
    """The parcel columns of one batch of an OGR source (Arrow arrays)."""
    count = len(batch)
    keys = text_array(_column(batch, fields, "cadastral_number"), count)
    label = _labeller(batch, keys, "cadastral number")
    columns: dict[str, Any] = {"cadastral_number": keys}
    for name in PARCEL_TEXT:
        columns[name] = text_array(_column(batch, fields, name), count)
    for name in ("measured_area", "legal_area"):
        columns[name] = number_array(
            _column(batch, fields, name), count, label, name, report, minimum=0, maximum=MAX_AREA
        )
    columns["intravilan"] = boolean_array(_column(batch, fields, "intravilan"), count)
    columns["address_id"] = pa.nulls(count, pa.int64())
    measured = columns["measured_area"] if fields.source("measured_area") else None
    return Converted(columns, keys, measured)


def building_values(batch: FeatureBatch, fields: FieldMap, report: ImportReport) -> Converted:
    """The building columns of one batch of an OGR source (OSM, GeoPackage, ...)."""
    count = len(batch)
    keys = text_array(_column(batch, fields, "source_id"), count)
    label = _labeller(batch, keys, "source id")
    columns: dict[str, Any] = {"source_id": keys}
    for name in BUILDING_TEXT:
        columns[name] = text_array(_column(batch, fields, name), count)
    for name in ("footprint_area", "floor_area"):
        columns[name] = number_array(
            _column(batch, fields, name), count, label, name, report, minimum=0, maximum=MAX_AREA
        )
    levels = number_array(
        _column(batch, fields, "levels"), count, label, "levels", report, minimum=0, maximum=200
    )
    columns["levels"] = pc.floor(levels).cast(pa.int64())
    columns["height_m"] = pa.nulls(count, pa.float64())
    columns["is_legal"] = pa.nulls(count, pa.bool_())
    measured = columns["footprint_area"] if fields.source("footprint_area") else None
    return Converted(columns, keys, measured)


def current_parcels(conn: Connection, uat_siruta: int) -> int:
    """Number of current parcel versions of the UAT (for messages and tests)."""
    return int(
        conn.execute(
            sa.text(
                "SELECT count(*) FROM cadastre.parcel WHERE uat_siruta = :uat AND valid_to IS NULL"
            ),
            {"uat": uat_siruta},
        ).scalar_one()
    )
