"""TransDatRO against ANCPI's official control points, and the transform API around it.

No database: these tests only need the grids shipped in the package and the control
points published with TransDatRO (``shared/data/transdatro/control_points.csv``).
"""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import shapely
from pyproj import Geod, Transformer

from gis_core.crs import (
    ellipsoidal_to_normal_height,
    etrs89_to_stereo70,
    normal_to_ellipsoidal_height,
    parse_crs,
    stereo70_to_etrs89,
    transdatro,
    transform_coords,
    transform_geometries,
    transform_geometry,
    transform_points,
)
from gis_core.crs.grids import parse_grid
from gis_core.errors import ConfigurationError, InvalidParameter, OutsideGridError

CONTROL_POINTS = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "transdatro" / "control_points.csv"
)
ARC_SECOND_TOLERANCE_DEG = 0.00003 / 3600.0
GRID_TOLERANCE_M = 0.003
HEIGHT_TOLERANCE_M = 0.003
ROUND_TRIP_TOLERANCE_M = 0.0001


@dataclass(frozen=True)
class ControlPoints:
    ids: list[str]
    east: np.ndarray
    north: np.ndarray
    normal_height: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    ellipsoidal_height: np.ndarray


@pytest.fixture(scope="module")
def control() -> ControlPoints:
    with CONTROL_POINTS.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))

    def column(name: str) -> np.ndarray:
        return np.array([float(row[name]) for row in rows])

    return ControlPoints(
        ids=[row["id"] for row in rows],
        east=column("stereo70_east_m"),
        north=column("stereo70_north_m"),
        normal_height=column("normal_height_m"),
        lon=np.degrees(column("etrs89_lon_rad")),
        lat=np.degrees(column("etrs89_lat_rad")),
        ellipsoidal_height=column("etrs89_ellipsoidal_height_m"),
    )


def random_covered_points(count: int, seed: int = 70) -> tuple[np.ndarray, np.ndarray]:
    """Uniform Stereo 70 points inside the grid's valid area (roughly Romania)."""
    rng = np.random.default_rng(seed)
    east = rng.uniform(110_000, 890_000, count * 3)
    north = rng.uniform(214_000, 785_000, count * 3)
    keep = transdatro.inside_grid(east, north)
    assert keep.sum() >= count
    return east[keep][:count], north[keep][:count]


# --- the official control points ----------------------------------------------------


def test_control_points_stereo70_to_etrs89(control: ControlPoints) -> None:
    lon, lat = stereo70_to_etrs89(control.east, control.north)
    assert np.abs(lat - control.lat).max() < ARC_SECOND_TOLERANCE_DEG
    assert np.abs(lon - control.lon).max() < ARC_SECOND_TOLERANCE_DEG


def test_control_points_etrs89_to_stereo70(control: ControlPoints) -> None:
    east, north = etrs89_to_stereo70(control.lon, control.lat)
    assert np.abs(east - control.east).max() < GRID_TOLERANCE_M
    assert np.abs(north - control.north).max() < GRID_TOLERANCE_M


def test_control_point_heights_both_ways(control: ControlPoints) -> None:
    ellipsoidal = normal_to_ellipsoidal_height(control.lon, control.lat, control.normal_height)
    normal = ellipsoidal_to_normal_height(control.lon, control.lat, control.ellipsoidal_height)
    assert np.abs(ellipsoidal - control.ellipsoidal_height).max() < HEIGHT_TOLERANCE_M
    assert np.abs(normal - control.normal_height).max() < HEIGHT_TOLERANCE_M


def test_control_points_one_at_a_time_match_the_batch(control: ControlPoints) -> None:
    """Scalars go through the same vectorised code and keep their 0-d shape."""
    lon, lat = stereo70_to_etrs89(float(control.east[0]), float(control.north[0]))
    assert lon.shape == () and lat.shape == ()
    assert abs(float(lat) - control.lat[0]) < ARC_SECOND_TOLERANCE_DEG


def test_proj_default_path_misses_the_official_results(control: ControlPoints) -> None:
    """Why TransDatRO is implemented here: PROJ's 3844→4258 is a 3 m Helmert."""
    proj = Transformer.from_crs(3844, 4258, always_xy=True)
    lon, lat = proj.transform(control.east, control.north)
    _az1, _az2, distance = Geod(ellps="GRS80").inv(lon, lat, control.lon, control.lat)
    assert np.max(distance) > 0.1
    ours_lon, ours_lat = stereo70_to_etrs89(control.east, control.north)
    _az1, _az2, ours = Geod(ellps="GRS80").inv(ours_lon, ours_lat, control.lon, control.lat)
    assert np.max(ours) < 0.002


