"""``urbangis import raster``: a GeoTIFF becomes a Cloud-Optimized GeoTIFF in the data
folder (tiled, compressed, with overviews, in the storage CRS) registered in
``core.raster_layer`` for the map services.

The COG is written to a temporary name and moved into place only when the database
row is written in the same transaction; a failure removes it. Re-importing the same
file (same SHA-256) changes nothing; a different file for the same layer closes the
previous version's row (its file is kept, so "as of" maps still work).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import rasterio
import sqlalchemy as sa
from rasterio.errors import RasterioIOError
from rasterio.shutil import copy as raster_copy
from rasterio.vrt import WarpedVRT
from sqlalchemy.engine import Connection, Engine

from gis_core.errors import InvalidInput, InvalidParameter
from gis_core.settings import Settings
from importers.progress import Progress
from importers.report import ImportReport
from importers.runner import RunRequest, run_import
from importers.sourcecrs import decide, municipality
from importers.sourcecrs import epsg_of as crs_epsg

_LAYER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
COG_OPTIONS = {
    "driver": "COG",
    "COMPRESS": "DEFLATE",
    "BLOCKSIZE": "512",
    "OVERVIEWS": "IGNORE_EXISTING",
    "OVERVIEW_RESAMPLING": "AVERAGE",
    "BIGTIFF": "IF_SAFER",
}


@dataclass(frozen=True)
class RasterOptions:
    layer: str
    title: str | None = None
    source_crs: int | None = None
    dry_run: bool = False

    def __post_init__(self) -> None:
        if not _LAYER_NAME.match(self.layer):
            raise InvalidParameter(
                f"--layer {self.layer!r}: use lower-case letters, digits and _ (e.g. orthophoto)",
                locator="layer",
            )


def raster_folder(settings: Settings) -> Path:
    return settings.data_dir / "rasters"


def import_raster(
    engine: Engine,
    settings: Settings,
    path: Path,
    options: RasterOptions,
    progress: Progress | None = None,
) -> ImportReport:
    progress = progress or Progress(enabled=False)
    request = RunRequest(
        kind="raster",
        sources=[str(path)],
        parameters={
            "layer": options.layer,
            "title": options.title,
            "source_crs": options.source_crs,
        },
        dry_run=options.dry_run,
    )
    written: list[Path] = []

    def body(conn: Connection, report: ImportReport, run_id: int | None) -> None:
        _import(conn, settings, path, options, report, run_id, progress, written)

    try:
        report = run_import(engine, request, body)
    except BaseException:
        for file in written:
            file.unlink(missing_ok=True)
        raise
    if options.dry_run:
        for file in written:
            file.unlink(missing_ok=True)
    return report


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _import(
    conn: Connection,
    settings: Settings,
    path: Path,
    options: RasterOptions,
    report: ImportReport,
    run_id: int | None,
    progress: Progress,
    written: list[Path],
) -> None:
    report.counts["read"] = 1
    checksum = _sha256(path)
    current = conn.execute(
        sa.text(
            "SELECT id, source_sha256 FROM core.raster_layer "
            "WHERE name = :name AND valid_to IS NULL"
        ),
        {"name": options.layer},
    ).first()
    if current is not None and current[1] == checksum:
        report.counts["unchanged"] = 1
        report.note(f"layer {options.layer} already holds this file: nothing to do")
        return
    try:
        source = rasterio.open(path)
    except RasterioIOError as exc:
        raise InvalidInput(f"{path}: not a raster GDAL can read: {exc}") from None
    with source:
        epsg = _source_epsg(conn, settings, path, source, options, report)
        folder = raster_folder(settings)
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{options.layer}_{checksum[:12]}.tif"
        partial = final.with_suffix(".partial.tif")
        written.append(partial)
        progress.phase(f"writing Cloud-Optimized GeoTIFF {final.name}")
        if epsg == settings.storage_srid:
            raster_copy(source, str(partial), **COG_OPTIONS)
        else:
            with WarpedVRT(
                source, crs=f"EPSG:{settings.storage_srid}", src_crs=f"EPSG:{epsg}"
            ) as vrt:
                raster_copy(vrt, str(partial), **COG_OPTIONS)
    meta = _describe(partial)
    partial.replace(final)
    written.append(final)
    if current is not None:
        conn.execute(
            sa.text("UPDATE core.raster_layer SET valid_to = now() WHERE id = :id"),
            {"id": current[0]},
        )
        report.counts["changed"] = 1
    else:
        report.counts["inserted"] = 1
    conn.execute(
        sa.text(
            "INSERT INTO core.raster_layer (name, title, path, source, source_sha256, srid, "
            "width, height, band_count, data_type, resolution, nodata, overviews, metadata, "
            "extent, import_run_id) VALUES (:name, :title, :path, :source, :sha, :srid, :width, "
            ":height, :bands, :dtype, :resolution, :nodata, :overviews, CAST(:metadata AS jsonb), "
            "ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, :srid), :run)"
        ),
        {
            "name": options.layer,
            "title": options.title or options.layer,
            "path": str(final.resolve()),
            "source": str(path),
            "sha": checksum,
            "srid": settings.storage_srid,
            "run": run_id,
            "metadata": orjson.dumps({"source_crs": f"EPSG:{epsg}"}).decode(),
            **meta,
        },
    )
    report.details["raster"] = {"path": str(final), **dict(meta)}
    report.note(
        f"{final.name}: {meta['width']}×{meta['height']} px, {meta['bands']} bands, "
        f"overviews {meta['overviews']}"
    )


def _source_epsg(
    conn: Connection,
    settings: Settings,
    path: Path,
    source: Any,
    options: RasterOptions,
    report: ImportReport,
) -> int:
    """The raster's CRS, checked against the municipality like a vector source's."""
    import numpy as np

    declared = crs_epsg(source.crs.to_wkt()) if source.crs else None
    left, bottom, right, top = source.bounds
    corners = np.array([[left, bottom], [right, top], [left, top], [right, bottom]])
    place = municipality(conn, settings.storage_srid, settings.uat_siruta)
    decision = decide(
        str(path),
        corners,
        place,
        declared=declared,
        declared_text=source.crs.to_string() if source.crs else None,
        override=options.source_crs,
    )
    if decision.swap_axes:
        raise InvalidInput(f"{path}: its georeferencing has the axes swapped; fix the .tfw/.prj")
    report.notes.extend(decision.notes)
    return decision.epsg


def _describe(cog: Path) -> dict[str, Any]:
    with rasterio.open(cog) as dataset:
        bounds = dataset.bounds
        return {
            "width": dataset.width,
            "height": dataset.height,
            "bands": dataset.count,
            "dtype": str(dataset.dtypes[0]),
            "resolution": [float(dataset.res[0]), float(dataset.res[1])],
            "nodata": dataset.nodata,
            "overviews": [int(v) for v in dataset.overviews(1)],
            "minx": bounds.left,
            "miny": bounds.bottom,
            "maxx": bounds.right,
            "maxy": bounds.top,
        }


def remove_unregistered(settings: Settings, conn: Connection) -> list[Path]:
    """Files in the raster folder no row points to (left by a killed import)."""
    folder = raster_folder(settings)
    if not folder.is_dir():
        return []
    known = set(conn.execute(sa.text("SELECT path FROM core.raster_layer")).scalars())
    removed = []
    for file in folder.glob("*.tif"):
        if str(file.resolve()) not in known:
            file.unlink()
            removed.append(file)
    return removed
