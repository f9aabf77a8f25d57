"""WFS 2.0 GetFeature throughput against MapServer 8 on the same PostGIS tables.

The data, the servers and the harness are those of ``bench_wms.py`` (1 000 000
parcels, MapServer 8 FastCGI under lighttpd with 2 processes, ours under granian (as
``urbangis serve``) with 2 workers, ``wrk`` with 1 thread, closed loop, 8 connections,
alternating passes).
Requests: GetFeature of the parcels in random 400 m boxes within 2.5 km of the centre
(about 250 parcels each), BBOX and output in EPSG:4326 (urn form, latitude first), as
GeoJSON (target ≥ 1.0× MapServer) and as GML 3.2 (target ≥ 0.8×). ``PARITY`` lines
compare the features returned, the shared ids (GML) and the bytes.

Run from the repository root: ``.venv/bin/python benchmarks/bench_wfs.py``.
"""

from __future__ import annotations

import random
import re
from contextlib import ExitStack

import bench_features as harness
import bench_wms
import orjson

from gis_core.crs import transform_coords

URN_4326 = "urn:ogc:def:crs:EPSG::4326"
BOX_METRES = 400.0
SPREAD_METRES = 5_000.0
SEED = 2002


def boxes(count: int) -> list[tuple[float, float, float, float]]:
    """Latitude-first EPSG:4326 boxes (WFS 2.0 axis order) around the centre."""
    rng = random.Random(SEED)
    found = []
    for _ in range(count):
        e = harness.CENTRE_E + rng.uniform(-SPREAD_METRES / 2, SPREAD_METRES / 2)
        n = harness.CENTRE_N + rng.uniform(-SPREAD_METRES / 2, SPREAD_METRES / 2)
        lon, lat = transform_coords(3844, 4326, [e, e + BOX_METRES], [n, n + BOX_METRES])
        found.append((float(lat[0]), float(lon[0]), float(lat[1]), float(lon[1])))
    return found


def getfeature_paths(
    found: list[tuple[float, float, float, float]], geojson: bool
) -> dict[str, list[str]]:
    def query(box: tuple[float, float, float, float], fmt: str) -> str:
        bbox = ",".join(f"{v:.7f}" for v in box)
        text = (
            "SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=parcels&COUNT=1000"
            f"&SRSNAME={URN_4326}&BBOX={bbox},{URN_4326}"
        )
        return text + (f"&OUTPUTFORMAT={fmt}" if fmt else "")

    ours_format = "application/json" if geojson else ""
    peer_format = "geojson" if geojson else ""
    return {
        "ours": [f"/ogc/wfs?{query(b, ours_format)}" for b in found],
        "mapserver": [f"/mapserv?{query(b, peer_format)}" for b in found],
    }


def geojson_ids(body: bytes) -> list[str]:
    features = orjson.loads(body)["features"]
    return [str(f.get("properties", {}).get("cadastral_number")) for f in features]


def gml_ids(body: bytes) -> list[str]:
    return [m.decode() for m in re.findall(rb'gml:id="parcels\.(\d+)"', body)]


def main() -> None:
    harness.ensure_wrk()
    settings = bench_wms.prepare()
    bench_wms.count_postgres_cpu_here()
    sample = boxes(300)
    scenarios = {
        "wfs_getfeature_bbox_geojson": (getfeature_paths(sample, True), geojson_ids),
        "wfs_getfeature_bbox_gml32": (getfeature_paths(sample, False), gml_ids),
    }
    scenarios = bench_wms.selected(scenarios)
    print(f"load average before: {harness.load_average()}", flush=True)
    results = {}
    with ExitStack() as stack:
        servers = {
            "ours": stack.enter_context(harness.running(bench_wms.our_server(settings))),
            "mapserver": stack.enter_context(bench_wms.mapserver_server()),
        }
        for scenario, (paths, ids_of) in scenarios.items():
            plan = {name: (server, paths[name]) for name, server in servers.items()}
            harness.parity(scenario, plan, ids_of)
            for connections in harness.CONNECTIONS:
                results[(scenario, connections)] = harness.compare(plan, connections)
                harness.report_passes(scenario, connections, results[(scenario, connections)])
    print(f"load average after: {harness.load_average()}", flush=True)
    targets = {"wfs_getfeature_bbox_geojson": "1.0", "wfs_getfeature_bbox_gml32": "0.8"}
    for (scenario, connections), found in results.items():
        suffix = "" if connections == 8 else f"_c{connections}"
        harness.report(
            f"{scenario}_vs_mapserver{suffix}",
            found["ours"].rate,
            found["mapserver"].rate,
            f"req/s, higher is better (target >= {targets[scenario]})",
        )


if __name__ == "__main__":
    main()
