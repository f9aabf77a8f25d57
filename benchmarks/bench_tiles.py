"""Vector tile throughput: ours (cache off) against TiPg at z14 and z16 over the dense
centre, and our cache hits against our cache misses.

Same protocol, peers and data as ``bench_features.py`` (its module does the set-up and
says what the passes are): 2 worker processes and 4 connections each per server,
``wrk`` (1 thread) replaying every tile of the centre in a fixed order at 1, 8 and 32
connections, passes of all servers alternating, and a cold pass of freshly started
servers first (the cached server starts empty and fills its cache during that pass).
``BENCH_ZOOMS`` (default ``14,16``) picks the zooms.
TiPg is asked for the same properties our public tiles carry at that zoom and uses our
64-pixel buffer, so both encode the same features and attributes (``PARITY`` lines:
features, shared cadastral numbers, bytes). Run from the repository root:
``.venv/bin/python benchmarks/bench_tiles.py``.
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import pyogrio
from bench_features import (
    CENTRE_E,
    CENTRE_N,
    CONNECTIONS,
    Pass,
    Server,
    cold_pass,
    compare,
    ensure_wrk,
    fetch,
    load_average,
    our_server,
    parity,
    prepare,
    report,
    report_passes,
    running,
    tipg_server,
)

from gis_core.crs import transform_coords
from gis_core.settings import Settings
from layers.catalog import Catalog
from layers.tiles import tile_fields

# The central square whose tiles are replayed (metres, around the centre).
SPREAD = {14: 6_000.0, 16: 3_000.0}
TIPG_COLUMNS = {"address": "address_text"}  # our field name -> the peer table's column


def central_tiles(z: int) -> list[tuple[int, int, int]]:
    """Every tile at ``z`` touching the central square, in a fixed order."""
    half = SPREAD[z] / 2
    lon, lat = transform_coords(
        3844, 4326, [CENTRE_E - half, CENTRE_E + half], [CENTRE_N - half, CENTRE_N + half]
    )
    n = 1 << z

    def column(value: float) -> int:
        return int((value + 180) / 360 * n)

    def row(value: float) -> int:
        return int((1 - math.asinh(math.tan(math.radians(value))) / math.pi) / 2 * n)

    xs = range(column(float(lon[0])), column(float(lon[1])) + 1)
    ys = range(row(float(lat[1])), row(float(lat[0])) + 1)
    return [(z, x, y) for x in xs for y in ys]


def tipg_properties(z: int) -> str:
    """The columns our public parcel tiles carry at ``z``, by the peer table's names."""
    layer = Catalog(3844).get("parcels")
    return ",".join(TIPG_COLUMNS.get(f.name, f.name) for f in tile_fields(layer, "public", z))


def cadastral_numbers(body: bytes) -> list[str]:
    """The parcels in a tile, read back by GDAL's MVT driver."""
    if not body:
        return []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "14" / "0" / "0.pbf"
        path.parent.mkdir(parents=True)
        path.write_bytes(body)
        numbers: list[str] = []
        for name, _ in pyogrio.list_layers(path):
            frame = pyogrio.read_dataframe(path, layer=str(name), read_geometry=False)
            numbers.extend(str(v) for v in frame["cadastral_number"])
        return numbers


def floor_app() -> Callable[..., Iterable[bytes]]:
    """The HTTP floor: a bare WSGI callable answering every path with
    ``BENCH_FLOOR_BYTES`` bytes, run by the same server (granian) as ours. No cache hit
    of ours can be cheaper; ``cached ÷ floor`` shows how much of the floor's rate our
    cache path keeps."""
    body = b"\0" * int(os.environ.get("BENCH_FLOOR_BYTES", "0"))
    headers = [("Content-Type", "application/vnd.mapbox-vector-tile")]
    headers.append(("Content-Length", str(len(body))))

    def answer(environ: dict[str, object], start_response: Callable[..., object]) -> list[bytes]:
        start_response("200 OK", headers)
        return [body]

    return answer


def floor_server(settings: Settings, size: int) -> Server:
    ours = our_server(settings, name="http_floor", factory="bench_tiles:floor_app")
    return replace(ours, env={**ours.env, "BENCH_FLOOR_BYTES": str(size)})


def main() -> None:
    ensure_wrk()
    settings = prepare()
    zooms = [int(z) for z in os.environ.get("BENCH_ZOOMS", "14,16").split(",")]
    tiles = {z: central_tiles(z) for z in zooms}
    ours_paths = {z: [f"/tiles/parcels/{z}/{x}/{y}.mvt" for z, x, y in t] for z, t in tiles.items()}
    tipg_paths = {
        z: [
            f"/collections/bench.parcels_4326/tiles/WebMercatorQuad/{z}/{x}/{y}"
            f"?properties={tipg_properties(z)}"
            for z, x, y in t
        ]
        for z, t in tiles.items()
    }
    print(f"load average before: {load_average()}", flush=True)
    for z in tiles:
        with ExitStack() as stack:  # fresh servers per zoom, for its cold pass
            ours = stack.enter_context(running(our_server(settings, tile_cache=False)))
            cached = stack.enter_context(
                running(our_server(settings, tile_cache=True, name="ours_cached"))
            )
            tipg = stack.enter_context(running(tipg_server()))
            plan = {
                "ours": (ours, ours_paths[z]),
                "tipg": (tipg, tipg_paths[z]),
                "ours_cached": (cached, ours_paths[z]),
            }
            print(f"z{z}: {len(tiles[z])} tiles", flush=True)
            # cold: nothing cached yet, so the cached server's first pass fills its cache
            report_levels(z, "cold", cold_pass(plan))
            sizes = [len(fetch(cached.base + path)[1]) for path in ours_paths[z] * 4]
            # both workers have every tile by now; the floor answers the median size
            floor = stack.enter_context(
                running(floor_server(settings, int(statistics.median(sizes))))
            )
            parity(f"tiles_z{z}", plan, ids_of=cadastral_numbers)
            plan["http_floor"] = (floor, ours_paths[z])
            for connections in CONNECTIONS:
                report_levels(z, connections, compare(plan, connections))
    print(f"load average after: {load_average()}", flush=True)


def report_levels(z: int, connections: int | str, result: dict[str, Pass]) -> None:
    report_passes(f"tiles_z{z}", connections, result)
    suffix = {8: "", "cold": "_cold"}.get(connections, f"_c{connections}")
    rate = {name: run.rate for name, run in result.items()}
    load = f"load {load_average()}"
    ours, cached = result["ours"], result["ours_cached"]
    report(
        f"tiles_z{z}_uncached_vs_tipg{suffix}",
        rate["ours"],
        rate["tipg"],
        f"target >= 1.0; ours p50/p95/p99={ours.p50:.1f}/{ours.p95:.1f}/{ours.p99:.1f} ms; " + load,
    )
    report(
        f"tiles_z{z}_cached_vs_our_uncached{suffix}",
        rate["ours_cached"],
        rate["ours"],
        f"target >= 20; cached p50/p95/p99={cached.p50:.1f}/{cached.p95:.1f}/"
        f"{cached.p99:.1f} ms; {load}",
    )
    if "http_floor" in rate:
        report(
            f"tiles_z{z}_cached_vs_http_floor{suffix}",
            rate["ours_cached"],
            rate["http_floor"],
            f"the same server answering fixed bytes: the most a cache hit can reach; {load}",
        )


if __name__ == "__main__":
    main()
