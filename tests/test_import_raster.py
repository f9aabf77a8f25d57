"""Raster import: a GeoTIFF becomes a registered Cloud-Optimized GeoTIFF with overviews."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
import sqlalchemy as sa
from rasterio.transform import from_origin
from sqlalchemy.engine import Engine

from gis_core.db import create_engine
from gis_core.settings import Settings
from importers.raster import RasterOptions, import_raster
from importers.runner import ImportFailed


@pytest.fixture(scope="module")
def raster_db(
    database_factory: Callable[..., Settings], tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    settings = database_factory("import_raster", 3844, uat_siruta=999_997)
    return settings.model_copy(update={"data_dir": tmp_path_factory.mktemp("data")})


@pytest.fixture(scope="module")
def engine(raster_db: Settings) -> Iterator[Engine]:
    engine = create_engine(raster_db)
    yield engine
    engine.dispose()


def orthophoto(path: Path, *, epsg: int = 3844, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 255, size=(3, 1024, 1024), dtype=np.uint8)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=1024,
        height=1024,
        count=3,
        dtype="uint8",
        crs=f"EPSG:{epsg}",
        transform=from_origin(390_000, 586_000, 0.5, 0.5),
    ) as dataset:
        dataset.write(data)
    return path


def test_geotiff_becomes_a_registered_cog(
    raster_db: Settings, engine: Engine, tmp_path: Path
) -> None:
    source = orthophoto(tmp_path / "orto.tif")
    report = import_raster(engine, raster_db, source, RasterOptions(layer="orthophoto"))
    assert report.counts["inserted"] == 1
    with engine.connect() as conn:
        path, overviews, width, extent = conn.execute(
            sa.text(
                "SELECT path, overviews, width, ST_AsText(extent) FROM core.raster_layer "
                "WHERE name = 'orthophoto' AND valid_to IS NULL"
            )
        ).one()
    cog = Path(path)
    assert cog.parent == raster_db.data_dir / "rasters" and cog.exists()
    with rasterio.open(cog) as dataset:
        assert dataset.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert dataset.overviews(1) == overviews and len(overviews) >= 1
        assert dataset.profile["tiled"] and width == 1024
    assert extent.startswith("POLYGON((390000 585488")
    again = import_raster(engine, raster_db, source, RasterOptions(layer="orthophoto"))
    assert again.counts["unchanged"] == 1 and again.nothing_changed
    newer = import_raster(
        engine,
        raster_db,
        orthophoto(tmp_path / "orto2.tif", seed=2),
        RasterOptions(layer="orthophoto"),
    )
    assert newer.counts["changed"] == 1
    with engine.connect() as conn:
        versions = conn.execute(
            sa.text(
                "SELECT count(*), count(*) FILTER (WHERE valid_to IS NULL) FROM core.raster_layer"
            )
        ).one()
    assert tuple(versions) == (2, 1)


def test_raster_in_the_wrong_place_is_refused(
    raster_db: Settings, engine: Engine, tmp_path: Path
) -> None:
    source = orthophoto(tmp_path / "elsewhere.tif", epsg=26986)  # Massachusetts metres
    with pytest.raises(ImportFailed, match="outside"):
        import_raster(engine, raster_db, source, RasterOptions(layer="wrong"))
    assert not list((raster_db.data_dir / "rasters").glob("wrong_*"))
