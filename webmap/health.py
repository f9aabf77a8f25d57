"""``GET /healthz``: is this server able to answer, and with what data?

Load balancers and operators poll it, so it must stay cheap on a big municipality:
it counts current rows exactly only while a table is small and falls back to the
planner's statistics (marked ``counts_estimated``) for big ones, all under a short
statement timeout. A database that is unreachable or not migrated answers 503 with
the reason, so a broken deployment is visible rather than half-working.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response
from sqlalchemy.engine import Connection, Engine

from gis_core import migrate
from gis_core.db import server_versions
from gis_core.errors import UrbanGisError
from gis_core.settings import Settings
from webmap.app import json_response, state, vendor_dir
from webmap.assets import assets_installed

# What /healthz counts: name -> (table, only current versions). A fixed catalogue, so
# no table name ever comes from outside this module.
COUNTED: dict[str, tuple[str, bool]] = {
    "parcels": ("cadastre.parcel", True),
    "buildings": ("cadastre.building", True),
    "zones": ("urbanism.zone", True),
    "restrictions": ("urbanism.restriction", True),
    "plans": ("urbanism.plan", False),
    "addresses": ("cadastre.address", False),
}
# Tables up to this many rows are counted exactly; bigger ones use the statistics.
EXACT_LIMIT = 100_000
# A health check that takes longer than this is itself a symptom.
HEALTH_TIMEOUT_MS = 5_000

blueprint = Blueprint("health", __name__)

Report = dict[str, Any]


@blueprint.get("/healthz")
def healthz() -> Response:
    """The report as JSON, never cached: monitors must see the state of now."""
    app_state = state()
    assets = assets_installed(vendor_dir())
    report, status = health_report(lambda: app_state.engine, app_state.settings, assets=assets)
    response = json_response(report, status)
    response.headers["Cache-Control"] = "no-store"
    return response


def health_report(
    engine: Callable[[], Engine], settings: Settings, *, assets: bool
) -> tuple[Report, int]:
    """The report and its HTTP status; ``engine`` is called here so a failing start counts."""
    report: Report = {
        "status": "ok",
        "uat_siruta": settings.uat_siruta,
        "uat_name": settings.uat_name,
        "assets": assets,
        # Present (null) even when the database fails, so monitors see one shape.
        "database": None,
        "schema": None,
        "storage_srid": None,
        "counts": None,
        "counts_estimated": None,
    }
    try:
        with engine().connect() as conn, conn.begin():
            timeout = min(settings.statement_timeout_ms, HEALTH_TIMEOUT_MS)
            conn.execute(
                sa.text("SELECT set_config('statement_timeout', :t, true)"), {"t": str(timeout)}
            )
            report.update(database_facts(conn))
    except (sa.exc.SQLAlchemyError, UrbanGisError) as exc:
        report.update(status="error", reason=f"database unavailable: {_reason(exc)}")
        return report, 503
    schema = report["schema"]
    if not schema["up_to_date"]:
        report.update(
            status="error",
            reason=(
                f"database schema at {schema['revision'] or 'nothing'}, expected "
                f"{schema['head']}: run 'urbangis db upgrade'"
            ),
        )
        return report, 503
    return report, 200


def database_facts(conn: Connection) -> Report:
    """Versions, schema revision, storage SRID and row counts of one database."""
    revision = migrate.current_revision(conn)
    head = expected_head()
    facts: Report = {
        "database": database_versions(conn),
        "schema": {"revision": revision, "head": head, "up_to_date": revision == head},
        "storage_srid": migrate.recorded_storage_srid(conn),
    }
    if revision == head:
        counts = {name: count_rows(conn, table, now) for name, (table, now) in COUNTED.items()}
        facts["counts"] = {name: number for name, (number, _) in counts.items()}
        facts["counts_estimated"] = any(estimated for _, estimated in counts.values())
    return facts


def database_versions(conn: Connection) -> dict[str, str]:
    """Server and PostGIS versions; a database without PostGIS yet has only the first."""
    has_postgis = conn.execute(
        sa.text("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'postgis')")
    ).scalar()
    if has_postgis:
        return server_versions(conn)
    return {"postgresql": str(conn.execute(sa.text("SHOW server_version")).scalar_one())}


@cache
def expected_head() -> str | None:
    """The newest migration shipped with this code (read once: it cannot change)."""
    return migrate.head_revision()


def count_rows(conn: Connection, table: str, current: bool) -> tuple[int, bool]:
    """(rows, estimated): exact for small tables, from statistics for big ones.

    The exact count stops after ``EXACT_LIMIT + 1`` rows, so even a table whose
    statistics are stale (loaded but not yet analysed) is never scanned in full.
    """
    total, current_share = table_statistics(conn, table)
    estimate = None if total is None else total * (current_share if current else 1.0)
    if total is not None and total > EXACT_LIMIT:
        return round(estimate or 0), True
    where = " WHERE valid_to IS NULL" if current else ""
    capped = conn.execute(
        sa.text(
            f"SELECT count(*) FROM (SELECT 1 FROM {table}{where} "  # noqa: S608
            f"LIMIT {EXACT_LIMIT + 1}) AS capped"
        )
    ).scalar_one()
    if capped <= EXACT_LIMIT:
        return int(capped), False
    return max(round(estimate or 0), int(capped)), True


def table_statistics(conn: Connection, table: str) -> tuple[float | None, float]:
    """Planner's row estimate (None if never analysed) and the share of current rows."""
    row = conn.execute(
        sa.text(
            "SELECT c.reltuples, "
            "  (SELECT 1 - s.null_frac FROM pg_stats s WHERE s.schemaname = n.nspname "
            "     AND s.tablename = c.relname AND s.attname = 'valid_to') AS closed_share "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.oid = CAST(:table AS regclass)"
        ),
        {"table": table},
    ).one()
    total = float(row.reltuples) if row.reltuples is not None and row.reltuples >= 0 else None
    closed = float(row.closed_share) if row.closed_share is not None else 0.0
    return total, 1.0 - closed


def _reason(exc: Exception) -> str:
    """The driver's own first line (not SQLAlchemy's wrapper text)."""
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip()
    return text.splitlines()[0] if text else type(cause).__name__
