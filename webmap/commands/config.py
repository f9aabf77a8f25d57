"""``urbangis config``: inspect the effective settings."""

from __future__ import annotations

import click

from webmap.commands.context import current_settings


@click.group(name="config")
def group() -> None:
    """Inspect the effective configuration."""


@group.command(name="show")
def show() -> None:
    """Print every setting with its effective value, secrets redacted."""
    shown = current_settings().redacted()
    width = max(len(name) for name in shown)
    for name, value in shown.items():
        click.echo(f"{name.ljust(width)}  {value}")
