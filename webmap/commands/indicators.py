"""``urbangis indicators``: the catalogue, inputs, computation, exports and the report."""

from __future__ import annotations

from pathlib import Path

import click

from gis_core.db import engine_for
from layers.indicators import catalogue
from layers.indicators.catalogue import IndicatorParameters
from layers.indicators.export import FORMATS, export_results
from layers.indicators.inputs import KINDS, import_population, load_input_file, load_input_table
from layers.indicators.report import write_report
from layers.indicators.runs import ComputeRequest, RunOutcome, compute_indicators, recompute
from layers.indicators.units import import_unit_set
from webmap.commands.context import current_settings

_INDICATOR = click.option(
    "--indicator", "indicators", multiple=True, help="Indicator id (repeat; default: all)."
)


@click.group(name="indicators")
def group() -> None:
    """Spatial indicators per UTR, neighbourhood or grid cell, for strategy documents."""


@group.command(name="list")
def list_indicators() -> None:
    """The catalogue: id, name, unit, formula, sources."""
    for item in catalogue.CATALOGUE:
        click.echo(f"{item.id:<22} {item.name} [{item.unit}]")
        click.echo(f"{'':<22} {item.formula}")
        click.echo(f"{'':<22} sources: {', '.join(item.source_layers)}")


def _echo(outcome: RunOutcome) -> None:
    if outcome.skipped:
        click.echo(f"{outcome.indicator:<22} {outcome.units:<12} {outcome.skipped}")
        return
    values = [v for v in outcome.values.values() if v is not None]
    span = f"min {min(values):.4g} max {max(values):.4g}" if values else "no values"
    click.echo(
        f"{outcome.indicator:<22} {outcome.units:<12} run {outcome.run_id} -> layer "
        f"{outcome.layer_id} ({len(outcome.values)} units, {span})"
    )


@group.command(name="compute")
@_INDICATOR
@click.option(
    "--units",
    default="utr",
    show_default=True,
    help="utr, zones, hex:SIZE, square:SIZE or an imported unit set.",
)
@click.option("--year", type=int, help="Year (default: the current one, as of now).")
@click.option("--plan", "plan_id", type=int, help="Plan of the utr/zones units.")
@click.option(
    "--engine", type=click.Choice(["postgis", "dask"]), default="postgis", show_default=True
)
@click.option("--dataset", help="Dask: folder or URL of the GeoParquet dataset.")
@click.option("--scheduler", help="Dask: scheduler address (default: a local cluster).")
@click.option("--park-distance", type=float, default=400.0, show_default=True)
@click.option("--school-distance", type=float, default=600.0, show_default=True)
@click.option("--transit-distance", type=float, default=300.0, show_default=True)
def compute(
    indicators: tuple[str, ...],
    units: str,
    year: int | None,
    plan_id: int | None,
    engine: str,
    dataset: str | None,
    scheduler: str | None,
    park_distance: float,
    school_distance: float,
    transit_distance: float,
) -> None:
    """Compute, store and publish indicator layers (with their inputs' versions)."""
    settings = current_settings()
    request = ComputeRequest(
        indicators=indicators,
        units=units,
        year=year,
        plan_id=plan_id,
        parameters=IndicatorParameters(park_distance, school_distance, transit_distance),
        actor="cli",
    )
    with engine_for(settings).begin() as conn:
        if engine == "postgis":
            outcomes = compute_indicators(conn, request, settings.storage_srid)
        else:
            outcomes = _compute_dask(conn, request, settings.storage_srid, dataset, scheduler)
    for outcome in outcomes:
        _echo(outcome)


def _compute_dask(
    conn: object, request: ComputeRequest, srid: int, dataset: str | None, scheduler: str | None
) -> list[RunOutcome]:
    from sqlalchemy.engine import Connection

    from gis_core.errors import MissingParameter
    from layers.indicators.distributed import DaskEngine, dask_client

    if not dataset:
        raise MissingParameter("--engine dask needs --dataset (see 'indicators dataset export')")
    assert isinstance(conn, Connection)
    with dask_client(scheduler) as client:
        partials = DaskEngine(dataset, srid, client)
        return compute_indicators(conn, request, srid, engine="dask", partials=partials)


