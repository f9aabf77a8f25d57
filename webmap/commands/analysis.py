"""``urbangis analysis``: zone analysis and plan-version comparison for planners."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import orjson

from gis_core.db import engine_for
from layers.analysis.basis import AsOf
from layers.analysis.compare import PlanState, compare_plans
from layers.analysis.zones import GROUPINGS, ZoneQuery, analyse_zones
from webmap.commands.context import current_settings


@click.group(name="analysis")
def group() -> None:
    """What is built in each zone against what the rules allow; plan comparisons."""


def _write(document: dict[str, Any], out: Path | None) -> None:
    data = orjson.dumps(document, option=orjson.OPT_INDENT_2)
    if out is None:
        click.echo(data.decode())
    else:
        out.write_bytes(data)
        click.echo(f"wrote {out}", err=True)


@group.command(name="zones")
@click.option("--as-of", "as_of", help="Date YYYY-MM-DD (default: now).")
@click.option("--plan", "plan_id", type=int, help="Analyse this plan's zones only.")
@click.option("--by", type=click.Choice(GROUPINGS), default="utr", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="JSON file.")
def zones(as_of: str | None, plan_id: int | None, by: str, out: Path | None) -> None:
    """Per UTR: parcels, areas, footprint, floor area, POT/CUT, excesses, capacity, acts."""
    settings = current_settings()
    with engine_for(settings).connect() as conn:
        document = analyse_zones(conn, ZoneQuery(AsOf.parse(as_of), plan_id, by))
    _write(document, out)


@group.command(name="compare")
@click.option("--plan", "plan_id", type=int, help="Plan before (default: plans in force).")
@click.option("--as-of", "as_of", help="Date of the state before (default: now).")
@click.option("--other-plan", "other_plan", type=int, help="Plan after.")
@click.option("--other-as-of", "other_as_of", help="Date of the state after.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="JSON file.")
def compare(
    plan_id: int | None,
    as_of: str | None,
    other_plan: int | None,
    other_as_of: str | None,
    out: Path | None,
) -> None:
    """Parcels whose zone or rules change between two plan states, with capacity change."""
    settings = current_settings()
    before = PlanState(AsOf.parse(as_of), plan_id)
    after = PlanState(AsOf.parse(other_as_of, "other_as_of"), other_plan)
    with engine_for(settings).connect() as conn:
        document = compare_plans(conn, before, after)
    _write(document, out)
    click.echo(
        f"{document['changed_parcels']} parcels changed, capacity change "
        f"{document['capacity_change']:.1f} m²",
        err=True,
    )
