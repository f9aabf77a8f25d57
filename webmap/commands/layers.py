"""``urbangis layers``: what the catalog publishes."""

from __future__ import annotations

import click

from gis_core.db import engine_for
from layers.catalog import Catalog
from layers.roles import ROLES, visible_fields
from webmap.commands.context import current_settings


@click.group(name="layers")
def group() -> None:
    """The layer catalog (OGC API Features collections and vector tile layers)."""


@group.command(name="list")
@click.option("--role", type=click.Choice(ROLES), default="public", show_default=True)
@click.option("--extent/--no-extent", default=False, help="Also read each layer's extent.")
def list_layers(role: str, extent: bool) -> None:
    """One line per layer: id, geometry type, fields the role sees, title."""
    settings = current_settings()
    catalog = Catalog(settings.storage_srid)
    states = {}
    if extent:
        with engine_for(settings).connect() as conn:
            states = {layer.id: catalog.state(conn, layer) for layer in catalog.layers()}
    for layer in catalog.layers():
        if role not in layer.roles:
            continue
        fields = ",".join(f.name for f in visible_fields(layer, role))
        line = f"{layer.id:<14} {layer.geometry_type:<13} {layer.title}  [{fields}]"
        if layer.id in states and states[layer.id].extent:
            line += "  extent=" + ",".join(f"{v:.5f}" for v in states[layer.id].extent or ())
        click.echo(line)
