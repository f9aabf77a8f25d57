"""One import = one transaction, one run record, one report.

The run row is written inside the import's transaction, so a killed process leaves no
trace at all, and a success commits data and record together. A failure rolls every
data change back and then records the failed attempt (with its error and the report
so far) in a short transaction of its own, so ``urbangis import runs`` shows it.
``--dry-run`` does the whole import, reports what it would do, and rolls back.
``--strict`` turns any finding into a failure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from gis_core.collector import collector_paused
from gis_core.db import bulk_transaction
from gis_core.errors import InvalidInput, UrbanGisError
from gis_core.runs import finish_run
from importers.report import ImportReport

ImportBody = Callable[[Connection, ImportReport, int | None], None]


class ImportFailed(InvalidInput):
    """The import was refused or failed; nothing was written. Carries the report."""

    def __init__(self, message: str, report: ImportReport) -> None:
        super().__init__(message)
        self.report = report


class _DryRun(Exception):
    """Raised to roll a dry run back after its report is complete."""


@dataclass(frozen=True)
class RunRequest:
    kind: str
    sources: list[str]
    parameters: Mapping[str, Any]
    dry_run: bool = False
    strict: bool = False
    actor: str = "urbangis import"


def run_import(engine: Engine, request: RunRequest, body: ImportBody) -> ImportReport:
    """Run ``body`` in one transaction and keep the run record; see the module docstring.
    Python's cyclic garbage collector is paused meanwhile (``gis_core.collector``)."""
    report = ImportReport(request.kind, request.sources, dry_run=request.dry_run)
    try:
        with collector_paused(), bulk_transaction(engine) as conn:
            conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtext(:lock))"),
                {"lock": f"urbangis-import-{request.kind}"},
            )
            run_id = None if request.dry_run else _open_run(conn, request)
            report.run_id = run_id
            body(conn, report, run_id)
            if request.strict and report.finding_total:
                raise InvalidInput(
                    f"--strict: {report.finding_total} findings "
                    f"({', '.join(f'{c} {n}' for c, n in report.finding_counts.most_common())}); "
                    "nothing was written"
                )
            if request.dry_run:
                raise _DryRun
            report.status = "succeeded"
            assert run_id is not None
            finish_run(conn, run_id, "succeeded", report.count_dict(), report.as_dict())
    except _DryRun:
        report.status = "dry_run"
        return report
    except UrbanGisError as exc:
        _failed(engine, request, report, str(exc))
        raise ImportFailed(str(exc), report) from None
    except DBAPIError as exc:
        message = _database_message(exc)
        _failed(engine, request, report, message)
        raise ImportFailed(message, report) from None
    return report


def _open_run(conn: Connection, request: RunRequest) -> int:
    run_id = conn.execute(
        sa.text(
            "INSERT INTO core.import_run (kind, source, parameters, actor) "
            "VALUES (:kind, :source, CAST(:parameters AS jsonb), :actor) RETURNING id"
        ),
        {
            "kind": request.kind,
            "source": "; ".join(request.sources),
            "parameters": orjson.dumps(dict(request.parameters), default=str).decode(),
            "actor": request.actor,
        },
    ).scalar_one()
    return int(run_id)


def _failed(engine: Engine, request: RunRequest, report: ImportReport, message: str) -> None:
    """Record the failed attempt (not for dry runs: they never write)."""
    report.status = "failed"
    report.run_id = None
    report.details["error"] = message
    if request.dry_run:
        return
    try:
        with engine.begin() as conn:
            run_id = _open_run(conn, request)
            finish_run(conn, run_id, "failed", report.count_dict(), report.as_dict())
            report.run_id = run_id
    except DBAPIError:
        report.notes.append("the failed run could not be recorded (database unavailable)")


def _database_message(exc: DBAPIError) -> str:
    original = getattr(exc, "orig", None)
    lines = str(original or exc).strip().splitlines()
    return f"the database refused the import: {lines[0] if lines else type(exc).__name__}"
