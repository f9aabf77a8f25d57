"""The ``urbangis`` command line: one root group, one module of commands per concern."""

from __future__ import annotations

import sys
from typing import Any

import click

from gis_core.errors import UrbanGisError
from webmap.commands import (
    analysis,
    apikeys,
    config,
    crs,
    db,
    demo,
    imports,
    indicators,
    layers,
    permits,
    serve,
    users,
)


class _Root(click.Group):
    """Turns platform errors into one clear line on stderr and exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UrbanGisError as exc:
            click.echo(f"urbangis: error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=_Root)
@click.version_option(package_name="urbangis")
@click.pass_context
def main(ctx: click.Context) -> None:
    """urbangis: cadastre, urban plans, permits and OGC services for a municipality."""
    ctx.ensure_object(dict)


for _module in (
    config,
    db,
    crs,
    demo,
    serve,
    layers,
    apikeys,
    users,
    permits,
    imports,
    analysis,
    indicators,
):
    main.add_command(_module.group)
