"""The location check on real data in another CRS: Cambridge (MA), stored in EPSG:26986.

The City's FY2014 parcels (map-lot ids such as ``127-123`` act as cadastral numbers),
zoning districts, historic districts and the FEMA 100-year floodplain are loaded with
geopandas/pyogrio and COPY into a database of their own. What the answer must say is
computed independently with geopandas on the same files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from gis_core import migrate
from gis_core.bulk import copy_columns
from gis_core.db import create_engine
from gis_core.settings import Settings
from permits.location import LocationContext, check_location
from permits.location_request import Limits, parse_location_request
from tests.conftest import TEST_DATA_DIR, drop_database, fresh_database
from webmap.app import create_app

SRID = 26986
UAT = 9_999_901  # a stand-in code: Cambridge has no SIRUTA code
PARCELS_SINCE = "2013-07-01"
ZONING_SINCE = "2000-01-01"


def _read(folder: Path, name: str) -> gpd.GeoDataFrame:
    frame = gpd.read_file(folder / name, engine="pyogrio").to_crs(SRID)
    frame["geometry"] = shapely.make_valid(frame.geometry.values)
    return frame


@pytest.fixture(scope="module")
def cambridge(shared_data: Path) -> dict[str, gpd.GeoDataFrame]:
    folder = shared_data / "real" / "cambridge-ma"
    parcels = _read(folder, "parcels_fy2014.gpkg")
    # A few rows carry "-" or nothing as their map-lot: no number to ask for, left out.
    usable = parcels["ML"].fillna("").str.match(r"^[0-9A-Za-z][0-9A-Za-z.-]*$")
    parcels = parcels[usable].dissolve(by="ML", as_index=False)
    return {
        "parcels": parcels,
        "zoning": _read(folder, "zoning_districts.geojson"),
        "historic": _read(folder, "historic_districts.geojson"),
        "flood": _read(folder, "fema_floodplain_100yr.geojson"),
        "city": _read(folder, "neighborhoods.geojson"),
        "codes": pd.read_csv(folder / "zoning_codes_municode.csv"),
    }


def _ewkb(geoms: Any) -> list[bytes]:
    multi = [
        shapely.multipolygons(parts[shapely.get_type_id(parts) == shapely.GeometryType.POLYGON])
        for parts in (shapely.get_parts(shapely.make_valid(x)) for x in geoms)
    ]
    return list(shapely.to_wkb(shapely.set_srid(np.asarray(multi), SRID), include_srid=True))


def _load(conn: Connection, data: dict[str, Any]) -> None:
    city = shapely.union_all(data["city"].geometry.values)
    copy_columns(
        conn,
        "core.admin_unit",
        {
            "siruta": [UAT],
            "name": ["Cambridge (MA)"],
            "level": ["uat"],
            "source": ["City of Cambridge neighborhoods (PDDL)"],
            "geom": _ewkb([city]),
        },
    )
    copy_columns(
        conn,
        "core.intravilan",
        {
            "uat_siruta": [UAT],
            "name": ["the whole city"],
            "geom": _ewkb([city]),
            "valid_from": [pd.Timestamp(ZONING_SINCE, tz="UTC")],
        },
    )
    parcels = data["parcels"]
    copy_columns(
        conn,
        "cadastre.parcel",
        {
            "uat_siruta": [UAT] * len(parcels),
            "cadastral_number": list(parcels["ML"]),
            "measured_area": np.round(parcels.geometry.area.to_numpy(), 2),
            "intravilan": [True] * len(parcels),
            "geom": _ewkb(parcels.geometry.values),
            "valid_from": [pd.Timestamp(PARCELS_SINCE, tz="UTC")] * len(parcels),
        },
    )
    plan_id = conn.execute(
        sa.text(
            "INSERT INTO urbanism.plan (uat_siruta, plan_type, title, status) "
            "VALUES (:u, 'PUG', 'Cambridge Zoning Ordinance', 'approved') RETURNING id"
        ),
        {"u": UAT},
    ).scalar_one()
    for row in data["codes"].itertuples():
        conn.execute(
            sa.text(
                "INSERT INTO urbanism.regulation (plan_id, utr_code, name, rules_text) "
                "VALUES (:p, :c, :n, :d)"
            ),
            {
                "p": plan_id,
                "c": row.Zone_Type,
                "n": row.District_Name,
                "d": row.District_Description,
            },
        )
    zoning = data["zoning"]
    copy_columns(
        conn,
        "urbanism.zone",
        {
            "plan_id": [plan_id] * len(zoning),
            "utr_code": list(zoning["ZONE_TYPE"]),
            "geom": _ewkb(zoning.geometry.values),
            "valid_from": [pd.Timestamp(ZONING_SINCE, tz="UTC")] * len(zoning),
        },
    )
    conn.execute(
        sa.text(
            "UPDATE urbanism.zone z SET regulation_id = r.id FROM urbanism.regulation r "
            "WHERE r.plan_id = z.plan_id AND r.utr_code = z.utr_code"
        )
    )
    restrictions = [
        ("heritage", f"{name} Historic District", "Cambridge Historical Commission", geom)
        for name, geom in zip(data["historic"]["NAME"], data["historic"].geometry, strict=True)
    ]
    restrictions.append(
        (
            "flood",
            "FEMA 100-year floodplain",
            "FEMA FIRM 25017C",
            shapely.union_all(data["flood"].geometry.values),
        )
    )
    copy_columns(
        conn,
        "urbanism.restriction",
        {
            "uat_siruta": [UAT] * len(restrictions),
            "kind": [r[0] for r in restrictions],
            "name": [r[1] for r in restrictions],
            "legal_source": [r[2] for r in restrictions],
            "geom": _ewkb([r[3] for r in restrictions]),
            "valid_from": [pd.Timestamp(ZONING_SINCE, tz="UTC")] * len(restrictions),
        },
    )
    for table in ("cadastre.parcel", "urbanism.zone", "urbanism.restriction", "core.admin_unit"):
        conn.execute(sa.text(f"UPDATE {table} SET geom_etrs89 = ST_Transform(geom, 4258)"))
        conn.execute(sa.text(f"ANALYZE {table}"))


@pytest.fixture(scope="module")
def cambridge_settings(
    server_url: URL, cambridge: dict[str, gpd.GeoDataFrame]
) -> Iterator[Settings]:
    name = f"urbangis_test_cambridge_loc_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    settings = Settings(
        database_url=fresh_database(server_url, name).render_as_string(hide_password=False),
        data_dir=TEST_DATA_DIR,
        storage_srid=SRID,
        uat_siruta=UAT,
        uat_name="Cambridge (MA)",
    )
    engine = create_engine(settings)
    migrate.upgrade(engine, SRID)
    with engine.begin() as conn:
        _load(conn, cambridge)
    engine.dispose()
    yield settings
    drop_database(server_url, name)


@pytest.fixture(scope="module")
def engine(cambridge_settings: Settings) -> Iterator[Engine]:
    engine = create_engine(cambridge_settings)
    yield engine
    engine.dispose()


CTX = LocationContext(SRID, UAT, "Cambridge (MA)", "Information only.", map_url="/map")
LIMITS = Limits(storage_srid=SRID)


def ask(engine: Engine, body: dict[str, Any]) -> dict[str, Any]:
    with engine.connect() as conn:
        return check_location(conn, parse_location_request(body, LIMITS), CTX)


def test_parcel_in_one_district(engine: Engine, cambridge: dict[str, Any]) -> None:
    parcels, zoning = cambridge["parcels"], cambridge["zoning"]
    inside = gpd.sjoin(parcels, zoning, predicate="within")
    counts = inside.groupby("ML").size()
    ml = sorted(counts[counts == 1].index)[100]
    expected = inside.loc[inside["ML"] == ml, "ZONE_TYPE"].iloc[0]
    answer = ask(engine, {"cadastral_numbers": [ml], "as_of": "2014-06-30"})
    [parcel] = answer["parcels"]
    assert parcel["cadastral_number"] == ml
    zones = [z for z in answer["zones"] if z["applies"] and not z["marginal"]]
    assert [z["utr_code"] for z in zones] == [expected]
    codes = cambridge["codes"].set_index("Zone_Type")
    if expected in codes.index:
        assert zones[0]["name"] == codes.loc[expected, "District_Name"]
    assert answer["uat"]["name"] == "Cambridge (MA)"
    assert answer["provenance"]["storage_crs"] == "EPSG:26986"
    centroid = answer["centroid"]
    assert -71.17 < centroid["lon"] < -71.06 and 42.35 < centroid["lat"] < 42.41


def test_a_parcel_across_districts(engine: Engine, cambridge: dict[str, Any]) -> None:
    parcels, zoning = cambridge["parcels"], cambridge["zoning"]
    pieces = gpd.overlay(
        parcels.iloc[:3000],
        zoning[["ZONE_TYPE", "geometry"]],
        how="intersection",
        keep_geom_type=True,
    )
    pieces["share"] = pieces.geometry.area / pieces["ML"].map(parcels.set_index("ML").geometry.area)
    big = pieces[pieces["share"] > 0.2]
    split = big.groupby("ML").filter(lambda g: g["ZONE_TYPE"].nunique() >= 2)
    ml = sorted(split["ML"])[0]
    expected = split[split["ML"] == ml].groupby("ZONE_TYPE")["share"].sum()
    answer = ask(engine, {"cadastral_numbers": [ml]})
    got = {z["utr_code"]: z["share"] for z in answer["zones"] if z["share"] > 0.2}
    assert got.keys() == set(expected.index)
    for code, share in expected.items():
        assert got[code] == pytest.approx(share, abs=2e-3)


def test_historic_district_and_floodplain(engine: Engine, cambridge: dict[str, Any]) -> None:
    parcels = cambridge["parcels"]
    district = cambridge["historic"].iloc[0]
    within = parcels[parcels.within(district.geometry)]
    ml = sorted(within["ML"])[0]
    answer = ask(engine, {"cadastral_numbers": [ml]})
    names = {r["name"]: r for r in answer["restrictions"]}
    found = names[f"{district['NAME']} Historic District"]
    assert found["intersects"] and found["legal_source"] == "Cambridge Historical Commission"
    flood = shapely.union_all(cambridge["flood"].geometry.values)
    wet = parcels[parcels.intersects(flood)]
    wet = wet.assign(overlap=wet.geometry.intersection(flood).area).sort_values("overlap")
    row = wet.iloc[-1]
    answer = ask(engine, {"cadastral_numbers": [row["ML"]]})
    [hit] = [r for r in answer["restrictions"] if r["kind"] == "flood"]
    assert hit["area"] == pytest.approx(row["overlap"], rel=1e-3)
    dry = parcels[parcels.distance(flood) > 500].iloc[0]
    answer = ask(engine, {"cadastral_numbers": [dry["ML"]]})
    assert not [r for r in answer["restrictions"] if r["kind"] == "flood"]


def test_dates_before_the_records(engine: Engine, cambridge: dict[str, Any]) -> None:
    ml = sorted(cambridge["parcels"]["ML"])[0]
    assert ask(engine, {"cadastral_numbers": [ml], "as_of": "2013-06-30"})["parcels"] == []
    assert ask(engine, {"cadastral_numbers": [ml], "as_of": "2013-07-01"})["parcels"]


def test_the_api_in_massachusetts_coordinates(
    cambridge_settings: Settings, cambridge: dict[str, Any]
) -> None:
    parcel = cambridge["parcels"].sort_values("ML").iloc[50]
    inner = shapely.point_on_surface(parcel.geometry)
    client = create_app(cambridge_settings).test_client()
    by_lonlat = gpd.GeoSeries([inner], crs=SRID).to_crs(4326).iloc[0]
    here = client.get(f"/api/v1/parcels?lon={by_lonlat.x}&lat={by_lonlat.y}").get_json()
    assert [p["cadastral_number"] for p in here["parcels"]] == [parcel["ML"]]
    by_xy = client.get(f"/api/v1/parcels?x={inner.x}&y={inner.y}&crs=EPSG:26986").get_json()
    assert by_xy["parcels"] == here["parcels"]
    status = client.get(f"/api/v1/parcels/{parcel['ML']}")
    assert status.status_code == 200
    assert status.get_json()["parcels"][0]["cadastral_number"] == parcel["ML"]
    cluj = client.post(
        "/api/v1/location-check",
        json={"geometry": {"type": "Point", "coordinates": [23.59, 46.77]}},
    )
    assert cluj.status_code == 422 and cluj.get_json()["locator"] == "geometry"
