"""``urbangis demo`` commands."""

from __future__ import annotations

import click


@click.group(name="demo")
def group() -> None:
    """Generate and load the synthetic demo municipality."""