# --- round trips --------------------------------------------------------------------


def test_round_trip_random_points_inside_romania() -> None:
    east, north = random_covered_points(20_000)
    lon, lat = stereo70_to_etrs89(east, north)
    back_east, back_north = etrs89_to_stereo70(lon, lat)
    assert np.abs(back_east - east).max() < ROUND_TRIP_TOLERANCE_M
    assert np.abs(back_north - north).max() < ROUND_TRIP_TOLERANCE_M
    again_lon, again_lat = stereo70_to_etrs89(back_east, back_north)
    # 0.1 mm is about 1e-9 degrees
    assert np.abs(again_lon - lon).max() < 1e-9
    assert np.abs(again_lat - lat).max() < 1e-9


def test_inverse_works_up_to_the_edge_of_the_grid() -> None:
    """Points a hair inside the covered cells: the un-corrected point may fall outside.

    The inverse must still find them (the fixed point starts from a neighbouring patch),
    rather than refuse points the forward direction accepts.
    """
    patches = transdatro.planimetric_patches()
    valid = patches.valid.reshape(patches.cell_rows, patches.cell_columns)
    rows, columns = np.nonzero(valid)
    east_parts, north_parts = [], []
    for drow, dcol in ((0, -1), (0, 1), (-1, 0), (1, 0)):
        r, c = rows + drow, columns + dcol
        inside = (r >= 0) & (r < valid.shape[0]) & (c >= 0) & (c < valid.shape[1])
        border = np.zeros_like(inside)
        border[inside] = ~valid[r[inside], c[inside]]
        border |= ~inside
        # 1 cm from the edge shared with the uncovered neighbour, mid-cell along it
        u = {-1: 0.000001, 0: 0.5, 1: 0.999999}[dcol]
        v = {-1: 0.000001, 0: 0.5, 1: 0.999999}[drow]
        east_parts.append(patches.e_min + (columns[border] + u) * patches.e_step)
        north_parts.append(patches.n_min + (rows[border] + v) * patches.n_step)
    east, north = np.concatenate(east_parts), np.concatenate(north_parts)
    assert east.size > 100
    lon, lat = stereo70_to_etrs89(east, north)
    back_east, back_north = etrs89_to_stereo70(lon, lat)
    assert np.abs(back_east - east).max() < ROUND_TRIP_TOLERANCE_M
    assert np.abs(back_north - north).max() < ROUND_TRIP_TOLERANCE_M


def test_stereographic_inverse_matches_proj_over_the_whole_grid() -> None:
    """The numpy inverse stereographic gives PROJ's ``sterea`` results (1e-13° = 1e-8 m),
    over and well beyond the grid, at the origin too (TransDatRO's step 3)."""
    rng = np.random.default_rng(70)
    east = np.r_[rng.uniform(-200_000.0, 1_200_000.0, 200_000), 500_000.0]
    north = np.r_[rng.uniform(-100_000.0, 1_100_000.0, 200_000), 500_000.0]
    proj = Transformer.from_crs(
        transdatro.GEOGRAPHIC_GRS80, transdatro.STEREO70_ON_GRS80, always_xy=True
    )
    expected_lon, expected_lat = proj.transform(east, north, direction="INVERSE")
    lon, lat = transdatro.stereographic_inverse(east, north)
    assert np.abs(lon - expected_lon).max() < 1e-13
    assert np.abs(lat - expected_lat).max() < 1e-13
    assert (lon[-1], lat[-1]) == pytest.approx((25.0, 46.0), abs=1e-13)


def test_web_mercator_round_trip() -> None:
    east, north = random_covered_points(5_000, seed=3857)
    x, y = transform_coords(3844, 3857, east, north)
    back_east, back_north = transform_coords(3857, 3844, x, y)
    assert np.abs(back_east - east).max() < ROUND_TRIP_TOLERANCE_M
    assert np.abs(back_north - north).max() < ROUND_TRIP_TOLERANCE_M


