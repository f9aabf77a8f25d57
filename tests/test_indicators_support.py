"""Shared fixtures of the analysis and indicator tests: a demo city in a database of its own.

The demo load replaces the municipality's data, so these modules never use the shared
test database. The independent computations here use geopandas/shapely only, reading
the same rows, so the tests fail if the SQL is wrong.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from gis_core import migrate
from gis_core.db import create_engine
from gis_core.settings import Settings
from importers.demo.generate import DemoParameters
from importers.demo.load import load_demo
from tests.conftest import drop_database, fresh_database, settings_for

SMALL = DemoParameters(parcels=2000, seed=2)


def database_for(server_url: URL, label: str, srid: int = 3844) -> Iterator[Settings]:
    name = f"urbangis_test_{label}_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
    settings = settings_for(fresh_database(server_url, name), srid)
    engine = create_engine(settings)
    migrate.upgrade(engine, srid)
    engine.dispose()
    yield settings
    drop_database(server_url, name)


def demo_engine(settings: Settings) -> Iterator[Engine]:
    engine = create_engine(settings)
    load_demo(engine, SMALL)
    yield engine
    engine.dispose()


def read_gdf(conn: Connection, sql: str, srid: int = 3844, **params: object) -> gpd.GeoDataFrame:
    """Rows with a ``wkb`` column as a GeoDataFrame (the independent side of a check)."""
    frame = pd.DataFrame(conn.execute(sa.text(sql), params).mappings().all())
    geoms: object = shapely.from_wkb([bytes(w) for w in frame.pop("wkb")]) if len(frame) else []
    return gpd.GeoDataFrame(frame, geometry=geoms, crs=srid)


def current_parcels(conn: Connection) -> gpd.GeoDataFrame:
    return read_gdf(
        conn,
        "SELECT id, cadastral_number, ST_AsBinary(geom) AS wkb FROM cadastre.parcel "
        "WHERE valid_to IS NULL AND geom IS NOT NULL ORDER BY id",
    )


def current_buildings(conn: Connection) -> gpd.GeoDataFrame:
    return read_gdf(
        conn,
        "SELECT id, cadastral_number, footprint_area::float8 AS fp, floor_area::float8 AS gfa, "
        "levels, ST_AsBinary(geom) AS wkb FROM cadastre.building WHERE valid_to IS NULL "
        "ORDER BY id",
    )


def assign(points: np.ndarray, units: gpd.GeoDataFrame, key: str) -> np.ndarray:
    """The unit of each point (smallest key on shared edges), by geopandas' sjoin."""
    pts = gpd.GeoDataFrame({"i": np.arange(len(points))}, geometry=points, crs=units.crs)
    joined = gpd.sjoin(pts, units[[key, "geometry"]], predicate="intersects", how="left")
    joined = joined.sort_values(["i", key]).drop_duplicates("i")
    return joined.sort_values("i")[key].to_numpy()


@pytest.fixture(scope="module")
def analysis_settings(server_url: URL) -> Iterator[Settings]:
    yield from database_for(server_url, "analysis")


@pytest.fixture(scope="module")
def analysis_engine(analysis_settings: Settings) -> Iterator[Engine]:
    yield from demo_engine(analysis_settings)


def cli_env(settings: Settings) -> dict[str, str | None]:
    """Environment for ``urbangis`` commands against the test database."""
    assert settings.database_url is not None
    return {
        "URBANGIS_DATABASE_URL": settings.database_url.get_secret_value(),
        "URBANGIS_STORAGE_SRID": str(settings.storage_srid),
        "URBANGIS_CONFIG": None,
    }
