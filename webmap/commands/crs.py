"""``urbangis crs``: convert coordinates the official way, as a filter on text streams.

Surveyors and clerks paste or pipe "x y [h]" lists; the command must give exactly what
the platform itself computes (``gis_core.crs``), so it is a thin reader/writer around
``transform_points``, working in large chunks so a million lines take seconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import TextIO

import click
import numpy as np

from gis_core.collector import collector_paused
from gis_core.crs import transdatro
from gis_core.crs.transform import (
    ETRS89,
    OUTSIDE_QUASIGEOID_GRID,
    STEREO70,
    crs_of,
    describe_transformation,
    is_geographic,
    parse_crs,
    transform_points,
)
from gis_core.errors import InvalidParameter, OutsideGridError

CHUNK_LINES = 100_000
METRE_DECIMALS = 3
DEGREE_DECIMALS = 9
HEIGHT_DECIMALS = 3


class CrsCode(click.ParamType):
    """A CRS option: "EPSG:N", "N", "CRS84" or "urn:ogc:def:crs:EPSG::N" → EPSG code."""

    name = "crs"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int:
        """Parse and check the code now, so a typo fails before any input is read."""
        if isinstance(value, int):
            return value
        try:
            code = parse_crs(str(value))
            crs_of(code)
        except InvalidParameter as exc:
            self.fail(str(exc), param, ctx)
        return code


CRS_CODE = CrsCode()


@dataclass(frozen=True)
class _Chunk:
    """Parsed data lines of one chunk: coordinates plus what is needed to report and echo."""

    line_numbers: list[int]
    texts: list[str]
    x: np.ndarray
    y: np.ndarray
    heights: list[str | None]


@click.group(name="crs")
def group() -> None:
    """Coordinate conversion: Stereo 70 ↔ ETRS89 by ANCPI's TransDatRO, others by PROJ."""


@group.command(name="transform")
@click.option(
    "--from", "src", type=CRS_CODE, required=True, help="CRS of the input, e.g. EPSG:3844."
)
@click.option(
    "--to", "dst", type=CRS_CODE, required=True, help="CRS of the output, e.g. EPSG:4258."
)
@click.option(
    "--heights",
    is_flag=True,
    help="Convert a third value between normal (3844) and ellipsoidal (4258) height with EGG97.",
)
@click.argument("source", type=click.File("r"), default="-")
def transform(src: int, dst: int, heights: bool, source: TextIO) -> None:
    """Read "x y [h]" lines from SOURCE (default: stdin), write them transformed on stdout.

    x y are easting northing in metres or longitude latitude in degrees. A third value
    (height) is copied unchanged unless --heights is given. Blank lines and lines
    starting with # are skipped.
    """
    if heights and {src, dst} != {STEREO70, ETRS89}:
        raise InvalidParameter(
            "--heights converts normal ↔ ellipsoidal heights only between EPSG:3844 and EPSG:4258",
            locator="heights",
        )
    decimals = DEGREE_DECIMALS if is_geographic(dst) else METRE_DECIMALS
    with collector_paused():
        for chunk in _read_chunks(source, CHUNK_LINES):
            click.echo(_transform_chunk(chunk, src, dst, heights, decimals), nl=False)


@group.command(name="info")
@click.option("--from", "src", type=CRS_CODE, required=True, help="Source CRS, e.g. EPSG:3844.")
@click.option("--to", "dst", type=CRS_CODE, required=True, help="Target CRS, e.g. EPSG:3857.")
def info(src: int, dst: int) -> None:
    """Print the transformation path used between two CRSs."""
    click.echo(f"from EPSG:{src} ({crs_of(src).name}) to EPSG:{dst} ({crs_of(dst).name})")
    for number, step in enumerate(describe_transformation(src, dst), start=1):
        click.echo(f"  {number}. {step}")
    unit = "degrees, 9 decimals" if is_geographic(dst) else "metres, 3 decimals"
    click.echo(f"output: {unit}")


def _read_chunks(stream: TextIO, size: int) -> Iterator[_Chunk]:
    """Parse the input ``size`` lines at a time, keeping 1-based line numbers."""
    first_line = 1
    lines = iter(stream)
    while True:
        block = list(islice(lines, size))
        if not block:
            return
        chunk = _parse_lines(block, first_line)
        first_line += len(block)
        if chunk.line_numbers:
            yield chunk


