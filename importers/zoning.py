"""``urbangis import zoning``: the zones (UTR) of a PUG/PUZ/PUD and the rules of each UTR.

The plan is found by its title (created the first time, with its HCL and validity);
the rules table (CSV or XLSX, one row per UTR: uses, POT, CUT, height, minimum plot,
free text) is upserted into ``urbanism.regulation``; zones are staged and merged as
versions of the plan's zones and linked to their UTR's rules. Zones whose UTR has no
rule, and rules no zone uses, are reported.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gis_core.errors import Conflict, InvalidParameter
from gis_core.models.urbanism import PLAN_TYPES
from gis_core.settings import Settings
from importers.cadastre import open_sources, require_staged
from importers.fields import ZONE_FIELDS, FieldMap, resolve
from importers.merge import GEOMETRY_KEY, Target
from importers.progress import Progress
from importers.readers.batch import FeatureBatch
from importers.report import Finding, ImportReport
from importers.rules import write_rules
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

_HCL_DATE = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})")


@dataclass(frozen=True)
class ZoningOptions:
    plan_title: str
    plan_type: str
    hcl: str | None = None
    valid_from: date | None = None
    rules: Path | None = None
    rules_map: Mapping[str, str] = field(default_factory=dict)
    field_map: Mapping[str, str] = field(default_factory=dict)
    source_crs: int | None = None
    layer: str | None = None
    mode: str = "append"
    dry_run: bool = False
    strict: bool = False
    encoding: str | None = None
    batch_size: int = DEFAULT_BATCH

    def __post_init__(self) -> None:
        if self.plan_type not in PLAN_TYPES:
            raise InvalidParameter(
                f"--plan-type must be one of {', '.join(PLAN_TYPES)}", locator="plan-type"
            )
        if not self.plan_title.strip():
            raise InvalidParameter("--plan must name the plan", locator="plan")

    def parameters(self) -> dict[str, Any]:
        return {
            "plan": self.plan_title,
            "plan_type": self.plan_type,
            "hcl": self.hcl,
            "valid_from": self.valid_from,
            "rules": str(self.rules) if self.rules else None,
            "rules_map": dict(self.rules_map),
            "map": dict(self.field_map),
            "source_crs": self.source_crs,
            "layer": self.layer,
            "mode": self.mode,
            "strict": self.strict,
        }


def zone_target(plan_id: int, keyed: bool) -> Target:
    return Target(
        kind="zones",
        table="urbanism.zone",
        key=("source_id",) if keyed else ("utr_code", GEOMETRY_KEY),
        attributes=("utr_code", "function", "regulation_id", "source_id"),
        scope={"plan_id": plan_id},
        key_label="zone",
    )


def import_zoning(
    engine: Engine,
    settings: Settings,
    path: str,
    options: ZoningOptions,
    progress: Progress | None = None,
) -> ImportReport:
    progress = progress or Progress(enabled=False)
    sources = [path, *([str(options.rules)] if options.rules else [])]
    request = RunRequest(
        kind="zoning",
        sources=sources,
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
    options: ZoningOptions,
    report: ImportReport,
    run_id: int | None,
    progress: Progress,
) -> None:
    (source,) = open_sources([path], options.layer, options.encoding, None)
    report.notes.extend(source.info.notes)
    fields = resolve(
        ZONE_FIELDS,
        source.info.fields,
        options.field_map,
        required=["utr_code"],
        where=source.info.name,
    )
    report.note(f"{source.info.name}: {fields.describe()}")
    plan_id = _plan(conn, settings.uat_siruta, options, run_id, report)
    if options.rules is not None:
        report.details["rules"] = write_rules(
            conn, plan_id, options.rules, options.rules_map, report
        )
    keyed = fields.source("source_id") is not None
    target = zone_target(plan_id, keyed)
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

    def convert(batch: FeatureBatch, fields: FieldMap, report: ImportReport) -> Converted:
        count = len(batch)
        codes = texts(batch.columns.get(fields.source("utr_code") or ""), count)
        columns: dict[str, list[Any]] = {
            "utr_code": codes,
            "function": texts(batch.columns.get(fields.source("function") or ""), count),
            "regulation_id": [None] * count,
            "source_id": texts(batch.columns.get(fields.source("source_id") or ""), count),
        }
        return Converted(columns, codes)

    stage_source(job, source, fields, convert)
    require_staged(conn, target, report)
    _link_rules(conn, target, plan_id, report)
    complete(
        job,
        run_id,
        provided=["utr_code", "function", "regulation_id", "source_id"],
        replace=options.mode == "replace",
        overlap_tolerance=1.0,
    )
    conn.execute(
        sa.text(
            "UPDATE urbanism.plan SET geom = (SELECT ST_Multi(ST_CollectionExtract("
            "ST_UnaryUnion(ST_Collect(geom)), 3)) FROM urbanism.zone WHERE plan_id = :plan "
            "AND valid_to IS NULL) WHERE id = :plan"
        ),
        {"plan": plan_id},
    )


def _plan(
    conn: Connection,
    uat_siruta: int,
    options: ZoningOptions,
    run_id: int | None,
    report: ImportReport,
) -> int:
    """The plan's id, created (with HCL and validity) when this title is new."""
    hcl_number, hcl_date = _hcl(options.hcl)
    row = conn.execute(
        sa.text("SELECT id, plan_type, hcl_number FROM urbanism.plan WHERE title = :title"),
        {"title": options.plan_title},
    ).first()
    if row is not None:
        if row[1] != options.plan_type:
            raise Conflict(
                f"--plan {options.plan_title!r} exists as a {row[1]}, not a {options.plan_type}"
            )
        if options.hcl and hcl_number != row[2]:
            conn.execute(
                sa.text("UPDATE urbanism.plan SET hcl_number = :n, hcl_date = :d WHERE id = :id"),
                {"n": hcl_number, "d": hcl_date, "id": row[0]},
            )
            report.note(f"plan {options.plan_title}: HCL set to {options.hcl}")
        report.note(f"plan {options.plan_title} (id {row[0]}) already exists: zones merged into it")
        return int(row[0])
    plan_id = conn.execute(
        sa.text(
            "INSERT INTO urbanism.plan (uat_siruta, plan_type, title, hcl_number, hcl_date, "
            "valid_from, status, import_run_id) VALUES (:uat, :type, :title, :hcl, :hcl_date, "
            ":valid_from, 'approved', :run) RETURNING id"
        ),
        {
            "uat": uat_siruta,
            "type": options.plan_type,
            "title": options.plan_title,
            "hcl": hcl_number,
            "hcl_date": hcl_date,
            "valid_from": options.valid_from or hcl_date,
            "run": run_id,
        },
    ).scalar_one()
    report.note(f"plan {options.plan_title} created (id {plan_id})")
    return int(plan_id)


