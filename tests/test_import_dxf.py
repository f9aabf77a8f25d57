"""DXF drawings as surveyors deliver them: parcels drawn as closed polylines (with or
without AutoCAD's "closed" flag) or as hatches, the cadastral number in the layer name,
no CRS in the file. Imported with the acceptance command."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
import shapely
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from gis_core.settings import Settings
from tests.conftest import parcel_free_engine
from webmap.cli import main

X, Y = 390_000.0, 585_000.0


@pytest.fixture(scope="module")
def stereo(database_factory: Callable[..., Settings]) -> Settings:
    return database_factory("import_dxf", 3844, uat_siruta=999_996)


@pytest.fixture
def engine(stereo: Settings) -> Iterator[Engine]:
    with parcel_free_engine(stereo) as engine:
        yield engine


def _drawing(path: Path, as_lines: bool) -> Path:
    """Three parcels (P100, P101 side by side, P102 above both; as a hatch, P102 has a
    2 × 2 m hole for a well) and an open line P103 that bounds nothing."""
    hole = [shapely.box(X + 10, Y + 30, X + 12, Y + 32).exterior] if not as_lines else []
    squares = [
        shapely.box(X, Y, X + 20, Y + 20),
        shapely.box(X + 20, Y, X + 40, Y + 20),
        shapely.Polygon(shapely.box(X, Y + 20, X + 40, Y + 40).exterior, hole),
    ]
    geoms: list[shapely.Geometry] = [g.exterior if as_lines else g for g in squares]
    geoms.append(shapely.LineString([(X, Y - 5), (X + 40, Y - 5)]))
    frame = gpd.GeoDataFrame({"Layer": ["P100", "P101", "P102", "P103"]}, geometry=geoms)
    pyogrio.write_dataframe(frame, path, driver="DXF")  # a DXF holds no CRS
    return path


def _import(stereo: Settings, path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        main,
        [
            "import",
            "cadastre",
            str(path),
            "--map",
            "cadastral_number=Layer",
            "--source-crs",
            "EPSG:3844",
        ],
        obj={"settings": stereo},
        catch_exceptions=False,
    )
    return result.exit_code, result.output


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
@pytest.mark.parametrize("as_lines", [True, False], ids=["closed-polylines", "hatches"])
def test_a_surveyors_dxf_is_imported_by_layer_name(
    stereo: Settings, engine: Engine, tmp_path: Path, as_lines: bool
) -> None:
    code, output = _import(stereo, _drawing(tmp_path / "survey.dxf", as_lines))
    assert code == 0, output
    assert "P103" in output and "not_polygonal" in output  # the open line, named
    if as_lines:
        assert "closed lines read as areas" in output
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT cadastral_number, round(ST_Area(geom)::numeric, 2) "
                "FROM cadastre.parcel WHERE valid_to IS NULL"
            )
        ).all()
        twins = conn.execute(
            sa.text("SELECT count(*) FROM cadastre.parcel WHERE geom_etrs89 IS NOT NULL")
        ).scalar_one()
    assert {str(r[0]): float(r[1]) for r in rows} == {
        "P100": 400.0,
        "P101": 400.0,
        "P102": 800.0 if as_lines else 796.0,
    }
    assert twins == 3
    again_code, again = _import(stereo, _drawing(tmp_path / "again.dxf", as_lines))
    assert again_code == 0, again
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM cadastre.parcel")).scalar_one() == 3


def test_rings_drawn_as_lines_bound_areas_with_holes() -> None:
    """A closed line becomes its area; rings inside rings of one feature are holes; an
    open or too short line is left for validation to reject."""
    import numpy as np

    from importers.geometry import close_lines

    outer = shapely.box(0, 0, 10, 10).exterior
    inner = shapely.box(2, 2, 4, 4).exterior
    geoms = np.array(
        [
            shapely.LineString(outer.coords),
            shapely.MultiLineString([outer.coords, inner.coords]),
            shapely.LineString([(0, 0), (5, 0)]),
            shapely.LineString([(0, 0), (5, 0), (0, 0)]),
            shapely.box(0, 0, 1, 1),
            None,
        ],
        dtype=object,
    )
    areas, changed = close_lines(geoms)
    assert changed.tolist() == [True, True, False, False, False, False]
    assert shapely.area(areas[:2]).tolist() == [100.0, 96.0]
    assert areas[2].geom_type == "LineString" and areas[4] is geoms[4]
