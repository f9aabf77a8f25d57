"""Exports of indicator results: CSV tables, GeoPackage and GeoJSON maps.

CSV carries no geometry (a table for a spreadsheet or a strategy annex); GeoPackage
keeps the storage CRS (one layer per indicator run); GeoJSON is RFC 7946 (longitude,
latitude in WGS 84, from the ETRS89 twins). Every row names its run, so a figure in a
document can be traced to the inputs' versions recorded with that run.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyogrio
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_core.errors import InvalidParameter, NotFound
from layers.indicators import catalogue

FORMATS = ("csv", "gpkg", "geojson")
COLUMNS = (
    "run_id",
    "indicator",
    "name",
    "unit",
    "units",
    "year",
    "unit_key",
    "unit_name",
    "value",
    "numerator",
    "denominator",
    "objects",
)


def current_runs(
    conn: Connection, indicators: tuple[str, ...] = (), units: str | None = None
) -> list[dict[str, Any]]:
    """The current run of every published layer, optionally filtered."""
    rows = conn.execute(
        sa.text(
            "SELECT id, indicator, units, layer_id, year, as_of, engine, parameters, "
            "input_versions, summary, computed_at FROM analysis.indicator_run "
            "WHERE is_current AND (CAST(:units AS text) IS NULL OR units = :units) "
            "AND (cardinality(CAST(:ids AS text[])) = 0 OR indicator = ANY(CAST(:ids AS text[]))) "
            "ORDER BY indicator, units"
        ),
        {"units": units, "ids": list(indicators)},
    ).mappings()
    return [dict(r) for r in rows]


def _results(conn: Connection, run: dict[str, Any], geographic: bool) -> gpd.GeoDataFrame:
    column = "geom_etrs89" if geographic else "geom"
    rows = (
        conn.execute(
            sa.text(
                f"SELECT unit_key, unit_name, value, numerator, denominator, objects, "
                f"ST_AsBinary({column}) AS wkb FROM analysis.indicator_result "
                "WHERE run_id = :r ORDER BY unit_key"
            ),
            {"r": run["id"]},
        )
        .mappings()
        .all()
    )
    definition = catalogue.get(run["indicator"])
    data = {
        "run_id": [run["id"]] * len(rows),
        "indicator": [run["indicator"]] * len(rows),
        "name": [definition.name] * len(rows),
        "unit": [definition.unit] * len(rows),
        "units": [run["units"]] * len(rows),
        "year": [run["year"]] * len(rows),
    }
    for key in COLUMNS[6:]:
        data[key] = [r[key] for r in rows]
    geoms = shapely.from_wkb([None if r["wkb"] is None else bytes(r["wkb"]) for r in rows])
    return gpd.GeoDataFrame(data, geometry=geoms)


def export_results(
    conn: Connection,
    out: Path,
    fmt: str,
    storage_srid: int,
    *,
    indicators: tuple[str, ...] = (),
    units: str | None = None,
) -> int:
    """Write the current results to ``out``; returns the number of rows written."""
    if fmt not in FORMATS:
        raise InvalidParameter(f"format must be one of {', '.join(FORMATS)}", locator="format")
    runs = current_runs(conn, indicators, units)
    if not runs:
        raise NotFound("no indicator results to export: run 'urbangis indicators compute'")
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        return _write_csv(conn, out, runs)
    if fmt == "geojson":
        frames = [_results(conn, run, geographic=True) for run in runs]
        merged = gpd.GeoDataFrame(sa_concat(frames), geometry="geometry", crs=4258).to_crs(4326)
        pyogrio.write_dataframe(merged, out, driver="GeoJSON", layer="indicators")
        return len(merged)
    out.unlink(missing_ok=True)
    total = 0
    for run in runs:
        frame = _results(conn, run, geographic=False).set_crs(storage_srid)
        pyogrio.write_dataframe(frame, out, driver="GPKG", layer=run["layer_id"])
        total += len(frame)
    return total


def sa_concat(frames: list[gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    import pandas as pd

    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry")


def _write_csv(conn: Connection, out: Path, runs: list[dict[str, Any]]) -> int:
    count = 0
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for run in runs:
            frame = _results(conn, run, geographic=False)
            for row in frame[list(COLUMNS)].itertuples(index=False, name=None):
                writer.writerow(["" if v is None or v != v else v for v in row])
                count += 1
    return count
