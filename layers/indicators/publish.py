"""Indicator results as catalog layers: one choropleth layer per (indicator, units).

The newest run of each pair is the layer's content (``is_current``); its id is the
run's ``layer_id`` (``ind_built_share_hex_500``). The catalog calls
``indicator_layers`` whenever ``analysis.indicator_run`` changes, so a compute makes
the layer appear in OGC API Features, WFS/WMS, the tiles and the web map with no
restart. Values are aggregates over units: nothing personal, so every role sees them.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from layers.catalog import Field, LayerDefinition
from layers.indicators import catalogue

PREFIX = "ind_"
RUNS_TABLE = "analysis.indicator_run"
# ColorBrewer YlOrRd, 5 classes: light = low, dark = high.
PALETTE = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")


def choropleth_style(summary: dict[str, Any], unit: str) -> dict[str, object]:
    """Quantile classes of the run's values (breaks stored with the run)."""
    breaks = [float(b) for b in summary.get("breaks") or [] if b is not None]
    return {
        "type": "choropleth",
        "property": "value",
        "breaks": breaks,
        "colors": list(PALETTE[: len(breaks) + 1]) if breaks else [PALETTE[2]],
        "unit": unit,
        "stroke": "#636363",
        "width": 0.4,
        "no_data": "#d9d9d9",
    }


def indicator_layer(
    storage_srid: int, layer_id: str, indicator_id: str, units: str, summary: dict[str, Any]
) -> LayerDefinition:
    """The layer of the current run of ``layer_id``."""
    definition = catalogue.get(indicator_id)
    t = sa.table(
        "indicator_result",
        *(
            sa.column(c)
            for c in (
                "id",
                "run_id",
                "unit_key",
                "unit_name",
                "value",
                "numerator",
                "denominator",
                "objects",
                "geom",
                "geom_etrs89",
            )
        ),
        schema="analysis",
    ).alias("t")
    r = sa.table(
        "indicator_run",
        *(sa.column(c) for c in ("id", "layer_id", "is_current", "year", "as_of", "indicator")),
        schema="analysis",
    ).alias("r")
    source = t.join(r, r.c.id == t.c.run_id)

    def current() -> ColumnElement[bool]:
        return sa.and_(r.c.layer_id == layer_id, r.c.is_current.is_(True))

    return LayerDefinition(
        id=layer_id,
        title=f"{definition.name} ({units})",
        abstract=f"{definition.definition} Formula: {definition.formula}. Unit: {definition.unit}.",
        keywords=("indicator", indicator_id, units),
        source=source,
        main=t,
        geometry_type="MultiPolygon",
        storage_srid=storage_srid,
        base_filter=current,
        fields=(
            Field("unit_key", t.c.unit_key, title="Unit"),
            Field("unit_name", t.c.unit_name, title="Name"),
            Field(
                "value", t.c.value, type="number", title=f"{definition.name} [{definition.unit}]"
            ),
            Field("numerator", t.c.numerator, type="number", min_zoom=12),
            Field("denominator", t.c.denominator, type="number", min_zoom=12),
            Field("objects", t.c.objects, type="integer", min_zoom=12),
            Field("year", r.c.year, type="integer"),
            Field("run_id", t.c.run_id, type="integer"),
        ),
        data_tables=("analysis.indicator_result", RUNS_TABLE),
        style=choropleth_style(summary, definition.unit),
    )


def indicator_layers(conn: Connection, storage_srid: int) -> list[LayerDefinition]:
    """A layer for every current indicator run (empty before the analysis migration)."""
    if conn.execute(sa.text("SELECT to_regclass('analysis.indicator_run')")).scalar() is None:
        return []
    rows = conn.execute(
        sa.text(
            "SELECT layer_id, indicator, units, summary FROM analysis.indicator_run "
            "WHERE is_current ORDER BY layer_id"
        )
    ).all()
    return [
        indicator_layer(storage_srid, row.layer_id, row.indicator, row.units, row.summary or {})
        for row in rows
        if row.indicator in catalogue.BY_ID
    ]
