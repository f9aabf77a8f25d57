"""``urbangis crs``: the control points through the command line, both directions."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from webmap.cli import main

CONTROL_POINTS = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "transdatro" / "control_points.csv"
)
ARC_SECOND_TOLERANCE_DEG = 0.00003 / 3600.0
TOLERANCE_M = 0.003


def control_rows() -> list[dict[str, str]]:
    with CONTROL_POINTS.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def run(args: list[str], stdin: str) -> Result:
    return CliRunner().invoke(main, ["crs", *args], input=stdin)


def output_values(result: Result) -> list[list[float]]:
    assert result.exit_code == 0, result.output
    return [[float(v) for v in line.split()] for line in result.stdout.splitlines()]


def degrees(row: dict[str, str], name: str) -> float:
    return math.degrees(float(row[name]))


def test_stereo70_to_etrs89_control_points() -> None:
    rows = control_rows()
    # the CSV gives north, east; the command reads "easting northing"
    stdin = "".join(f"{r['stereo70_east_m']} {r['stereo70_north_m']}\n" for r in rows)
    result = run(["transform", "--from", "EPSG:3844", "--to", "EPSG:4258"], stdin)
    values = output_values(result)
    assert len(values) == len(rows)
    for row, (lon, lat) in zip(rows, values, strict=True):
        assert abs(lon - degrees(row, "etrs89_lon_rad")) < ARC_SECOND_TOLERANCE_DEG, row["id"]
        assert abs(lat - degrees(row, "etrs89_lat_rad")) < ARC_SECOND_TOLERANCE_DEG, row["id"]


def test_etrs89_to_stereo70_control_points() -> None:
    rows = control_rows()
    stdin = "".join(
        f"{degrees(r, 'etrs89_lon_rad')!r} {degrees(r, 'etrs89_lat_rad')!r}\n" for r in rows
    )
    result = run(["transform", "--from", "EPSG:4258", "--to", "EPSG:3844"], stdin)
    values = output_values(result)
    for row, (east, north) in zip(rows, values, strict=True):
        assert abs(east - float(row["stereo70_east_m"])) < TOLERANCE_M, row["id"]
        assert abs(north - float(row["stereo70_north_m"])) < TOLERANCE_M, row["id"]


def test_decimals_follow_the_target_unit() -> None:
    stdin = "310723.518 693771.731\n"
    geographic = run(["transform", "--from", "EPSG:3844", "--to", "EPSG:4258"], stdin)
    assert re.fullmatch(r"\d+\.\d{9} \d+\.\d{9}\n", geographic.stdout)
    back = run(["transform", "--from", "EPSG:4258", "--to", "EPSG:3844"], geographic.stdout)
    assert back.stdout == "310723.518 693771.731\n"
    mercator = run(["transform", "--from", "EPSG:3844", "--to", "EPSG:3857"], stdin)
    assert re.fullmatch(r"\d+\.\d{3} \d+\.\d{3}\n", mercator.stdout)


def test_heights_converted_with_the_quasigeoid_both_ways() -> None:
    rows = control_rows()
    stdin = "".join(
        f"{r['stereo70_east_m']} {r['stereo70_north_m']} {r['normal_height_m']}\n" for r in rows
    )
    result = run(["transform", "--from", "3844", "--to", "4258", "--heights"], stdin)
    for row, (_lon, _lat, height) in zip(rows, output_values(result), strict=True):
        assert abs(height - float(row["etrs89_ellipsoidal_height_m"])) < TOLERANCE_M, row["id"]
    stdin = "".join(
        f"{degrees(r, 'etrs89_lon_rad')!r} {degrees(r, 'etrs89_lat_rad')!r} "
        f"{r['etrs89_ellipsoidal_height_m']}\n"
        for r in rows
    )
    result = run(["transform", "--from", "4258", "--to", "3844", "--heights"], stdin)
    for row, (_east, _north, height) in zip(rows, output_values(result), strict=True):
        assert abs(height - float(row["normal_height_m"])) < TOLERANCE_M, row["id"]


def test_heights_pass_through_unchanged_and_comments_are_skipped() -> None:
    stdin = "# header\n\n310723.518 693771.731 122.7140\n   \n641283.450 721361.806\n"
    result = run(["transform", "--from", "EPSG:3844", "--to", "EPSG:4258"], stdin)
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].endswith(" 122.7140")
    assert len(lines[1].split()) == 2


@pytest.mark.parametrize("spelling", ["4258", "urn:ogc:def:crs:EPSG::4258", "CRS84", "epsg:4326"])
def test_crs_spellings_give_the_same_answer(spelling: str) -> None:
    stdin = "310723.518 693771.731\n"
    reference = run(["transform", "--from", "EPSG:3844", "--to", "EPSG:4258"], stdin)
    result = run(["transform", "--from", "EPSG:3844", "--to", spelling], stdin)
    assert result.exit_code == 0, result.output
    assert result.stdout == reference.stdout


def test_malformed_line_names_its_number_and_exits_2() -> None:
    stdin = "# points\n310723.518 693771.731\n310723.518;693771.731\n"
    result = run(["transform", "--from", "EPSG:3844", "--to", "EPSG:4258"], stdin)
    assert result.exit_code == 2
    assert "line 3" in result.stderr
    assert "'310723.518;693771.731'" in result.stderr


def test_point_outside_the_grid_names_its_line() -> None:
    stdin = "310723.518 693771.731\n10 10\n"
    result = run(["transform", "--from", "EPSG:3844", "--to", "EPSG:4258"], stdin)
    assert result.exit_code == 2
    assert "line 2: '10 10' lies outside the TransDatRO grid" in result.stderr


def test_heights_flag_needs_stereo70_and_etrs89() -> None:
    result = run(["transform", "--from", "3844", "--to", "3857", "--heights"], "1 2 3\n")
    assert result.exit_code == 2
    assert "--heights" in result.stderr


def test_unknown_crs_is_a_usage_error() -> None:
    result = run(["transform", "--from", "Stereo70", "--to", "4258"], "")
    assert result.exit_code == 2
    assert "unrecognised CRS" in result.stderr


def test_info_names_the_steps() -> None:
    result = CliRunner().invoke(main, ["crs", "info", "--from", "EPSG:3844", "--to", "EPSG:3857"])
    assert result.exit_code == 0, result.output
    assert "TransDatRO" in result.stdout
    assert "Pseudo-Mercator" in result.stdout
