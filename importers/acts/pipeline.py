"""``urbangis permits import``: a register file into ``permits.act``, all of it or nothing.

The file is read and every row parsed first; any bad row (malformed date or number,
unknown type or status, a duplicate act number, an imobil of another UAT, geometry
that is not a point or polygon) is reported with its row and column, and the import
stops before writing anything. A good file is written in one transaction: new acts by
COPY (applicants into ``protected.act_applicant``), acts already registered under the
same number compared and updated when they changed, each change in the audit log, and
the whole report kept in the import run. Linking to parcels is a separate step
(``urbangis permits link``) unless ``link=True``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gis_core import runs
from gis_core.audit import record_change
from gis_core.bulk import copy_rows
from gis_core.crs.transform import parse_crs, transform_geometries
from gis_core.db import bulk_transaction
from gis_core.errors import InvalidInput, InvalidParameter
from gis_core.settings import Settings
from gis_core.twins import fill_missing_twins
from importers.acts.mapping import resolve_columns
from importers.acts.readers import RegisterTable, read_register
from importers.acts.rows import ActRow, RowError, parse_row
from importers.report import Finding, ImportReport
from permits.linking import link_acts
from permits.numbers import parse_cited_numbers

KIND = "permits"
SHOWN_ERRORS = 10
_ACT_COLUMNS = (
    "id",
    "uat_siruta",
    "kind",
    "number",
    "issued_on",
    "register_key",
    "status",
    "requested_on",
    "purpose",
    "address_text",
    "cited_numbers",
    "land_book_text",
    "validity_months",
    "valid_until",
    "proposed_footprint_area",
    "proposed_floor_area",
    "proposed_height_m",
    "proposed_levels",
    "source_ref",
    "import_run_id",
    "location",
    "footprint",
)


class RegisterRejected(InvalidInput):
    """The register has bad rows; nothing was written. Carries the full report."""

    def __init__(self, message: str, report: ImportReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class ImportOptions:
    mapping: Mapping[str, str]
    kind: str = "auto"
    source_crs: str | None = None
    dry_run: bool = False
    link: bool = False
    layer: str | None = None
    actor: str = "import"


def import_register(
    engine: Engine, settings: Settings, path: Path, options: ImportOptions
) -> ImportReport:
    """Import one register file; returns the report or raises ``RegisterRejected``."""
    report = ImportReport(kind=KIND, sources=[str(path)], dry_run=options.dry_run)
    table = read_register(path, options.layer)
    for note in table.notes:
        report.note(note)
    columns, ignored = resolve_columns(table.columns, options.mapping)
    report.note("columns: " + ", ".join(f"{t}={c}" for t, c in columns.items()))
    if ignored:
        report.note(f"columns not imported: {', '.join(ignored)}")
    forced = _forced_kind(options.kind)
    acts = _parse_rows(table, columns, settings, forced, report)
    report.counts["read"] = len(table.rows)
    sites = _sites(table, acts, columns, settings, options, report)
    with engine.connect() as conn:
        _check_other_uat(conn, settings, acts, columns, report)
    _refuse_if_bad(report, path)
    if options.dry_run:
        with engine.connect() as conn:
            _plan(conn, settings, acts, report)
        report.status = "dry_run"
        return report
    run_id = runs.open_run(engine, KIND, str(path), _parameters(options), options.actor)
    report.run_id = run_id
    try:
        with bulk_transaction(engine) as conn:
            _write(conn, settings, acts, sites, run_id, report)
            if options.link:
                linked = link_acts(conn, settings)
                report.details["link"] = linked.as_dict()
            report.status = "succeeded"
            runs.finish_run(conn, run_id, "succeeded", report.count_dict(), report.as_dict())
    except Exception as exc:
        runs.fail_run(engine, run_id, str(exc))
        raise
    return report


def _forced_kind(kind: str) -> str | None:
    value = kind.strip().upper()
    if value == "AUTO":
        return None
    if value not in ("CU", "AC", "AD"):
        raise InvalidParameter(f"--kind: {kind!r} is not CU, AC, AD or auto", locator="kind")
    return value


def _parse_rows(
    table: RegisterTable,
    columns: dict[str, str],
    settings: Settings,
    forced: str | None,
    report: ImportReport,
) -> list[ActRow | None]:
    acts: list[ActRow | None] = []
    first_seen: dict[tuple[str, str], str] = {}
    for label, cells in zip(table.labels, table.rows, strict=True):
        try:
            act = parse_row(label, cells, columns, settings, forced)
        except RowError as exc:
            report.add(Finding("bad_field", exc.message, label, exc.column, rejected=True))
            acts.append(None)
            continue
        key = (act.kind, act.register_key)
        if key in first_seen:
            column = columns.get("source_id", columns["number"])
            report.add(
                Finding(
                    "duplicate_act",
                    f"{act.kind} {act.register_key} is already in {first_seen[key]}",
                    label,
                    column,
                    rejected=True,
                )
            )
            acts.append(None)
            continue
        first_seen[key] = label
        if act.cited_problem:
            report.add(
                Finding(
                    "unreadable_cadastral_number",
                    f"{act.cited_problem}; imported, the link goes to the review queue",
                    label,
                    columns.get("cadastral_numbers"),
                )
            )
        acts.append(act)
    return acts


def _sites(
    table: RegisterTable,
    acts: list[ActRow | None],
    columns: dict[str, str],
    settings: Settings,
    options: ImportOptions,
    report: ImportReport,
) -> list[tuple[bytes | None, bytes | None]]:
    """(location, footprint) EWKB per row in the storage CRS, from the layer or x/y."""
    empty: list[tuple[bytes | None, bytes | None]] = [(None, None)] * len(acts)
    geoms = table.geoms
    if geoms is None and "x" in columns and "y" in columns:
        geoms = np.array(
            [
                shapely.Point(a.x, a.y) if a and a.x is not None and a.y is not None else None
                for a in acts
            ],
            dtype=object,
        )
    if geoms is None:
        return empty
    epsg = parse_crs(options.source_crs) if options.source_crs else table.epsg
    if epsg is None:
        raise InvalidParameter(
            f"{table.source}: the file does not say its CRS; pass --source-crs EPSG:N",
            locator="source-crs",
        )
    report.note(f"site geometries from EPSG:{epsg} to EPSG:{settings.storage_srid}")
    stored = transform_geometries(geoms, epsg, settings.storage_srid)
    result = list(empty)
    for index, geom in enumerate(stored):
        if geom is None or acts[index] is None:
            continue
        result[index] = _site(geom, settings.storage_srid, table.labels[index], report)
    return result


def _site(
    geom: Any, srid: int, label: str, report: ImportReport
) -> tuple[bytes | None, bytes | None]:
    kind = shapely.get_type_id(geom)
    if kind == 0:  # Point
        return _ewkb(geom, srid), None
    if kind in (3, 6):  # (Multi)Polygon
        if not geom.is_valid:
            geom = shapely.make_valid(geom)
            geom = shapely.MultiPolygon(
                [g for g in getattr(geom, "geoms", [geom]) if g.geom_type == "Polygon"]
            )
            report.counts["repaired"] += 1
        if kind == 3:
            geom = shapely.MultiPolygon([geom])
        return None, _ewkb(geom, srid)
    report.add(
        Finding(
            "bad_geometry",
            f"a {geom.geom_type} is neither the site point nor the site plan polygon",
            label,
            "geometry",
            rejected=True,
        )
    )
    return None, None


def _ewkb(geom: Any, srid: int) -> bytes:
    return bytes(shapely.to_wkb(shapely.set_srid(geom, srid), include_srid=True))


def _check_other_uat(
    conn: Connection,
    settings: Settings,
    acts: list[ActRow | None],
    columns: dict[str, str],
    report: ImportReport,
) -> None:
    """Cited numbers that are imobile of another UAT (and of none of ours) are errors."""
    cited: dict[str, list[ActRow]] = {}
    for act in acts:
        if act is not None and not act.cited_problem:
            for number in parse_cited_numbers(act.cited_numbers):
                cited.setdefault(number.number, []).append(act)
    if not cited:
        return
    rows = conn.execute(
        sa.text(
            """
            SELECT n, min(p.uat_siruta) FROM unnest(CAST(:numbers AS text[])) AS n
            JOIN cadastre.parcel p ON p.cadastral_number = n AND p.valid_to IS NULL
            GROUP BY n
            HAVING bool_and(p.uat_siruta <> :uat)
            """
        ),
        {"numbers": list(cited), "uat": settings.uat_siruta},
    )
    for number, uat in rows:
        for act in cited[number]:
            report.add(
                Finding(
                    "other_uat",
                    f"{number} is an imobil of UAT {uat}, not of {settings.uat_name} "
                    f"({settings.uat_siruta})",
                    act.label,
                    columns.get("cadastral_numbers"),
                    rejected=True,
                )
            )


def _refuse_if_bad(report: ImportReport, path: Path) -> None:
    if not report.counts["rejected"]:
        return
    report.status = "failed"
    shown = [f.line() for f in report.findings if f.rejected][:SHOWN_ERRORS]
    more = report.counts["rejected"] - len(shown)
    message = f"{path}: {report.counts['rejected']} bad row(s), nothing imported: " + "; ".join(
        shown
    )
    if more > 0:
        message += f"; … {more} more (see the report)"
    raise RegisterRejected(message, report)


def _existing(conn: Connection, settings: Settings) -> dict[tuple[str, str], dict[str, Any]]:
    rows = conn.execute(
        sa.text(
            "SELECT id, kind, register_key, version, number, issued_on, status, purpose, "
            "address_text, cited_numbers, land_book_text, validity_months "
            "FROM permits.act WHERE uat_siruta = :uat"
        ),
        {"uat": settings.uat_siruta},
    ).mappings()
    return {(row["kind"], row["register_key"]): dict(row) for row in rows}


def _stored_values(row: Mapping[str, Any]) -> tuple[object, ...]:
    return (
        row["number"],
        row["issued_on"],
        row["status"],
        row["purpose"],
        row["address_text"],
        row["cited_numbers"],
        row["land_book_text"],
        row["validity_months"],
    )


def _plan(
    conn: Connection, settings: Settings, acts: list[ActRow | None], report: ImportReport
) -> tuple[list[int], list[tuple[ActRow, dict[str, Any]]]]:
    """Indexes of new acts and (act, stored row) pairs that changed; counts them."""
    existing = _existing(conn, settings)
    new: list[int] = []
    changed: list[tuple[ActRow, dict[str, Any]]] = []
    for index, act in enumerate(acts):
        if act is None:
            continue
        stored = existing.get((act.kind, act.register_key))
        if stored is None:
            new.append(index)
        elif _stored_values(stored) != act.public_values():
            changed.append((act, stored))
        else:
            report.counts["unchanged"] += 1
    report.counts["inserted"] += len(new)
    report.counts["changed"] += len(changed)
    kinds = Counter(acts[i].kind for i in new if acts[i] is not None)  # type: ignore[union-attr]
    report.details["new_by_kind"] = dict(kinds)
    return new, changed


def _write(
    conn: Connection,
    settings: Settings,
    acts: list[ActRow | None],
    sites: list[tuple[bytes | None, bytes | None]],
    run_id: int,
    report: ImportReport,
) -> None:
    new, changed = _plan(conn, settings, acts, report)
    ids = _reserve_ids(conn, len(new))
    rows = [
        _act_record(acts[i], act_id, settings, run_id, sites[i])  # type: ignore[arg-type]
        for i, act_id in zip(new, ids, strict=True)
    ]
    copy_rows(conn, "permits.act", _ACT_COLUMNS, rows)
    fill_missing_twins(conn, "permits.act", settings.storage_srid, ids=ids)
    copy_rows(
        conn,
        "protected.act_applicant",
        ("act_id", "kind", "name", "national_id"),
        _applicants(acts, new, ids),
    )
    _audit_inserts(conn, run_id, f"import run {run_id}")
    for act, stored in changed:
        _update(conn, act, stored, run_id)
    conn.execute(sa.text("ANALYZE permits.act"))


def _reserve_ids(conn: Connection, count: int) -> list[int]:
    if not count:
        return []
    rows = conn.execute(
        sa.text("SELECT nextval('permits.act_id_seq') FROM generate_series(1, :n)"), {"n": count}
    )
    return [int(r[0]) for r in rows]


def _act_record(
    act: ActRow,
    act_id: int,
    settings: Settings,
    run_id: int,
    site: tuple[bytes | None, bytes | None],
) -> tuple[object, ...]:
    return (
        act_id,
        settings.uat_siruta,
        act.kind,
        act.number,
        act.issued_on,
        act.register_key,
        act.status,
        act.requested_on,
        act.purpose,
        act.address,
        act.cited_numbers,
        act.land_book,
        act.validity_months,
        act.valid_until,
        act.footprint_area,
        act.floor_area,
        act.height_m,
        act.levels,
        act.label,
        run_id,
        site[0],
        site[1],
    )


def _applicants(
    acts: list[ActRow | None], new: list[int], ids: list[int]
) -> Iterable[tuple[object, ...]]:
    for index, act_id in zip(new, ids, strict=True):
        act = acts[index]
        if act is not None and act.applicant:
            yield (act_id, act.applicant_kind, act.applicant, act.applicant_id)


def _audit_inserts(conn: Connection, run_id: int, actor: str) -> None:
    """One audit entry per new act, written set-based (the row as inserted)."""
    conn.execute(
        sa.text(
            """
            INSERT INTO core.audit_log (actor, action, table_name, row_id, after, reason)
            SELECT :actor, 'insert', 'permits.act', a.id::text,
                   to_jsonb(a) - 'location' - 'footprint' - 'geom' - 'location_etrs89'
                       - 'footprint_etrs89' - 'geom_etrs89', 'register import'
            FROM permits.act a WHERE a.import_run_id = :run
            """
        ),
        {"actor": actor, "run": run_id},
    )


def _update(conn: Connection, act: ActRow, stored: dict[str, Any], run_id: int) -> None:
    after = {
        "number": act.number,
        "issued_on": act.issued_on,
        "status": act.status,
        "purpose": act.purpose,
        "address_text": act.address,
        "cited_numbers": act.cited_numbers,
        "land_book_text": act.land_book,
        "validity_months": act.validity_months,
        "valid_until": act.valid_until,
    }
    conn.execute(
        sa.text(
            "UPDATE permits.act SET number = :number, issued_on = :issued_on, status = :status, "
            "purpose = :purpose, address_text = :address_text, cited_numbers = :cited_numbers, "
            "land_book_text = :land_book_text, validity_months = :validity_months, "
            "valid_until = :valid_until, version = version + 1, updated_at = now(), "
            "link_state = CASE WHEN cited_numbers IS DISTINCT FROM :cited_numbers "
            "THEN 'pending' ELSE link_state END WHERE id = :id"
        ),
        {**after, "id": stored["id"]},
    )
    before = {k: stored.get(k) for k in after if k in stored}
    record_change(
        conn,
        actor=f"import run {run_id}",
        action="update",
        table="permits.act",
        row_id=stored["id"],
        before=before,
        after=after,
        reason=f"register import, {act.label}",
    )


def _parameters(options: ImportOptions) -> dict[str, Any]:
    return {
        "map": dict(options.mapping),
        "kind": options.kind,
        "source_crs": options.source_crs,
        "link": options.link,
    }
