"""Reading ANCPI's TransDatRO ``.GRD`` grid files shipped in ``gis_core/crs/grids/``.

The files are small (60 KB and 400 KB) but are read only when a transformation first
needs them, then kept for the life of the process: importing ``gis_core.crs`` must stay
free, and every later call must not touch the disk again.

Layout (little-endian): six doubles ``e_min, e_max, n_min, n_max, e_step, n_step``, then
the nodes row by row from the south-west corner (row = north index, column = east index),
each node ``components`` doubles. The value 999 marks a node without data.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.resources import files

import numpy as np

from gis_core.errors import ConfigurationError

PLANIMETRIC_GRID = "ETRS89_KRASOVSCHI42_2DJ.GRD"
QUASIGEOID_GRID = "EGG97_QGRJ.GRD"
NO_DATA = 999.0

_HEADER_DOUBLES = 6
_LITTLE_ENDIAN_DOUBLE = np.dtype("<f8")


@dataclass(frozen=True)
class Grid:
    """A regular grid of node values; ``values`` has shape (rows, columns, components).

    No-data nodes hold NaN here (not 999), so a patch touching one is recognised by
    ``isfinite`` instead of by comparing with a magic number in every caller.
    """

    name: str
    e_min: float
    n_min: float
    e_step: float
    n_step: float
    values: np.ndarray

    @property
    def rows(self) -> int:
        """Number of nodes north-south."""
        return int(self.values.shape[0])

    @property
    def columns(self) -> int:
        """Number of nodes east-west."""
        return int(self.values.shape[1])

    @property
    def components(self) -> int:
        """Values per node (2 for the planimetric shifts, 1 for the quasigeoid)."""
        return int(self.values.shape[2])


def parse_grid(name: str, data: bytes, components: int) -> Grid:
    """Decode a ``.GRD`` file, checking its size against its own header.

    A truncated or foreign file must stop the program with a clear message rather than
    yield silently shifted coordinates.
    """
    header_bytes = _HEADER_DOUBLES * _LITTLE_ENDIAN_DOUBLE.itemsize
    if len(data) < header_bytes:
        raise ConfigurationError(f"TransDatRO grid {name} is truncated (no header)")
    e_min, e_max, n_min, n_max, e_step, n_step = (
        float(v) for v in np.frombuffer(data[:header_bytes], dtype=_LITTLE_ENDIAN_DOUBLE)
    )
    if not (e_step > 0 and n_step > 0 and e_max > e_min and n_max > n_min):
        raise ConfigurationError(f"TransDatRO grid {name} has an invalid header")
    columns = round((e_max - e_min) / e_step) + 1
    rows = round((n_max - n_min) / n_step) + 1
    nodes = np.frombuffer(data[header_bytes:], dtype=_LITTLE_ENDIAN_DOUBLE)
    expected = rows * columns * components
    if nodes.size != expected:
        raise ConfigurationError(
            f"TransDatRO grid {name} holds {nodes.size} values; its header announces "
            f"{rows}×{columns} nodes of {components} (= {expected})"
        )
    values = nodes.astype(np.float64).reshape(rows, columns, components)
    values[values == NO_DATA] = np.nan
    values.flags.writeable = False
    return Grid(name, e_min, n_min, e_step, n_step, values)


def read_packaged_grid(name: str, components: int) -> Grid:
    """Read one of the grids shipped with the package (works from wheels and zips too)."""
    resource = files("gis_core.crs").joinpath("grids").joinpath(name)
    try:
        data = resource.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"TransDatRO grid {name} is missing: {exc}") from exc
    return parse_grid(name, data, components)


@cache
def planimetric_grid() -> Grid:
    """The Stereo 70 plane correction grid: (shift_east, shift_north) metres per node."""
    return read_packaged_grid(PLANIMETRIC_GRID, components=2)


@cache
def quasigeoid_grid() -> Grid:
    """The EGG97 quasigeoid: height anomaly in metres at longitude/latitude nodes (degrees)."""
    return read_packaged_grid(QUASIGEOID_GRID, components=1)
