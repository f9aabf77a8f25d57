"""``urbangis permits``: import registers of acts, link them to parcels, see the queue."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click
import orjson

from gis_core.db import bulk_transaction, create_engine
from webmap.commands.context import current_settings


@click.group(name="permits")
def group() -> None:
    """Urbanism certificates (CU) and building/demolition permits (AC/AD)."""


@group.command(name="import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--map", "mapping", help="Fields from columns: target=column,... (see --fields).")
@click.option(
    "--kind",
    default="auto",
    show_default=True,
    help="CU, AC or AD for every row, or auto (from the type column).",
)
@click.option("--source-crs", help="CRS of the site geometries or x/y columns, e.g. EPSG:4326.")
@click.option("--layer", help="Layer of a multi-layer vector file.")
@click.option("--dry-run", is_flag=True, help="Check and count; write nothing.")
@click.option("--link", is_flag=True, help="Link the acts to parcels in the same transaction.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path))
def import_command(
    path: Path,
    mapping: str | None,
    kind: str,
    source_crs: str | None,
    layer: str | None,
    dry_run: bool,
    link: bool,
    report_path: Path | None,
) -> None:
    """Import a register (CSV, XLSX or any vector file) in one transaction."""
    from importers.acts.mapping import parse_map_option
    from importers.acts.pipeline import ImportOptions, RegisterRejected, import_register

    options = ImportOptions(
        mapping=parse_map_option(mapping),
        kind=kind,
        source_crs=source_crs,
        dry_run=dry_run,
        link=link,
        layer=layer,
        actor="cli",
    )
    engine = create_engine(current_settings(), pool_size=1)
    try:
        report = import_register(engine, current_settings(), path, options)
    except RegisterRejected as exc:
        for line in exc.report.summary_lines():
            click.echo(line, err=True)
        if report_path:
            exc.report.write_json(report_path)
        raise
    finally:
        engine.dispose()
    for line in report.summary_lines():
        click.echo(line)
    if report_path:
        report.write_json(report_path)


@group.command(name="fields")
def fields_command() -> None:
    """The fields ``--map`` can fill."""
    from importers.acts.mapping import TARGETS

    for name, text in TARGETS.items():
        click.echo(f"{name:18} {text}")


@group.command(name="link")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), help="Acts issued since.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path))
def link_command(since: object, report_path: Path | None) -> None:
    """(Re)link acts to parcels: by number, then location, then address."""
    from permits.linking import link_acts

    settings = current_settings()
    day = since.date() if since is not None else None  # type: ignore[attr-defined]
    engine = create_engine(settings, pool_size=1)
    try:
        with bulk_transaction(engine) as conn:
            report = link_acts(conn, settings, since=day if isinstance(day, date) else None)
    finally:
        engine.dispose()
    for line in report.summary_lines():
        click.echo(line)
    if report_path:
        report_path.write_bytes(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2))


@group.command(name="queue")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the items as JSON.")
def queue_command(limit: int, as_json: bool) -> None:
    """Acts waiting for a clerk: unmatched, ambiguous or disputed links."""
    from permits.queue import count_open, open_items

    engine = create_engine(current_settings(), pool_size=1)
    try:
        with engine.connect() as conn:
            counts = count_open(conn)
            items = open_items(conn, limit=limit)
    finally:
        engine.dispose()
    if as_json:
        click.echo(orjson.dumps({"counts": counts, "items": items}, default=str).decode())
        return
    total = sum(counts.values())
    click.echo(f"{total} acts to review" + (": " if counts else ""), nl=not counts)
    if counts:
        click.echo(", ".join(f"{reason} {n}" for reason, n in counts.items()))
    for item in items:
        day = item["issued_on"].strftime("%d.%m.%Y") if item["issued_on"] else "no date"
        click.echo(
            f"  #{item['id']} {item['kind']} {item['number']}/{day} [{item['reason']}] "
            f"{item['detail']}"
        )
    if total > len(items):
        click.echo(f"  … {total - len(items)} more (--limit)")
