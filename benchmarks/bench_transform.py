"""Throughput of TransDatRO (Stereo 70 ↔ ETRS89) against PROJ's default path.

The peer is pyproj's default Transformer between EPSG:3844 and EPSG:4258 (a 3 m Helmert,
no grid) on the same points in the same run: ours must stay well ahead of it although it
does more (grid interpolation, Helmert, projection, and a fixed point for the inverse).

Run from the repository root: ``.venv/bin/python benchmarks/bench_transform.py``.
The last line is the forward result; the inverse result is printed just before it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from pyproj import Geod, Transformer

from gis_core.crs import etrs89_to_stereo70, stereo70_to_etrs89, transdatro

POINTS = 1_000_000
SEED = 3844
REPEATS = 3


def covered_points(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform random Stereo 70 points inside the grid's valid area (roughly Romania)."""
    rng = np.random.default_rng(seed)
    east_parts: list[np.ndarray] = []
    north_parts: list[np.ndarray] = []
    found = 0
    while found < count:
        east = rng.uniform(110_000, 890_000, count)
        north = rng.uniform(214_000, 785_000, count)
        keep = transdatro.inside_grid(east, north)
        east_parts.append(east[keep])
        north_parts.append(north[keep])
        found += int(keep.sum())
    return np.concatenate(east_parts)[:count], np.concatenate(north_parts)[:count]


def best_rate(function: Callable[[], object], count: int) -> float:
    """Points per second of the fastest of a few runs (the least disturbed one)."""
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return count / best


def report(name: str, ours: float, peer: float) -> str:
    return (
        f"RESULT {name} ours={ours:.0f} points/s peer={peer:.0f} points/s ratio={ours / peer:.3f}"
    )


def main() -> None:
    east, north = covered_points(POINTS, SEED)
    lon, lat = stereo70_to_etrs89(east, north)
    proj_forward = Transformer.from_crs(3844, 4258, always_xy=True)
    proj_inverse = Transformer.from_crs(4258, 3844, always_xy=True)

    back_east, back_north = etrs89_to_stereo70(lon, lat)
    round_trip = max(np.abs(back_east - east).max(), np.abs(back_north - north).max())
    proj_lon, proj_lat = proj_forward.transform(east, north)
    _az1, _az2, proj_gap = Geod(ellps="GRS80").inv(proj_lon, proj_lat, lon, lat)

    forward = best_rate(lambda: stereo70_to_etrs89(east, north), POINTS)
    forward_peer = best_rate(lambda: proj_forward.transform(east, north), POINTS)
    inverse = best_rate(lambda: etrs89_to_stereo70(lon, lat), POINTS)
    inverse_peer = best_rate(lambda: proj_inverse.transform(lon, lat), POINTS)

    print(f"{POINTS} random points inside the TransDatRO grid (seed {SEED}), best of {REPEATS}")
    print(f"round trip Stereo 70 → ETRS89 → Stereo 70: max error {round_trip * 1000:.6f} mm")
    print(
        f"PROJ's default path differs from TransDatRO by {np.min(proj_gap):.2f}"
        f"–{np.max(proj_gap):.2f} m (median {np.median(proj_gap):.2f} m)"
    )
    print(f"forward  Stereo 70 → ETRS89: ours {forward:,.0f} points/s, PROJ {forward_peer:,.0f}")
    print(f"inverse  ETRS89 → Stereo 70: ours {inverse:,.0f} points/s, PROJ {inverse_peer:,.0f}")
    print(report("transdatro_inverse", inverse, inverse_peer))
    print(report("transdatro_forward", forward, forward_peer))


if __name__ == "__main__":
    main()