def _parse_lines(lines: Iterable[str], first_line: int) -> _Chunk:
    """Parse one chunk with list comprehensions (the per-line cost dominates the command).

    Any doubt (a bad token, a wrong count, NaN) sends the chunk through the line-by-line
    check, which names the first bad line.
    """
    kept = [
        (number, text)
        for number, raw in enumerate(lines, start=first_line)
        if (text := raw.strip()) and not text.startswith("#")
    ]
    numbers = [number for number, _text in kept]
    texts = [text for _number, text in kept]
    parts = [text.split() for text in texts]
    try:
        if not {len(p) for p in parts} <= {2, 3}:
            raise ValueError
        x = np.array([float(p[0]) for p in parts], dtype=np.float64)
        y = np.array([float(p[1]) for p in parts], dtype=np.float64)
        heights = [p[2] if len(p) == 3 else None for p in parts]
        checked = [float(h) for h in heights if h is not None]
        if not (np.isfinite(x).all() and np.isfinite(y).all() and np.isfinite(checked).all()):
            raise ValueError
    except ValueError:
        for number, text in kept:
            _check_line(number, text)
        raise
    return _Chunk(numbers, texts, x, y, heights)


def _check_line(number: int, text: str) -> None:
    """Refuse a line that is not "x y" or "x y h" numbers, naming it."""
    parts = text.split()
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        if not all(math.isfinite(float(part)) for part in parts):
            raise ValueError
    except ValueError:
        raise InvalidParameter(
            f"line {number}: expected 'x y' or 'x y height' as numbers, got {text!r}"
        ) from None


def _transform_chunk(chunk: _Chunk, src: int, dst: int, heights: bool, decimals: int) -> str:
    """One vectorised transformation per chunk; a failed point is reported by its line."""
    result = transform_points(src, dst, chunk.x, chunk.y)
    if result.failure is not None:
        index = result.failure.index
        raise result.failure.error(
            f"line {chunk.line_numbers[index]}: {chunk.texts[index]!r} {result.failure.reason}"
        )
    shown_heights = chunk.heights
    if heights:
        geographic = (result.x, result.y) if src == STEREO70 else (chunk.x, chunk.y)
        shown_heights = _convert_heights(chunk, geographic, to_ellipsoidal=src == STEREO70)
    pair = f"%.{decimals}f %.{decimals}f"
    pairs = map(pair.__mod__, zip(result.x.tolist(), result.y.tolist(), strict=True))
    if all(h is None for h in shown_heights):
        return "\n".join(pairs) + "\n"
    lines = [
        text if h is None else f"{text} {h}" for text, h in zip(pairs, shown_heights, strict=True)
    ]
    return "\n".join(lines) + "\n"


def _convert_heights(
    chunk: _Chunk, lon_lat: tuple[np.ndarray, np.ndarray], *, to_ellipsoidal: bool
) -> list[str | None]:
    """Normal ↔ ellipsoidal heights with EGG97 at the ETRS89 lon/lat of each line."""
    with_height = np.array([h is not None for h in chunk.heights], dtype=bool)
    if not with_height.any():
        return chunk.heights
    lon = np.ascontiguousarray(lon_lat[0][with_height])
    lat = np.ascontiguousarray(lon_lat[1][with_height])
    anomaly, inside = transdatro.quasigeoid_anomaly(lon, lat)
    rows = np.flatnonzero(with_height)
    if not inside.all():
        index = int(rows[np.flatnonzero(~inside)[0]])
        raise OutsideGridError(
            f"line {chunk.line_numbers[index]}: {chunk.texts[index]!r} {OUTSIDE_QUASIGEOID_GRID}"
        )
    given = np.array([float(h) for h in chunk.heights if h is not None])
    converted = given + anomaly if to_ellipsoidal else given - anomaly
    shown = list(chunk.heights)
    for row, value in zip(rows.tolist(), converted.tolist(), strict=True):
        shown[row] = f"{value:.{HEIGHT_DECIMALS}f}"
    return shown
