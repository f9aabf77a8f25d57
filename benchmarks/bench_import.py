"""Bulk cadastral import: 1 000 000 generated parcels from a GeoPackage, ours vs ogr2ogr.

Input: a deterministic perturbed grid of 8-vertex parcels over ~40 × 40 km of Stereo 70
(EPSG:3844), with text cadastral numbers and measured areas, written once to
``var/bench/import_<N>.gpkg``.

Ours: ``urbangis import cadastre`` (in a child process, so its peak memory is its own)
with validation on: CRS check against the municipality, geometry validation and repair,
key, measured-area and sliver checks, duplicate and overlap detection, ETRS89 twins
(TransDatRO, made on a thread of their own a batch behind validation), all in one
transaction with its run record. This being a first import of the UAT (the key column
read for it on a thread of its own while the first batch is validated), the rows go by
one binary COPY straight into ``cadastre.parcel`` (``importers.direct``): its secondary
indexes dropped; its version-rule trigger dropped too once the load has proved it
cannot fail (no current or future-ending version in the UAT, every key once in the
file, checked again on the rows written); its foreign keys to the import runs and to
the addresses (a column this file leaves empty) dropped and validated again at the end;
ids taken from the sequence as one block; columns the file does not feed left out;
Python's cyclic garbage collector paused. Then the GiST index (the geometry and its twin,
one index, migration 0011) is rebuilt while Python matches the overlap test's edges, the
two B-trees after it (run id and the cadastral number's pattern index, the one index on
the number since migration 0010; the partial indexes on keys this file lacks, address
and eTerra id, are kept through the load, which adds nothing to them), ANALYZE, then the
trigger and the keys restored (the address key's check reads its partial index).
Peer: ``ogr2ogr -f PostgreSQL`` (COPY, one transaction, no spatial index during the
load) into a fresh table, followed by the GiST index and
ANALYZE, timed end to end (performance-anchors.md, S6).

Run from the repository root: ``.venv/bin/python benchmarks/bench_import.py [N]`` (or
``BENCH_PARCELS=N``; 1 000 000 by default). The last lines are
``RESULT import_1m ours=<features/s> peer=<features/s> ratio=<r>``, the peak memory of
our import, where each side's CPU went (its own process; the rest of the machine
meanwhile, which is PostgreSQL's backend and workers on a quiet machine: work done in
one transaction runs on one core there, parallel index builds aside) and the machine's
load average (other work on the machine slows both sides).
``BENCH_KEEP=1`` keeps the database (``urbangis_bench_import``) for EXPLAINs afterwards.
"""

from __future__ import annotations

import inspect
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyogrio
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import URL

from gis_core import migrate
from gis_core.db import create_engine, drop_database, recreate_database
from gis_core.embedded import EmbeddedCluster
from gis_core.settings import Settings

DATA_DIR = Path("var/bench")
DATABASE = "urbangis_bench_import"
PARCELS = 1_000_000
SPACING = 40.0  # metres between grid nodes: 1000 × 1000 parcels ≈ 40 × 40 km
ORIGIN = (370_000.0, 560_000.0)  # Stereo 70, around Cluj-Napoca

# The import process's own peak memory. Not ``ru_maxrss``: Linux carries the high-water
# mark of the address space a process replaced at exec into it, so a child spawned by a
# parent that once held more (this script, when it has just generated the GeoPackage)
# reported the parent's peak. VmHWM is the peak of the child's own address space.
PEAK_SOURCE = """
import resource

def peak_bytes():
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
"""


def machine_busy() -> float | None:
    """CPU seconds the whole machine has spent busy (every process, PostgreSQL's too),
    from /proc/stat: user, nice, system, irq and softirq time; not idle, I/O wait, or
    steal (time a virtual machine's host gave to others). None where there is no such
    file. The import's child runs it too."""
    try:
        with Path("/proc/stat").open() as stat:
            ticks = [int(value) for value in stat.readline().split()[1:8]]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq = ticks
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


_CHILD_BODY = """
import json, sys, time
from gis_core.settings import Settings
from gis_core.db import create_engine
from importers.cadastre import CadastreOptions, import_cadastre
settings = Settings(database_url=sys.argv[1], storage_srid=3844, uat_siruta=999999)
engine = create_engine(settings, pool_size=1)
busy, cpu, started = machine_busy(), time.process_time(), time.perf_counter()
report = import_cadastre(engine, settings, [sys.argv[2]], CadastreOptions())
elapsed = time.perf_counter() - started
cpu, after = time.process_time() - cpu, machine_busy()
peak = peak_bytes()
print(json.dumps({"seconds": elapsed, "peak_bytes": peak, "counts": report.count_dict(),
                  "findings": dict(report.finding_counts), "client_cpu": cpu,
                  "busy": None if busy is None else after - busy}))
"""
_CHILD = (
    PEAK_SOURCE
    + f"import os\nfrom pathlib import Path\n{inspect.getsource(machine_busy)}"
    + _CHILD_BODY
)


