"""``urbangis import``: cadastre, zoning, restrictions and rasters; the record of import runs.

Every import prints its summary on stdout (progress goes to stderr: a bar on a
terminal, plain lines in logs), writes it as JSON with ``--report``, and exits non-zero
when it failed or was refused (then nothing was written).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import click
import orjson
from sqlalchemy.engine import Engine

from gis_core.crs import parse_crs
from gis_core.db import create_engine
from gis_core.errors import UrbanGisError
from gis_core.runs import get_run, list_runs
from gis_core.settings import Settings
from importers.report import ImportReport
from webmap.commands.context import current_settings

_REPORT = click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the report as JSON to this file.",
)
_SOURCE_CRS = click.option(
    "--source-crs", help="CRS of the source when it declares none or a wrong one (EPSG:N)."
)
_LAYER = click.option("--layer", help="Layer of a multi-layer source (GeoPackage, GML, PBF, DXF).")
_MAP = click.option(
    "--map",
    "field_map",
    multiple=True,
    help="Our field = source column, e.g. cadastral_number=ML (comma-separated or repeated).",
)
_MODE = click.option(
    "--mode",
    type=click.Choice(["append", "replace"]),
    default="append",
    show_default=True,
    help="replace: also close current rows the source no longer has.",
)
_DRY_RUN = click.option("--dry-run", is_flag=True, help="Check and report; write nothing.")
_STRICT = click.option("--strict", is_flag=True, help="Fail on any finding (repairs too).")
_ENCODING = click.option(
    "--encoding", help="Code page of the attributes (e.g. CP1250) when the file does not say."
)
_WHERE = click.option("--where", help='OGR attribute filter, e.g. "building IS NOT NULL".')


@click.group(name="import")
def group() -> None:
    """Import cadastre, plans, restrictions and rasters; list and show import runs."""


def _crs(value: str | None) -> int | None:
    return parse_crs(value) if value else None


def _progress():  # type: ignore[no-untyped-def]
    from importers.progress import Progress

    return Progress()


def _run(
    settings: Settings, action: Callable[[Engine], ImportReport], report_path: Path | None
) -> None:
    """Run an import on its own engine, print its summary, write the JSON.

    Failures print their report too, then exit through the root group.
    """
    from importers.runner import ImportFailed

    engine = create_engine(settings, pool_size=1)
    try:
        report = action(engine)
    except ImportFailed as exc:
        _emit(exc.report, report_path)
        raise
    finally:
        engine.dispose()
    _emit(report, report_path)


def _emit(report: ImportReport, report_path: Path | None) -> None:
    for line in report.summary_lines():
        click.echo(line)
    if report_path is not None:
        report.write_json(report_path)
        click.echo(f"  report written to {report_path}")


@group.command(name="cadastre")
@click.argument("paths", nargs=-1, required=True)
@_SOURCE_CRS
@_LAYER
@_MAP
@_MODE
@_DRY_RUN
@_STRICT
@click.option(
    "--with-persons",
    is_flag=True,
    help="Also import CGXML owners (Person/Registration) into the protected tables.",
)
@_REPORT
@click.option(
    "--features",
    type=click.Choice(["parcels", "buildings"]),
    default="parcels",
    show_default=True,
    help="What an OGR source holds (CGXML files always give both).",
)
@_ENCODING
@_WHERE
@click.option(
    "--overlap-tolerance",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Report overlaps between parcels larger than this many m².",
)
def cadastre(
    paths: tuple[str, ...],
    source_crs: str | None,
    layer: str | None,
    field_map: tuple[str, ...],
    mode: str,
    dry_run: bool,
    strict: bool,
    with_persons: bool,
    report_path: Path | None,
    features: str,
    encoding: str | None,
    where: str | None,
    overlap_tolerance: float,
) -> None:
    """Import parcels (or buildings) from CGXML files/folders/zips, OGR files or a WFS: URL."""
    from importers.cadastre import CadastreOptions, import_cadastre
    from importers.fields import parse_map

    settings = current_settings()
    options = CadastreOptions(
        source_crs=_crs(source_crs),
        layer=layer,
        field_map=parse_map(field_map),
        mode=mode,
        dry_run=dry_run,
        strict=strict,
        with_persons=with_persons,
        features=features,
        encoding=encoding,
        where=where,
        overlap_tolerance=overlap_tolerance,
    )
    _run(
        settings,
        lambda engine: import_cadastre(engine, settings, paths, options, _progress()),
        report_path,
    )


@group.command(name="zoning")
@click.argument("path")
@click.option(
    "--plan", "plan_title", required=True, help='Plan title, e.g. "PUG Cluj-Napoca 2014".'
)
@click.option(
    "--plan-type", type=click.Choice(["PUG", "PUZ", "PUD"]), required=True, help="Kind of plan."
)
@click.option("--hcl", help='Approving council decision, e.g. "493/2014" or "493/22.12.2014".')
@click.option("--valid-from", type=click.DateTime(["%Y-%m-%d"]), help="Plan in force from.")
@click.option(
    "--rules",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Table of rules per UTR (CSV or XLSX).",
)
@click.option("--rules-map", "rules_map", multiple=True, help="Rule field = rules-table column.")
@_MAP
@_SOURCE_CRS
@_LAYER
@_MODE
@_DRY_RUN
@_STRICT
@_ENCODING
@_REPORT
def zoning(
    path: str,
    plan_title: str,
    plan_type: str,
    hcl: str | None,
    valid_from: object,
    rules: Path | None,
    rules_map: tuple[str, ...],
    field_map: tuple[str, ...],
    source_crs: str | None,
    layer: str | None,
    mode: str,
    dry_run: bool,
    strict: bool,
    encoding: str | None,
    report_path: Path | None,
) -> None:
    """Import the zones (UTR) of a plan, with their rules joined by UTR code."""
    from importers.fields import parse_map
    from importers.zoning import ZoningOptions, import_zoning

    settings = current_settings()
    options = ZoningOptions(
        plan_title=plan_title,
        plan_type=plan_type,
        hcl=hcl,
        valid_from=_date(valid_from),
        rules=rules,
        rules_map=parse_map(rules_map),
        field_map=parse_map(field_map),
        source_crs=_crs(source_crs),
        layer=layer,
        mode=mode,
        dry_run=dry_run,
        strict=strict,
        encoding=encoding,
    )
    _run(
        settings,
        lambda engine: import_zoning(engine, settings, path, options, _progress()),
        report_path,
    )


def _date(value: object) -> date | None:
    from datetime import datetime

    return value.date() if isinstance(value, datetime) else None


@group.command(name="restrictions")
@click.argument("path")
@click.option(
    "--kind",
    type=click.Choice(
        [
            "heritage",
            "protected_area",
            "flood",
            "easement",
            "airport",
            "natura2000",
            "landslide",
            "other",
        ]
    ),
    required=True,
    help="Kind of restriction.",
)
@click.option("--name-field", help="Source column holding each restriction's name.")
@click.option("--source", "legal_source", help='Legal reference, e.g. "Ordinul MC 2828/2015".')
@_MAP
@_SOURCE_CRS
@_LAYER
@_MODE
@_DRY_RUN
@_STRICT
@_ENCODING
@_REPORT
def restrictions(
    path: str,
    kind: str,
    name_field: str | None,
    legal_source: str | None,
    field_map: tuple[str, ...],
    source_crs: str | None,
    layer: str | None,
    mode: str,
    dry_run: bool,
    strict: bool,
    encoding: str | None,
    report_path: Path | None,
) -> None:
    """Import restrictions (heritage, flood, easements, ...) overlaying the zones."""
    from importers.fields import parse_map
    from importers.restrictions import RestrictionOptions, import_restrictions

    settings = current_settings()
    mapping = parse_map(field_map)
    if name_field:
        mapping["name"] = name_field
    options = RestrictionOptions(
        kind=kind,
        legal_source=legal_source,
        field_map=mapping,
        source_crs=_crs(source_crs),
        layer=layer,
        mode=mode,
        dry_run=dry_run,
        strict=strict,
        encoding=encoding,
    )
    _run(
        settings,
        lambda engine: import_restrictions(engine, settings, path, options, _progress()),
        report_path,
    )


@group.command(name="raster")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--layer", "layer_name", required=True, help="Layer name, e.g. orthophoto.")
@click.option("--title", help="Human-readable title of the layer.")
@_SOURCE_CRS
@_DRY_RUN
@_REPORT
def raster(
    path: Path,
    layer_name: str,
    title: str | None,
    source_crs: str | None,
    dry_run: bool,
    report_path: Path | None,
) -> None:
    """Convert a GeoTIFF to a Cloud-Optimized GeoTIFF with overviews and register it."""
    from importers.raster import RasterOptions, import_raster

    settings = current_settings()
    options = RasterOptions(
        layer=layer_name, title=title, source_crs=_crs(source_crs), dry_run=dry_run
    )
    _run(
        settings,
        lambda engine: import_raster(engine, settings, path, options, _progress()),
        report_path,
    )


@group.command(name="runs")
@click.option("--kind", help="Only runs of this kind (cadastre.parcels, zoning, ...).")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
def runs(kind: str | None, limit: int) -> None:
    """List import runs, newest first."""
    engine = create_engine(current_settings(), pool_size=1)
    try:
        with engine.connect() as conn:
            records = list_runs(conn, kind=kind, limit=limit)
    finally:
        engine.dispose()
    if not records:
        click.echo("no import runs")
        return
    click.echo(f"{'id':>6}  {'kind':<20} {'status':<10} {'started':<20} counts  source")
    for record in records:
        counts = record.counts or {}
        shown = " ".join(
            f"{name}={counts[name]}"
            for name in ("read", "inserted", "changed", "closed", "rejected")
            if name in counts
        )
        started = record.started_at.strftime("%Y-%m-%d %H:%M:%S")
        click.echo(
            f"{record.id:>6}  {record.kind:<20} {record.status:<10} {started:<20} "
            f"{shown or '-'}  {_shorten(record.source)}"
        )


def _shorten(text: str, width: int = 60) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1) :]


@group.command(name="show")
@click.argument("run_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the stored report as JSON.")
def show(run_id: int, as_json: bool) -> None:
    """Show one import run's report."""
    engine = create_engine(current_settings(), pool_size=1)
    try:
        with engine.connect() as conn:
            record = get_run(conn, run_id)
    finally:
        engine.dispose()
    if as_json:
        click.echo(orjson.dumps(record.report, option=orjson.OPT_INDENT_2).decode())
        return
    started = f"{record.started_at:%Y-%m-%d %H:%M:%S}"
    click.echo(
        f"run {record.id} · {record.kind} · {record.status} · started {started}"
        + (f" · finished {record.finished_at:%H:%M:%S}" if record.finished_at else "")
        + (f" · by {record.actor}" if record.actor else "")
    )
    if record.report and "counts" in record.report:
        report = ImportReport.from_dict(dict(record.report))
        report.run_id = None
        for line in report.summary_lines():
            click.echo(line)
    else:
        click.echo(f"  source: {record.source}")
        click.echo(f"  counts: {record.counts}")
        if record.report.get("error"):
            click.echo(f"  error: {record.report['error']}")


__all__ = ["UrbanGisError", "group"]
