"""``urbangis demo``: the synthetic Cluj-Napoca, loaded into the database or written as files."""

from __future__ import annotations

from pathlib import Path

import click

from gis_core.db import create_engine
from importers.demo import DEFAULT_PARCELS, DEFAULT_SEED, MAX_PARCELS, MIN_PARCELS
from webmap.commands.context import current_settings

_PARCELS = click.option(
    "--parcels",
    type=click.IntRange(MIN_PARCELS, MAX_PARCELS),
    default=DEFAULT_PARCELS,
    show_default=True,
    help="Number of imobile (parcels) to generate.",
)
_SEED = click.option(
    "--seed", type=int, default=DEFAULT_SEED, show_default=True, help="Random seed of the city."
)


@click.group(name="demo")
def group() -> None:
    """The demo municipality: synthetic parcels, plans and acts on the real Cluj-Napoca."""


@group.command(name="load")
@_PARCELS
@_SEED
@click.option(
    "--skip-if-loaded",
    is_flag=True,
    help="Do nothing when a demo with the same parameters is already loaded.",
)
def load(parcels: int, seed: int, skip_if_loaded: bool) -> None:
    """Generate the demo and load it in one transaction (replacing an earlier demo)."""
    from importers.demo.generate import DemoParameters
    from importers.demo.load import load_demo

    engine = create_engine(current_settings(), pool_size=1)
    try:
        load_demo(
            engine,
            DemoParameters(parcels=parcels, seed=seed),
            skip_if_loaded=skip_if_loaded,
            progress=click.echo,
        )
    finally:
        engine.dispose()


@group.command(name="files")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data/demo"),
    show_default=True,
    help="Folder to write the sample files into.",
)
@_PARCELS
@_SEED
def files(out: Path, parcels: int, seed: int) -> None:
    """Write sample CGXML files and a register of acts for the demo (no database needed)."""
    from importers.demo.generate import DemoParameters
    from importers.demo.samples import write_samples

    written = write_samples(out, DemoParameters(parcels=parcels, seed=seed), progress=click.echo)
    click.echo(f"wrote {len(written)} files to {out}")
