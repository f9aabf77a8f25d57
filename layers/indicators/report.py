"""The HTML report: per indicator its definition, a map, a chart and the table of values.

Made for a strategy document: static files (``index.html`` plus PNG figures drawn with
matplotlib's non-interactive backend) that open from a folder or a USB stick with no
server and no internet. Each section names the run and the versions of its inputs, so
the same figures can be recomputed later (``urbangis indicators recompute RUN``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import jinja2
import matplotlib
import numpy as np
from sqlalchemy.engine import Connection

from gis_core.errors import NotFound
from layers.indicators import catalogue
from layers.indicators.export import _results, current_runs
from layers.indicators.publish import PALETTE

matplotlib.use("Agg")

from matplotlib import pyplot as plt
from matplotlib.colors import BoundaryNorm, ListedColormap

MAX_BARS = 25

TEMPLATE = Path(__file__).with_name("report.html")


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return f"{float(value):,.3f}".rstrip("0").rstrip(".")


def _draw_map(frame: gpd.GeoDataFrame, summary: dict[str, Any], title: str, path: Path) -> None:
    breaks = [float(b) for b in summary.get("breaks") or [] if b is not None]
    values = frame["value"].to_numpy(dtype=float, na_value=np.nan)
    fig, ax = plt.subplots(figsize=(7, 6), dpi=110)
    if np.isnan(values).any():
        frame[np.isnan(values)].plot(ax=ax, color="#d9d9d9", edgecolor="#999999", linewidth=0.2)
    finite = frame[~np.isnan(values)]
    if len(finite):
        low, high = float(np.nanmin(values)), float(np.nanmax(values))
        edges = sorted({low, *breaks, high}) if high > low else [low, low + 1.0]
        colors = ListedColormap(list(PALETTE[: max(len(edges) - 1, 1)]))
        norm = BoundaryNorm(edges, colors.N)
        finite.plot(
            ax=ax,
            column="value",
            cmap=colors,
            norm=norm,
            edgecolor="#636363",
            linewidth=0.2,
            legend=True,
            legend_kwds={"shrink": 0.6},
        )
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _draw_chart(frame: gpd.GeoDataFrame, unit: str, title: str, path: Path) -> str:
    """Bars per unit when there are few, a histogram when there are many."""
    values = frame[["unit_key", "unit_name", "value"]].dropna(subset=["value"])
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    if len(values) <= MAX_BARS:
        ordered = values.sort_values("value")
        labels = [
            str(n or k) for k, n in zip(ordered["unit_key"], ordered["unit_name"], strict=True)
        ]
        ax.barh(labels, ordered["value"], color=PALETTE[3])
        ax.set_xlabel(unit)
        ax.tick_params(axis="y", labelsize=7)
        caption = f"Chart: {title} per unit, ascending."
    else:
        ax.hist(values["value"], bins=20, color=PALETTE[3], edgecolor="white")
        ax.set_xlabel(unit)
        ax.set_ylabel("units")
        caption = f"Chart: distribution of {title} over {len(values)} units."
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return caption


def write_report(
    conn: Connection,
    out: Path,
    *,
    indicators: tuple[str, ...] = (),
    units: str | None = None,
    title: str = "Spatial indicators",
) -> Path:
    """Render ``out/index.html`` and its figures from the current runs."""
    runs = current_runs(conn, indicators, units)
    if not runs:
        raise NotFound("no indicator results to report: run 'urbangis indicators compute'")
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    sections = []
    for run in runs:
        definition = catalogue.get(run["indicator"])
        frame = _results(conn, run, geographic=False)
        name = run["layer_id"]
        _draw_map(
            frame,
            run["summary"] or {},
            f"{definition.name} [{definition.unit}]",
            figures / f"{name}_map.png",
        )
        caption = _draw_chart(
            frame, definition.unit, definition.name, figures / f"{name}_chart.png"
        )
        versions = run["input_versions"] or {}
        sections.append(
            {
                "layer_id": name,
                "run_id": run["id"],
                "engine": run["engine"],
                "name": definition.name,
                "definition": definition.definition,
                "formula": definition.formula,
                "unit": definition.unit,
                "sources": ", ".join(definition.source_layers),
                "units": run["units"],
                "year": run["year"],
                "as_of": run["as_of"].isoformat(),
                "summary": run["summary"] or {},
                "tables": versions.get("tables", {}),
                "inputs": versions.get("inputs", []),
                "map": f"figures/{name}_map.png",
                "chart": f"figures/{name}_chart.png",
                "chart_caption": caption,
                "rows": [
                    {
                        "unit_key": r.unit_key,
                        "unit_name": r.unit_name,
                        "value": _fmt(r.value),
                        "numerator": _fmt(r.numerator),
                        "denominator": _fmt(r.denominator),
                    }
                    for r in frame.itertuples()
                ],
            }
        )
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    html = environment.from_string(TEMPLATE.read_text(encoding="utf-8")).render(
        title=title, runs=runs, sections=sections
    )
    index = out / "index.html"
    index.write_text(html, encoding="utf-8")
    return index
