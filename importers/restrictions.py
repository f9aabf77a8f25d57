"""``urbangis import restrictions``: heritage zones, flood plains, easements, ... as
versioned polygons of one kind, each with a name and its legal source.

A restriction is recognised across imports by its source id when the file has one
(GlobalID, gml:id, LMI code), otherwise by its name and geometry. The scope of an
import, which ``--mode replace`` closes rows in, is the kind (and the legal source when
given): importing the flood plains never touches the heritage zones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection, Engine

from gis_core.errors import InvalidParameter
from gis_core.models.urbanism import RESTRICTION_KINDS
from gis_core.settings import Settings
from importers.cadastre import open_sources, require_staged
from importers.fields import RESTRICTION_FIELDS, FieldMap, resolve
from importers.merge import GEOMETRY_KEY, Target
from importers.progress import Progress
from importers.readers.batch import FeatureBatch
from importers.report import ImportReport
from importers.runner import RunRequest, run_import
from importers.sourcecrs import municipality
from importers.values import texts
from importers.vector import (
    DEFAULT_BATCH,
    Converted,
    VectorJob,
    complete,
    create,
    stage_source,
)


@dataclass(frozen=True)
class RestrictionOptions:
    kind: str
    legal_source: str | None = None
    field_map: Mapping[str, str] = field(default_factory=dict)
    source_crs: int | None = None
    layer: str | None = None
    mode: str = "append"
    dry_run: bool = False
    strict: bool = False
    encoding: str | None = None
    batch_size: int = DEFAULT_BATCH

    def __post_init__(self) -> None:
        if self.kind not in RESTRICTION_KINDS:
            raise InvalidParameter(
                f"--kind must be one of {', '.join(RESTRICTION_KINDS)}", locator="kind"
            )

    def parameters(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "source": self.legal_source,
            "map": dict(self.field_map),
            "source_crs": self.source_crs,
            "layer": self.layer,
            "mode": self.mode,
            "strict": self.strict,
            "encoding": self.encoding,
        }


def restriction_target(uat_siruta: int, options: RestrictionOptions, keyed: bool) -> Target:
    scope: dict[str, Any] = {"uat_siruta": uat_siruta, "kind": options.kind}
    if options.legal_source:
        scope["legal_source"] = options.legal_source
    return Target(
        kind="restrictions",
        table="urbanism.restriction",
        key=("source_id",) if keyed else ("name", GEOMETRY_KEY),
        attributes=("name", "description", "source_id"),
        scope=scope,
        key_label="restriction",
    )


def import_restrictions(
    engine: Engine,
    settings: Settings,
    path: str,
    options: RestrictionOptions,
    progress: Progress | None = None,
) -> ImportReport:
    progress = progress or Progress(enabled=False)
    request = RunRequest(
        kind=f"restrictions.{options.kind}",
        sources=[path],
        parameters=options.parameters(),
        dry_run=options.dry_run,
        strict=options.strict,
    )

    def body(conn: Connection, report: ImportReport, run_id: int | None) -> None:
        _import(conn, settings, path, options, report, run_id, progress)

    return run_import(engine, request, body)


def _import(
    conn: Connection,
    settings: Settings,
    path: str,
    options: RestrictionOptions,
    report: ImportReport,
    run_id: int | None,
    progress: Progress,
) -> None:
    (source,) = open_sources([path], options.layer, options.encoding, None)
    report.notes.extend(source.info.notes)
    fields = resolve(
        RESTRICTION_FIELDS, source.info.fields, options.field_map, where=source.info.name
    )
    report.note(f"{source.info.name}: {fields.describe()}")
    keyed = fields.source("source_id") is not None
    target = restriction_target(settings.uat_siruta, options, keyed)
    place = municipality(conn, settings.storage_srid, settings.uat_siruta)
    job = VectorJob(
        conn,
        target,
        settings.storage_srid,
        place,
        report,
        progress,
        source_crs=options.source_crs,
        batch_size=options.batch_size,
    )
    create(job)
    stem = Path(path).stem if not path.upper().startswith("WFS:") else source.info.name
    if fields.source("name") is None:
        report.note(f"no name column: restrictions are named after the source ({stem} feature N)")

    def convert(batch: FeatureBatch, fields: FieldMap, report: ImportReport) -> Converted:
        count = len(batch)
        names = texts(batch.columns.get(fields.source("name") or ""), count)
        names = [n if n is not None else f"{stem} {batch.label(i)}" for i, n in enumerate(names)]
        ids = texts(batch.columns.get(fields.source("source_id") or ""), count)
        columns: dict[str, list[Any]] = {
            "name": names,
            "description": texts(batch.columns.get(fields.source("description") or ""), count),
            "source_id": ids,
        }
        return Converted(columns, ids if keyed else None)

    stage_source(job, source, fields, convert)
    require_staged(conn, target, report)
    complete(
        job,
        run_id,
        provided=["name", "description", "source_id"],
        replace=options.mode == "replace",
        overlap_tolerance=None,
    )