def _hcl(text: str | None) -> tuple[str | None, date | None]:
    """ "493/22.12.2014" → ("493/22.12.2014", 2014-12-22); "493/2014" → (text, None)."""
    if not text:
        return None, None
    match = _HCL_DATE.search(text)
    if match is None:
        return text.strip(), None
    day, month, year = (int(part) for part in match.groups())
    try:
        return text.strip(), date(year, month, day)
    except ValueError:
        raise InvalidParameter(
            f"--hcl {text!r}: {match.group(0)} is not a date", locator="hcl"
        ) from None


def _link_rules(conn: Connection, target: Target, plan_id: int, report: ImportReport) -> None:
    """Each staged zone gets its UTR's rules; UTRs without rules are reported."""
    conn.execute(
        sa.text(
            f"UPDATE {target.stage} s SET regulation_id = r.id FROM urbanism.regulation r "  # noqa: S608
            "WHERE r.plan_id = :plan AND r.utr_code = s.utr_code"
        ),
        {"plan": plan_id},
    )
    has_rules = conn.execute(
        sa.text("SELECT EXISTS (SELECT 1 FROM urbanism.regulation WHERE plan_id = :plan)"),
        {"plan": plan_id},
    ).scalar_one()
    if not has_rules:
        report.note("the plan has no rules table yet (--rules): zones are not linked to rules")
        return
    missing = conn.execute(
        sa.text(
            f"SELECT utr_code, count(*) FROM {target.stage} WHERE regulation_id IS NULL "  # noqa: S608
            "GROUP BY utr_code ORDER BY utr_code"
        )
    ).all()
    for code, count in missing:
        report.add(
            Finding(
                "utr_without_rules",
                f"{count} zones of UTR {code} have no row in the rules table",
                feature=f"UTR {code}",
                field="utr_code",
            )
        )
    unused = conn.execute(
        sa.text(
            "SELECT utr_code FROM urbanism.regulation r WHERE plan_id = :plan AND NOT EXISTS "  # noqa: S608
            f"(SELECT 1 FROM {target.stage} s WHERE s.utr_code = r.utr_code) ORDER BY utr_code"
        ),
        {"plan": plan_id},
    ).scalars()
    unused_codes = list(unused)
    if unused_codes:
        report.note(f"rules without zones in this file: {', '.join(unused_codes)}")
