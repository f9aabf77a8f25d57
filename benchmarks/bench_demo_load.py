"""The 1 000 000-parcel demo load, against GDAL's ogr2ogr loading the same parcels.

Ours: ``load_demo`` end to end (generation of the whole city, EWKB and TransDatRO twins,
COPY of parcels, use sub-parcels, addresses, buildings, zones..., index rebuild,
ANALYZE) into a freshly migrated database. Peer: ``ogr2ogr -f PostgreSQL`` loading only
the parcel polygons and their attributes from a GeoPackage written beforehand (only
ogr2ogr is timed). The peer does much less work, so a ratio above 1 is expected; the
target is the absolute time (under 15 minutes on the 2-core reference machine).

Run from the repository root: ``.venv/bin/python benchmarks/bench_demo_load.py [N]``.
The last line is ``RESULT demo_load_1m ours=<s> s peer=<s> s ratio=<ours/peer>``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
from sqlalchemy.engine import URL

from gis_core import migrate
from gis_core.db import create_engine, recreate_database
from gis_core.embedded import EmbeddedCluster
from gis_core.settings import Settings
from importers.demo.generate import DemoParameters, generate
from importers.demo.load import load_demo

DATA_DIR = Path("var/bench")
DATABASE = "urbangis_bench_demo"
PARCELS = 1_000_000


def run_ours(settings: Settings, parcels: int) -> float:
    engine = create_engine(settings, pool_size=1)
    migrate.upgrade(engine, settings.storage_srid)
    started = time.perf_counter()
    load_demo(engine, DemoParameters(parcels=parcels), progress=print)
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def write_peer_input(parcels: int, folder: Path) -> Path:
    """The same parcels (geometry and attributes) as a GeoPackage for ogr2ogr."""
    demo = generate(DemoParameters(parcels=parcels))
    p = demo.parcels
    frame = gpd.GeoDataFrame(
        {
            "cadastral_number": p.cadastral_number,
            "land_book_number": p.land_book_number,
            "e2_identifier": p.e2_identifier,
            "cad_sector": p.cad_sector,
            "measured_area": p.measured_area,
            "legal_area": p.legal_area,
            "use_category": p.use_category,
            "intravilan": p.intravilan,
            "address_text": p.address_text,
        },
        geometry=gpd.GeoSeries(p.geom, crs="EPSG:3844"),
    )
    path = folder / "parcels.gpkg"
    frame.to_file(path, layer="parcels", driver="GPKG", engine="pyogrio")
    return path


def run_peer(server: URL, gpkg: Path) -> float:
    """Time ogr2ogr loading the GeoPackage into PostGIS (COPY mode, GiST index built)."""
    query = server.query
    target = (
        f"PG:dbname={DATABASE} host={query['host']} port={query['port']} user={server.username}"
    )
    command = [
        "ogr2ogr", "-f", "PostgreSQL", target, str(gpkg), "parcels",
        "-nln", "public.peer_parcels", "-overwrite", "-gt", "100000",
        "-lco", "GEOMETRY_NAME=geom", "-nlt", "PROMOTE_TO_MULTI",
    ]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def main() -> None:
    parcels = int(sys.argv[1]) if len(sys.argv) > 1 else PARCELS
    cluster = EmbeddedCluster(Settings(data_dir=DATA_DIR))
    cluster.ensure_running()
    server = cluster.url()
    url = recreate_database(server, DATABASE)
    settings = Settings(database_url=url.render_as_string(hide_password=False), data_dir=DATA_DIR)
    ours = run_ours(settings, parcels)
    print(f"ours: demo load of {parcels} parcels in {ours:.1f} s")
    label = "demo_load_1m" if parcels == PARCELS else f"demo_load_{parcels}"
    if shutil.which("ogr2ogr") is None:
        print(f"RESULT {label} ours={ours:.1f} s")
        return
    with tempfile.TemporaryDirectory() as folder:
        gpkg = write_peer_input(parcels, Path(folder))
        peer = run_peer(server, gpkg)
    print(f"peer: ogr2ogr loaded the {parcels} parcels in {peer:.1f} s")
    print(f"RESULT {label} ours={ours:.1f} s peer={peer:.1f} s ratio={ours / peer:.3f}")


if __name__ == "__main__":
    main()