def test_web_mercator_is_the_spherical_mercator_of_etrs89(control: ControlPoints) -> None:
    x, y = transform_coords(3844, 3857, control.east, control.north)
    radius = 6378137.0
    assert np.allclose(x, radius * np.radians(control.lon), atol=0.002)
    expected_y = radius * np.log(np.tan(np.pi / 4 + np.radians(control.lat) / 2))
    assert np.allclose(y, expected_y, atol=0.003)


# --- transform_coords ---------------------------------------------------------------


def test_transform_coords_uses_transdatro_for_4258_and_4326(control: ControlPoints) -> None:
    lon, lat = transform_coords(3844, 4258, control.east, control.north)
    web_lon, web_lat = transform_coords(3844, 4326, control.east, control.north)
    assert np.abs(lat - control.lat).max() < ARC_SECOND_TOLERANCE_DEG
    assert np.array_equal(lon, web_lon) and np.array_equal(lat, web_lat)
    east, north = transform_coords(4326, 3844, control.lon, control.lat)
    assert np.abs(east - control.east).max() < GRID_TOLERANCE_M
    assert np.abs(north - control.north).max() < GRID_TOLERANCE_M


def test_other_crs_is_reached_from_etrs89_with_proj(control: ControlPoints) -> None:
    utm_x, utm_y = transform_coords(3844, 32635, control.east, control.north)
    proj = Transformer.from_crs(4258, 32635, always_xy=True)
    expected_x, expected_y = proj.transform(control.lon, control.lat)
    assert np.abs(utm_x - expected_x).max() < 0.003
    assert np.abs(utm_y - expected_y).max() < 0.003
    east, north = transform_coords(32635, 3844, utm_x, utm_y)
    assert np.abs(east - control.east).max() < 0.003
    assert np.abs(north - control.north).max() < 0.003


def test_pairs_without_stereo70_are_plain_proj() -> None:
    x, y = transform_coords(4326, 3857, [25.0], [46.0])
    expected = Transformer.from_crs(4326, 3857, always_xy=True).transform(25.0, 46.0)
    assert (x[0], y[0]) == pytest.approx(expected, abs=1e-6)


def test_same_crs_is_an_identity_copy() -> None:
    source = np.array([500_000.0, 600_000.0])
    x, y = transform_coords(3844, 3844, source, source)
    assert np.array_equal(x, source) and np.array_equal(y, source)
    x[0] = 0
    assert source[0] == 500_000.0


def test_shape_is_kept() -> None:
    east = np.full((2, 3), 500_000.0)
    north = np.full((2, 3), 500_000.0)
    lon, lat = transform_coords(3844, 4258, east, north)
    assert lon.shape == (2, 3) and lat.shape == (2, 3)


def test_parse_crs_spellings() -> None:
    assert parse_crs("EPSG:3844") == 3844
    assert parse_crs("epsg:3844") == 3844
    assert parse_crs("4258") == 4258
    assert parse_crs("urn:ogc:def:crs:EPSG::3857") == 3857
    assert parse_crs("http://www.opengis.net/def/crs/EPSG/0/4258") == 4258
    assert parse_crs("CRS84") == 4326
    assert parse_crs("urn:ogc:def:crs:OGC:1.3:CRS84") == 4326
    with pytest.raises(InvalidParameter, match="unrecognised CRS"):
        parse_crs("Stereo70")


# --- errors -------------------------------------------------------------------------


def test_point_outside_the_grid_is_refused_clearly() -> None:
    east = [310_723.518, 50_000.0, 120_000.0]
    north = [693_771.731, 50_000.0, 780_000.0]  # beyond the grid; a 999 corner
    with pytest.raises(OutsideGridError) as caught:
        stereo70_to_etrs89(east, north)
    message = str(caught.value)
    assert "point 1 (east=50000, north=50000) lies outside the TransDatRO grid" in message
    assert "2 of 3 points" in message


def test_point_next_to_a_no_data_node_is_refused() -> None:
    with pytest.raises(OutsideGridError, match=r"point 0 .*outside the TransDatRO grid"):
        stereo70_to_etrs89([120_000.0], [780_000.0])


def test_outside_the_grid_in_the_inverse_and_in_transform_coords() -> None:
    with pytest.raises(OutsideGridError, match=r"point 0 \(lon=10, lat=50\)"):
        etrs89_to_stereo70([10.0], [50.0])
    with pytest.raises(OutsideGridError, match=r"point 1 \(x=2, y=48\)"):
        transform_coords(4326, 3844, [25.0, 2.0], [46.0, 48.0])
    with pytest.raises(OutsideGridError, match="quasigeoid"):
        normal_to_ellipsoidal_height([10.0], [50.0], [100.0])


