"""Import runs: every load of data into the core tables is recorded with its report.

A run is opened in its own short transaction (so a failed import still leaves a trace of
what was tried) and finished with the counts and the full report. Rows written by the
import carry the run's id, which is what lets a re-import close versions and an operator
ask "where did this row come from".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gis_core.errors import NotFound

_COLUMNS = "id, kind, source, parameters, status, started_at, finished_at, counts, report, actor"


@dataclass(frozen=True)
class ImportRunRecord:
    id: int
    kind: str
    source: str
    parameters: dict[str, Any]
    status: str
    started_at: datetime
    finished_at: datetime | None
    counts: dict[str, Any]
    report: dict[str, Any]
    actor: str | None


def open_run(
    engine: Engine,
    kind: str,
    source: str,
    parameters: Mapping[str, Any] | None = None,
    actor: str | None = None,
) -> int:
    """Record the start of a run, committed at once; returns its id."""
    with engine.begin() as conn:
        run_id: int = conn.execute(
            sa.text(
                "INSERT INTO core.import_run (kind, source, parameters, actor) "
                "VALUES (:kind, :source, CAST(:parameters AS jsonb), :actor) RETURNING id"
            ),
            {"kind": kind, "source": source, "parameters": _json(parameters or {}), "actor": actor},
        ).scalar_one()
    return run_id


def finish_run(
    conn: Connection,
    run_id: int,
    status: str,
    counts: Mapping[str, Any],
    report: Mapping[str, Any] | None = None,
) -> None:
    """Close a run with its outcome (inside the import's transaction when it succeeded)."""
    conn.execute(
        sa.text(
            "UPDATE core.import_run SET status = :status, finished_at = now(), "
            "counts = CAST(:counts AS jsonb), report = CAST(:report AS jsonb) WHERE id = :id"
        ),
        {"id": run_id, "status": status, "counts": _json(counts), "report": _json(report or {})},
    )


def fail_run(engine: Engine, run_id: int, reason: str) -> None:
    """Mark a run failed in a transaction of its own (the import's was rolled back)."""
    with engine.begin() as conn:
        finish_run(conn, run_id, "failed", {}, {"error": reason})


def get_run(conn: Connection, run_id: int) -> ImportRunRecord:
    row = conn.execute(
        sa.text(f"SELECT {_COLUMNS} FROM core.import_run WHERE id = :id"),  # noqa: S608
        {"id": run_id},
    ).one_or_none()
    if row is None:
        raise NotFound(f"import run {run_id} does not exist")
    return ImportRunRecord(*row)


def list_runs(conn: Connection, kind: str | None = None, limit: int = 50) -> list[ImportRunRecord]:
    rows = conn.execute(
        sa.text(
            f"SELECT {_COLUMNS} FROM core.import_run "  # noqa: S608
            "WHERE CAST(:kind AS text) IS NULL OR kind = :kind ORDER BY id DESC LIMIT :limit"
        ),
        {"kind": kind, "limit": limit},
    ).all()
    return [ImportRunRecord(*row) for row in rows]


def _json(value: Mapping[str, Any]) -> str:
    import orjson

    return orjson.dumps(value, default=str).decode()