@group.command(name="recompute")
@click.argument("run_id", type=int)
def recompute_run(run_id: int) -> None:
    """Compute a stored run again from the same input versions and compare the values."""
    settings = current_settings()
    with engine_for(settings).begin() as conn:
        result = recompute(conn, run_id, settings.storage_srid)
    state = "identical" if result["identical"] else f"DIFFERENT: {result['differences']}"
    click.echo(f"run {run_id}: {result['units']} units, {state}")
    if not result["identical"]:
        raise SystemExit(1)


@group.command(name="export")
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@_INDICATOR
@click.option("--units", help="Only runs on these units.")
def export(fmt: str, out: Path, indicators: tuple[str, ...], units: str | None) -> None:
    """Write the current indicator results as CSV, GeoPackage or GeoJSON."""
    settings = current_settings()
    with engine_for(settings).connect() as conn:
        count = export_results(
            conn, out, fmt, settings.storage_srid, indicators=indicators, units=units
        )
    click.echo(f"wrote {count} rows to {out}")


@group.command(name="report")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@_INDICATOR
@click.option("--units", help="Only runs on these units.")
def report(out: Path, indicators: tuple[str, ...], units: str | None) -> None:
    """An HTML report with a map and a chart per indicator (static files)."""
    settings = current_settings()
    with engine_for(settings).connect() as conn:
        index = write_report(
            conn,
            out,
            indicators=indicators,
            units=units,
            title=f"Spatial indicators – {settings.uat_name}",
        )
    click.echo(f"wrote {index}")


@group.group(name="units")
def units_group() -> None:
    """Boundary layers used as spatial units."""


@units_group.command(name="import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="Name to use with --units.")
@click.option("--key-field", help="Field with the unit's key (default: row number).")
@click.option("--name-field", help="Field with the unit's name.")
def units_import(path: Path, name: str, key_field: str | None, name_field: str | None) -> None:
    """Import a boundary layer (any vector file) as spatial units."""
    settings = current_settings()
    with engine_for(settings).begin() as conn:
        count = import_unit_set(
            conn, path, name, settings.storage_srid, key_field=key_field, name_field=name_field
        )
    click.echo(f"imported {count} units as {name!r}")


@group.group(name="inputs")
def inputs_group() -> None:
    """Input layers: parks, schools, transit stops, green areas, population."""


@inputs_group.command(name="load")
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("source")
@click.option("--name", help="Layer name (default: the kind).")
@click.option("--value-field", help="Residents per point (population) or value column.")
@click.option("--name-field", help="Feature name field.")
def inputs_load(
    kind: str, source: str, name: str | None, value_field: str | None, name_field: str | None
) -> None:
    """Load SOURCE (a vector file, or table:schema.table) as an input layer of KIND."""
    settings = current_settings()
    with engine_for(settings).begin() as conn:
        if source.startswith("table:"):
            count = load_input_table(
                conn,
                source.removeprefix("table:"),
                kind,
                settings.storage_srid,
                name=name,
                value_column=value_field,
            )
        else:
            count = load_input_file(
                conn,
                Path(source),
                kind,
                settings.storage_srid,
                name=name,
                value_field=value_field,
                name_field=name_field,
            )
    click.echo(f"loaded {count} {kind} features")


@inputs_group.command(name="population")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--units", required=True, help="Units the keys refer to (utr, a unit set...).")
@click.option("--year", type=int, required=True)
@click.option("--key-field", required=True)
@click.option("--population-field", required=True)
def inputs_population(
    path: Path, units: str, year: int, key_field: str, population_field: str
) -> None:
    """Import residents per unit from a CSV."""
    settings = current_settings()
    with engine_for(settings).begin() as conn:
        count = import_population(
            conn, path, units, year, key_field=key_field, population_field=population_field
        )
    click.echo(f"imported population of {count} units for {year}")


@group.group(name="dataset")
def dataset_group() -> None:
    """GeoParquet datasets for the Dask engine."""


@dataset_group.command(name="export")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--chunk", type=click.IntRange(1000), default=250_000, show_default=True)
def dataset_export(out: Path, chunk: int) -> None:
    """Write parcels, buildings, restrictions, inputs and acts as GeoParquet parts."""
    from layers.indicators.distributed import export_dataset

    settings = current_settings()
    with engine_for(settings).connect() as conn:
        counts = export_dataset(conn, out, settings.storage_srid, chunk=chunk)
    click.echo(", ".join(f"{n} {layer}" for layer, n in counts.items()))