def parcels_file(count: int) -> Path:
    """The input GeoPackage (generated once): perturbed grid cells with 8 vertices."""
    path = DATA_DIR / f"import_{count}.gpkg"
    if path.exists():
        return path
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    side = int(np.ceil(np.sqrt(count)))
    rng = np.random.default_rng(7)
    nodes = (
        np.stack(
            np.meshgrid(np.arange(side + 1), np.arange(side + 1), indexing="xy"), axis=-1
        ).astype(np.float64)
        * SPACING
    )
    nodes += rng.uniform(-SPACING * 0.2, SPACING * 0.2, nodes.shape)
    nodes += ORIGIN
    index = np.arange(count)
    col, row = index % side, index // side
    corners = [nodes[row, col], nodes[row, col + 1], nodes[row + 1, col + 1], nodes[row + 1, col]]
    ring = []
    for k in range(4):  # corner, then the middle of the side to the next corner
        ring.append(corners[k])
        ring.append((corners[k] + corners[(k + 1) % 4]) / 2)
    ring.append(corners[0])
    coords = np.stack(ring, axis=1)  # (count, 9, 2)
    geoms = shapely.polygons(coords)
    frame = gpd.GeoDataFrame(
        {
            "NR_CAD": np.char.add("B", (1_000_000 + index).astype(str)).astype(object),
            "SUPRAFATA": np.round(shapely.area(geoms), 2),
            "CATEGORIE": np.where(index % 7 == 0, "A", "CC").astype(object),
        },
        geometry=geoms,
        crs="EPSG:3844",
    )
    pyogrio.write_dataframe(frame, path, layer="parcels", driver="GPKG")
    return path


def run_ours(url: URL, gpkg: Path) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, url.render_as_string(hide_password=False), str(gpkg)],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def run_peer(url: URL, gpkg: Path) -> dict[str, Any]:
    """ogr2ogr into a fresh table (COPY, no index during load), then GiST + ANALYZE:
    its time, the client's CPU (ogr2ogr) and the machine's busy CPU meanwhile."""
    query = url.query
    target = (
        f"PG:dbname={url.database} host={query['host']} port={query['port']} user={url.username}"
    )
    command = [
        "ogr2ogr", "--config", "PG_USE_COPY", "YES", "-f", "PostgreSQL", target, str(gpkg),
        "parcels", "-nln", "public.peer_parcels", "-overwrite", "-gt", "unlimited",
        "-lco", "GEOMETRY_NAME=geom", "-lco", "SPATIAL_INDEX=NONE", "-nlt", "PROMOTE_TO_MULTI",
    ]  # fmt: skip
    engine = sa.create_engine(url)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy, started = machine_busy(), time.perf_counter()
    subprocess.run(command, check=True)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE INDEX ON public.peer_parcels USING gist (geom)"))
        conn.execute(sa.text("ANALYZE public.peer_parcels"))
    elapsed, after = time.perf_counter() - started, machine_busy()
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    engine.dispose()
    client = (used.ru_utime - before.ru_utime) + (used.ru_stime - before.ru_stime)
    return {"seconds": elapsed, "client_cpu": client, "busy": _delta(busy, after)}


def _delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


def cpu_line(label: str, side: str, figures: Mapping[str, Any]) -> str:
    """Where a side's CPU went: its own process, and the rest of the machine meanwhile
    (PostgreSQL's backend and workers, plus whatever else ran)."""
    client, busy = float(figures["client_cpu"]), figures.get("busy")
    rest = "" if busy is None else f", rest of the machine {float(busy) - client:.1f} s"
    return f"CPU {label} {side}: client {client:.1f} s{rest} (PostgreSQL and anything else)"


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("BENCH_PARCELS", PARCELS))
    gpkg = parcels_file(count)
    cluster = EmbeddedCluster(Settings(data_dir=DATA_DIR))
    cluster.ensure_running()
    server = cluster.url()
    url = recreate_database(server, DATABASE)
    settings = Settings(database_url=url.render_as_string(hide_password=False), data_dir=DATA_DIR)
    engine = create_engine(settings, pool_size=1)
    migrate.upgrade(engine, settings.storage_srid)
    engine.dispose()
    try:
        peer = run_peer(url, gpkg)
        peer_seconds = float(peer["seconds"])
        print(f"peer: ogr2ogr + GiST + ANALYZE, {count} parcels in {peer_seconds:.1f} s")
        ours = run_ours(url, gpkg)
    finally:
        if not os.environ.get("BENCH_KEEP"):
            drop_database(server, DATABASE)
    seconds = float(ours["seconds"])  # type: ignore[arg-type]
    print(f"ours: import cadastre, {count} parcels in {seconds:.1f} s: {ours['counts']}")
    print(f"ours: findings {ours['findings']}")
    ours_rate, peer_rate = count / seconds, count / peer_seconds
    label = "import_1m" if count == PARCELS else f"import_{count}"
    ratio = ours_rate / peer_rate
    print(f"RESULT {label} ours={ours_rate:.0f} peer={peer_rate:.0f} ratio={ratio:.3f}")
    peak = int(ours["peak_bytes"])  # type: ignore[call-overload]
    print(f"MEMORY {label} ours_peak={peak / 2**30:.2f} GiB (target < 1.5 GB)")
    print(cpu_line(label, "ours", ours))
    print(cpu_line(label, "peer", peer))
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"LOAD {label} load average {load} (2 cores, shared)")


if __name__ == "__main__":
    main()
