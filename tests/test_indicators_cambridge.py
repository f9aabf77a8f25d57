"""Zone analysis and indicators on the real Cambridge (MA) data, stored in EPSG:26986.

Parcels (FY2014), zoning districts, the FEMA 100-year floodplain and the historic
districts are written into a database of this module's own; the neighbourhoods are
imported from their GeoJSON file as spatial units. Every figure is checked against a
geopandas computation on the same files.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from gis_core.db import create_engine
from layers.analysis.basis import AsOf
from layers.analysis.zones import ZoneQuery, analyse_zones
from layers.indicators.runs import ComputeRequest, compute_indicators
from layers.indicators.units import import_unit_set
from tests.test_indicators_support import assign, database_for

SRID = 26986
CAMBRIDGE = "real/cambridge-ma"


def _read(shared: Path, name: str) -> gpd.GeoDataFrame:
    gdf = pyogrio.read_dataframe(shared / CAMBRIDGE / name)
    gdf = gdf.set_crs(4326, allow_override=True) if gdf.crs is None else gdf
    gdf = gdf.to_crs(SRID)
    gdf["geometry"] = shapely.make_valid(gdf.geometry.to_numpy())
    polygonal = shapely.get_type_id(gdf.geometry.to_numpy())
    gdf = gdf[np.isin(polygonal, (3, 6, 7))].reset_index(drop=True)
    # What the database stores: the polygon parts only, as one multipolygon.
    gdf["geometry"] = shapely.from_wkb(_multi(gdf.geometry.to_numpy()))
    return gdf


def _multi(geoms: np.ndarray) -> list[bytes]:
    parts = [
        shapely.multipolygons(
            shapely.get_parts(g)[np.isin(shapely.get_type_id(shapely.get_parts(g)), 3)]
        )
        for g in geoms
    ]
    return [bytes(w) for w in shapely.to_wkb(np.asarray(parts, dtype=object))]


@pytest.fixture(scope="module")
def cambridge(
    server_url: URL, shared_data: Path
) -> Iterator[tuple[Engine, dict[str, gpd.GeoDataFrame]]]:
    data = {
        "parcels": _read(shared_data, "parcels_fy2014.gpkg"),
        "zones": _read(shared_data, "zoning_districts.geojson"),
        "flood": _read(shared_data, "fema_floodplain_100yr.geojson"),
        "historic": _read(shared_data, "historic_districts.geojson"),
    }
    for settings in database_for(server_url, "cambridge", SRID):
        engine = create_engine(settings)
        with engine.begin() as conn:
            _load(conn, data)
        yield engine, data
        engine.dispose()


def _load(conn: sa.Connection, data: dict[str, gpd.GeoDataFrame]) -> None:
    parcels = data["parcels"]
    seen: dict[str, int] = {}
    numbers = []
    for row, value in enumerate(parcels["ML"].tolist()):
        ml = str(value).strip() if isinstance(value, str) and value.strip() else f"no-ml-{row}"
        seen[ml] = seen.get(ml, 0) + 1
        numbers.append(ml if seen[ml] == 1 else f"{ml}/{seen[ml]}")
    conn.execute(
        sa.text(
            "INSERT INTO cadastre.parcel (uat_siruta, cadastral_number, geom) "
            "SELECT 25017, n, ST_GeomFromWKB(w, :srid) FROM unnest(CAST(:n AS text[]), "
            "CAST(:w AS bytea[])) AS x(n, w)"
        ),
        {"srid": SRID, "n": numbers, "w": _multi(parcels.geometry.to_numpy())},
    )
    plan = conn.execute(
        sa.text(
            "INSERT INTO urbanism.plan (uat_siruta, plan_type, title, status, valid_from) "
            "VALUES (25017, 'PUG', 'Cambridge Zoning Ordinance', 'approved', '2000-01-01') "
            "RETURNING id"
        )
    ).scalar_one()
    zones = data["zones"]
    conn.execute(
        sa.text(
            "INSERT INTO urbanism.zone (plan_id, utr_code, geom) SELECT :p, c, "
            "ST_GeomFromWKB(w, :srid) FROM unnest(CAST(:c AS text[]), CAST(:w AS bytea[])) "
            "AS x(c, w)"
        ),
        {
            "p": plan,
            "srid": SRID,
            "c": zones["ZONE_TYPE"].astype(str).tolist(),
            "w": _multi(zones.geometry.to_numpy()),
        },
    )
    for kind, name in (("flood", "flood"), ("heritage", "historic")):
        conn.execute(
            sa.text(
                "INSERT INTO urbanism.restriction (uat_siruta, kind, name, geom) "
                "SELECT 25017, :k, :k || ' ' || ordinality, ST_GeomFromWKB(w, :srid) "
                "FROM unnest(CAST(:w AS bytea[])) WITH ORDINALITY AS x(w, ordinality)"
            ),
            {"k": kind, "srid": SRID, "w": _multi(data[name].geometry.to_numpy())},
        )


def test_zone_analysis_on_cambridge_zoning(
    cambridge: tuple[Engine, dict[str, gpd.GeoDataFrame]],
) -> None:
    engine, data = cambridge
    with engine.connect() as conn:
        document = analyse_zones(conn, ZoneQuery(AsOf.of(None)))
    parcels, zones = data["parcels"], data["zones"].reset_index().rename(columns={"index": "zid"})
    zone = assign(shapely.point_on_surface(parcels.geometry.to_numpy()), zones, "zid")
    codes = zones.set_index("zid")["ZONE_TYPE"]
    expected = codes.reindex(zone[pd.notna(zone)]).value_counts()
    got = {z["utr_code"]: z["parcel_count"] for z in document["zones"]}
    assert got == expected.to_dict()
    # The measured fact: 13 085 of 13 116 parcels lie in a zoning district.
    assert abs(sum(got.values()) - 13_085) <= 15
    assert all(z["pot_max"] is None and z["parcels_over_pot"] == 0 for z in document["zones"])


def test_indicators_on_imported_neighbourhoods(
    cambridge: tuple[Engine, dict[str, gpd.GeoDataFrame]], shared_data: Path
) -> None:
    engine, data = cambridge
    path = shared_data / CAMBRIDGE / "neighborhoods.geojson"
    request = ComputeRequest(
        indicators=("avg_parcel_size", "flood_share", "protected_share"), units="neighborhoods"
    )
    with engine.begin() as conn:
        assert (
            import_unit_set(
                conn, path, "neighborhoods", SRID, key_field="N_HOOD", name_field="NAME"
            )
            == 13
        )
        outcomes = {o.indicator: o for o in compute_indicators(conn, request, SRID)}
        grid = compute_indicators(
            conn, ComputeRequest(indicators=("avg_parcel_size",), units="square:500"), SRID
        )
    hoods = pyogrio.read_dataframe(path).to_crs(SRID)
    hoods["key"] = hoods["N_HOOD"].astype(str).str.strip()
    hoods["geometry"] = shapely.make_valid(hoods.geometry.to_numpy())
    parcels = data["parcels"]
    geoms = parcels.geometry.to_numpy()
    frame = parcels.assign(
        key=assign(shapely.point_on_surface(geoms), hoods, "key"),
        area=shapely.area(geoms),
        flood=shapely.intersects(geoms, shapely.union_all(data["flood"].geometry.to_numpy())),
        historic=shapely.intersects(geoms, shapely.union_all(data["historic"].geometry.to_numpy())),
    )
    grouped = (
        frame[frame["key"].notna()]
        .groupby("key")
        .agg(area=("area", "mean"), flood=("flood", "mean"), historic=("historic", "mean"))
    )
    assert set(grouped.index) == set(outcomes["avg_parcel_size"].values)
    for key, row in grouped.iterrows():
        assert math.isclose(outcomes["avg_parcel_size"].values[key] or 0, row["area"], rel_tol=1e-6)
        assert math.isclose(
            outcomes["flood_share"].values[key] or 0, 100 * row["flood"], abs_tol=1e-9
        )
        assert math.isclose(
            outcomes["protected_share"].values[key] or 0, 100 * row["historic"], abs_tol=1e-9
        )
    assert sum(outcomes["flood_share"].values.values()) > 0  # type: ignore[arg-type]
    assert grid[0].run_id is not None and len(grid[0].values) > 20