def test_transform_points_reports_instead_of_raising() -> None:
    result = transform_points(3844, 4258, [500_000.0, 0.0], [500_000.0, 0.0])
    assert result.failed.tolist() == [False, True]
    assert np.isnan(result.x[1]) and np.isfinite(result.x[0])
    assert result.failure is not None and result.failure.index == 1
    assert result.failure.error is OutsideGridError


@pytest.mark.parametrize(
    "call",
    [
        lambda: stereo70_to_etrs89([500_000.0, math.nan], [500_000.0, 500_000.0]),
        lambda: etrs89_to_stereo70([25.0], [math.inf]),
        lambda: transform_coords(3844, 3857, [math.nan], [1.0]),
        lambda: normal_to_ellipsoidal_height([25.0], [46.0], [math.nan]),
    ],
)
def test_non_finite_input_is_an_invalid_parameter(call: object) -> None:
    assert callable(call)
    with pytest.raises(InvalidParameter, match="not a finite number") as caught:
        call()
    assert not isinstance(caught.value, OutsideGridError)


def test_non_numeric_input_and_unknown_crs() -> None:
    with pytest.raises(InvalidParameter, match="numbers"):
        stereo70_to_etrs89(["a"], [1.0])
    with pytest.raises(InvalidParameter, match="EPSG:999999"):
        transform_coords(3844, 999999, [500_000.0], [500_000.0])


def test_corrupt_grid_file_is_a_configuration_error() -> None:
    header = np.array([0.0, 10.0, 0.0, 10.0, 1.0, 1.0], dtype="<f8").tobytes()
    with pytest.raises(ConfigurationError, match="holds 3 values"):
        parse_grid("broken.GRD", header + np.zeros(3, dtype="<f8").tobytes(), components=2)


def test_importing_loads_no_grid() -> None:
    code = (
        "import gis_core.crs, gis_core.crs.grids as g, gis_core.crs.transdatro as t\n"
        "assert g.planimetric_grid.cache_info().currsize == 0\n"
        "assert t._stereographic_grs80.cache_info().currsize == 0\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- geometries ---------------------------------------------------------------------


def _squares(count: int) -> np.ndarray:
    east, north = random_covered_points(count, seed=31)
    east, north = east - 600.0, north - 600.0  # keep the whole square inside
    keep = transdatro.inside_grid(east, north)
    return shapely.box(east[keep], north[keep], east[keep] + 500.0, north[keep] + 300.0)


def test_transform_geometries_round_trip_keeps_area_and_topology() -> None:
    squares = _squares(500)
    holes = shapely.buffer(shapely.centroid(squares), 50.0)
    polygons = shapely.difference(squares, holes)
    there = transform_geometries(polygons, 3844, 4258)
    back = transform_geometries(there, 4258, 3844)
    assert shapely.is_valid(back).all()
    assert shapely.get_num_interior_rings(back).tolist() == [1] * len(polygons)
    relative = np.abs(shapely.area(back) - shapely.area(polygons)) / shapely.area(polygons)
    assert relative.max() < 1e-9
    assert shapely.equals_exact(back, polygons, tolerance=1e-4).all()


def test_transform_geometries_keeps_z_and_none() -> None:
    polygon_z = shapely.Polygon(
        [(500_000, 500_000, 10), (500_100, 500_000, 11), (500_100, 500_100, 12)]
    )
    point_2d = shapely.Point(450_000, 450_000)
    geoms = np.array([polygon_z, point_2d, None], dtype=object)
    out = transform_geometries(geoms, 3844, 4258)
    assert shapely.has_z(out[0]) and not shapely.has_z(out[1]) and out[2] is None
    z = shapely.get_coordinates(out[0], include_z=True)[:, 2]
    assert z.tolist() == [10.0, 11.0, 12.0, 10.0]
    lon, lat = stereo70_to_etrs89(450_000.0, 450_000.0)
    assert (out[1].x, out[1].y) == pytest.approx((float(lon), float(lat)), abs=1e-12)
    single = transform_geometry(point_2d, 3844, 3857)
    x, y = transform_coords(3844, 3857, 450_000.0, 450_000.0)
    got = (shapely.get_x(single), shapely.get_y(single))
    assert got == pytest.approx((float(x), float(y)), abs=1e-6)
