"""``urbangis demo load``: write the synthetic municipality into PostGIS in one transaction.

The whole load is one transaction (``bulk_transaction``): it removes the previous demo,
writes every table with COPY, checks the ETRS89 twins, rebuilds indexes and records the
import run; if anything fails, the database is exactly as it was. Ids that other rows
point to are reserved from the tables' sequences up front, so parcels, addresses and
zones can reference each other without reading anything back.

For big loads the secondary indexes of the four big tables are dropped and rebuilt
after the COPY (one sorted build is far cheaper than a million index insertions);
their definitions are read from the catalog, so the migration stays their only author.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gis_core import migrate
from gis_core.bulk import copy_columns, drop_secondary_indexes, recreate_indexes
from gis_core.collector import collector_paused
from gis_core.db import bulk_transaction
from gis_core.errors import ConfigurationError, DatabaseError
from gis_core.twins import fill_missing_twins
from importers.demo import records
from importers.demo.generate import DemoCity, DemoParameters, generate
from importers.demo.records import Ids

DEMO_KIND = "demo"
DEMO_SOURCE = (
    "synthetic demo municipality (urbangis), boundary and street names "
    "© OpenStreetMap contributors (ODbL)"
)
# Tables the load writes, in dependency order (ANALYZE and twin checks follow it).
LOADED_TABLES = (
    "core.admin_unit",
    "core.intravilan",
    "cadastre.street",
    "cadastre.address",
    "urbanism.plan",
    "urbanism.regulation",
    "urbanism.zone",
    "urbanism.restriction",
    "cadastre.parcel",
    "cadastre.parcel_use",
    "cadastre.building",
)
TWINNED = (
    "core.admin_unit",
    "core.intravilan",
    "cadastre.street",
    "cadastre.address",
    "urbanism.zone",
    "urbanism.restriction",
    "cadastre.parcel",
    "cadastre.building",
)
BIG_TABLES = ("cadastre.address", "cadastre.parcel", "cadastre.parcel_use", "cadastre.building")
REBUILD_THRESHOLD = 100_000

Progress = Callable[[str], None]


@dataclass
class LoadReport:
    """What a load did: the run id, row counts, phase timings (seconds)."""

    run_id: int | None
    counts: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    skipped: bool = False


class _Clock:
    """Phase timer that prints "phase ... s (total s)" lines as the load goes."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.started = time.perf_counter()
        self.last = self.started
        self.timings: dict[str, float] = {}

    def done(self, phase: str) -> None:
        now = time.perf_counter()
        self.timings[phase] = round(now - self.last, 3)
        self.progress(f"{phase}: {now - self.last:.1f} s (elapsed {now - self.started:.1f} s)")
        self.last = now


def _quiet(message: str) -> None:
    del message


def load_demo(
    engine: Engine,
    parameters: DemoParameters,
    *,
    skip_if_loaded: bool = False,
    rebuild_indexes: bool | None = None,
    progress: Progress = _quiet,
) -> LoadReport:
    """Generate and load the demo; returns the report (``skipped`` when already there)."""
    clock = _Clock(progress)
    with engine.connect() as conn:
        _check_database(conn)
        existing = _loaded_run(conn, parameters) if skip_if_loaded else None
        if existing is not None:
            progress(f"demo with {parameters.as_dict()} already loaded: nothing to do")
            return LoadReport(existing, skipped=True)
    progress(
        f"generating the demo municipality ({parameters.parcels} parcels, seed {parameters.seed})"
    )
    with collector_paused():  # millions of objects, no cycles: gis_core.collector
        demo = generate(parameters, progress)
        clock.done("generate")
        if rebuild_indexes is None:
            rebuild_indexes = len(demo.parcels) >= REBUILD_THRESHOLD
        with bulk_transaction(engine) as conn:
            report = _write(conn, demo, clock, rebuild_indexes)
    total = time.perf_counter() - clock.started
    report.timings["total"] = round(total, 3)
    summary = ", ".join(f"{count} {name}" for name, count in report.counts.items())
    progress(f"demo loaded in {total:.1f} s (import run {report.run_id}): {summary}")
    return report


def _check_database(conn: Connection) -> None:
    """The schema must exist and store Stereo 70 (the demo is a Romanian municipality)."""
    srid = migrate.recorded_storage_srid(conn)
    if srid is None:
        raise DatabaseError("the database has no schema yet: run 'urbangis db upgrade' first")
    if srid != records.STEREO70:
        raise ConfigurationError(
            f"the demo municipality is in EPSG:{records.STEREO70} (Stereo 70) but this "
            f"database stores EPSG:{srid}; load it into a Stereo 70 deployment"
        )


def _loaded_run(conn: Connection, parameters: DemoParameters) -> int | None:
    """The id of a succeeded demo run with the same parameters, if it is the current demo."""
    row = conn.execute(
        sa.text(
            "SELECT id, parameters FROM core.import_run WHERE kind = :kind "
            "AND status = 'succeeded' ORDER BY id DESC LIMIT 1"
        ),
        {"kind": DEMO_KIND},
    ).first()
    if row is None or dict(row[1]) != parameters.as_dict():
        return None
    return int(row[0])


def _write(conn: Connection, demo: DemoCity, clock: _Clock, rebuild: bool) -> LoadReport:
    """Every database step of the load, inside the caller's transaction."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('urbangis-demo'))"))
    _lock_tables(conn)
    removed = _remove_previous(conn)
    clock.done(f"remove previous demo ({removed} import runs)")
    run_id = _start_run(conn, demo.parameters)
    ids = _reserve_ids(conn, demo)
    saved = drop_secondary_indexes(conn, BIG_TABLES) if rebuild else []
    clock.done("prepare" + (f" (dropped {len(saved)} indexes)" if rebuild else ""))
    counts = _copy_reference(conn, demo, ids, run_id)
    clock.done("copy admin units, intravilan, streets, plans, zones, restrictions")
    counts["addresses"] = _copy_addresses(conn, demo, ids)
    clock.done("copy addresses")
    counts["parcels"] = _copy_parcels(conn, demo, ids, run_id)
    clock.done("copy parcels and use sub-parcels")
    counts["buildings"] = _copy_buildings(conn, demo, run_id)
    clock.done("copy buildings")
    filled = sum(fill_missing_twins(conn, table, records.STEREO70).updated for table in TWINNED)
    clock.done(f"check ETRS89 twins ({filled} filled)")
    recreate_indexes(conn, saved)
    if saved:
        clock.done(f"rebuild {len(saved)} indexes")
    ranges = {
        "cadastre.street": [ids.street, ids.street + len(demo.streets) - 1],
        "cadastre.address": [ids.address, ids.address + len(demo.addresses) - 1],
    }
    ordered = {name: counts[name] for name in _COUNT_ORDER}
    _finish_run(conn, run_id, ordered, {"id_ranges": ranges, "generation": demo.timings})
    for table in LOADED_TABLES:
        conn.execute(sa.text(f"ANALYZE {table}"))
    clock.done("analyze")
    return LoadReport(run_id, ordered, dict(clock.timings))


_COUNT_ORDER = (
    "parcels",
    "buildings",
    "addresses",
    "streets",
    "zones",
    "regulations",
    "plans",
    "restrictions",
)


def _lock_tables(conn: Connection) -> None:
    """Keep other writers out while ids are reserved from the sequences and rows copied."""
    conn.execute(sa.text(f"LOCK TABLE {', '.join(LOADED_TABLES)} IN SHARE ROW EXCLUSIVE MODE"))


def _remove_previous(conn: Connection) -> int:
    """Delete every row an earlier demo load wrote, and its import runs."""
    runs = conn.execute(
        sa.text("SELECT id, report FROM core.import_run WHERE kind = :kind"), {"kind": DEMO_KIND}
    ).all()
    run_ids = [int(row[0]) for row in runs]
    ranges: dict[str, list[tuple[int, int]]] = {"cadastre.street": [], "cadastre.address": []}
    for _, report in runs:
        for table, bounds in dict(report or {}).get("id_ranges", {}).items():
            if table in ranges and bounds:
                ranges[table].append((int(bounds[0]), int(bounds[1])))
    by_run = {"runs": run_ids}
    statements = (
        "DELETE FROM cadastre.parcel_use WHERE parcel_id IN "
        "(SELECT id FROM cadastre.parcel WHERE import_run_id = ANY(:runs))",
        "DELETE FROM cadastre.building WHERE import_run_id = ANY(:runs)",
        "DELETE FROM cadastre.parcel WHERE import_run_id = ANY(:runs)",
        "DELETE FROM urbanism.zone WHERE import_run_id = ANY(:runs)",
        "DELETE FROM urbanism.restriction WHERE import_run_id = ANY(:runs)",
        "DELETE FROM urbanism.plan WHERE import_run_id = ANY(:runs)",
        "DELETE FROM core.intravilan WHERE import_run_id = ANY(:runs)",
    )
    if run_ids:
        for statement in statements:
            conn.execute(sa.text(statement), by_run)
    for table in ("cadastre.address", "cadastre.street"):
        for low, high in ranges[table]:
            conn.execute(
                sa.text(f"DELETE FROM {table} WHERE id BETWEEN :low AND :high"),  # noqa: S608
                {"low": low, "high": high},
            )
    conn.execute(
        sa.text("DELETE FROM core.admin_unit WHERE source = :source"),
        {"source": records.ADMIN_SOURCE},
    )
    if run_ids:
        conn.execute(sa.text("DELETE FROM core.import_run WHERE id = ANY(:runs)"), by_run)
    return len(run_ids)


def _start_run(conn: Connection, parameters: DemoParameters) -> int:
    run_id = conn.execute(
        sa.text(
            "INSERT INTO core.import_run (kind, source, parameters, status, actor) "
            "VALUES (:kind, :source, CAST(:parameters AS jsonb), 'running', 'urbangis demo') "
            "RETURNING id"
        ),
        {"kind": DEMO_KIND, "source": DEMO_SOURCE, "parameters": json.dumps(parameters.as_dict())},
    ).scalar_one()
    return int(run_id)


def _finish_run(
    conn: Connection, run_id: int, counts: dict[str, int], report: dict[str, Any]
) -> None:
    conn.execute(
        sa.text(
            "UPDATE core.import_run SET status = 'succeeded', finished_at = clock_timestamp(), "
            "counts = CAST(:counts AS jsonb), report = CAST(:report AS jsonb) WHERE id = :id"
        ),
        {"counts": json.dumps(counts), "report": json.dumps(report), "id": run_id},
    )


def _reserve_ids(conn: Connection, demo: DemoCity) -> Ids:
    """Take a block of ids from each sequence (the tables are locked meanwhile)."""
    regulations = sum(len(plan.regulations) for plan in demo.plans.plans)
    return Ids(
        street=_reserve(conn, "cadastre.street", len(demo.streets)),
        address=_reserve(conn, "cadastre.address", len(demo.addresses)),
        parcel=_reserve(conn, "cadastre.parcel", len(demo.parcels)),
        plan=_reserve(conn, "urbanism.plan", len(demo.plans.plans)),
        regulation=_reserve(conn, "urbanism.regulation", regulations),
    )


def _reserve(conn: Connection, table: str, count: int) -> int:
    sequence = conn.execute(
        sa.text("SELECT pg_get_serial_sequence(:table, 'id')"), {"table": table}
    ).scalar_one()
    first = int(conn.execute(sa.text("SELECT nextval(:seq)"), {"seq": sequence}).scalar_one())
    if count > 1:
        conn.execute(
            sa.text("SELECT setval(:seq, :last)"), {"seq": sequence, "last": first + count - 1}
        )
    return first


def _copy_reference(conn: Connection, demo: DemoCity, ids: Ids, run_id: int) -> dict[str, int]:
    """The small tables: admin units, intravilan, streets, plans, rules, zones, restrictions."""
    existing = set(
        conn.execute(
            sa.text("SELECT siruta FROM core.admin_unit WHERE siruta = ANY(:codes)"),
            {"codes": [row.siruta for row in records.sources.localities()]},
        ).scalars()
    )
    admin = records.admin_units()
    keep = [i for i, code in enumerate(admin["siruta"]) if code not in existing]
    copy_columns(conn, "core.admin_unit", {k: [v[i] for i in keep] for k, v in admin.items()})
    copy_columns(conn, "core.intravilan", records.intravilan(demo, run_id))
    counts = {"streets": copy_columns(conn, "cadastre.street", records.streets(demo, ids))}
    counts["plans"] = copy_columns(conn, "urbanism.plan", records.plans(demo, ids, run_id))
    counts["regulations"] = copy_columns(
        conn, "urbanism.regulation", records.regulations(demo, ids)
    )
    counts["zones"] = copy_columns(conn, "urbanism.zone", records.zones(demo, ids, run_id))
    counts["restrictions"] = copy_columns(
        conn, "urbanism.restriction", records.restrictions(demo, ids, run_id)
    )
    return counts


def _copy_addresses(conn: Connection, demo: DemoCity, ids: Ids) -> int:
    return copy_columns(conn, "cadastre.address", records.addresses(demo, ids))


def _copy_parcels(conn: Connection, demo: DemoCity, ids: Ids, run_id: int) -> int:
    count = copy_columns(conn, "cadastre.parcel", records.parcels(demo, ids, run_id))
    uses = records.parcel_uses(demo, ids, demo.parameters.seed)
    copy_columns(conn, "cadastre.parcel_use", uses)
    return count


def _copy_buildings(conn: Connection, demo: DemoCity, run_id: int) -> int:
    return copy_columns(conn, "cadastre.building", records.buildings(demo, run_id))
