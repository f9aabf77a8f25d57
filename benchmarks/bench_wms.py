"""WMS GetMap throughput against MapServer 8 on the same PostGIS tables.

Protocol (performance-anchors.md §3, the same harness as ``bench_features.py``): one
PostGIS, 1 000 000 generated parcels (25 m plots around central Cluj-Napoca, synthetic)
and 2 500 generated UTR zones of one approved PUG, both with their TransDatRO twins.
Ours: the real app under granian (as ``urbangis serve``), 2 workers. The peer: Debian's
MapServer 8 as FastCGI under lighttpd with 2 ``mapserv`` processes, reading the same current parcels
(``bench.parcels_4326``, the twin geometries) and the same public zone rows (the twin
column of ``urbanism.zone``), with equivalent styles (parcels filled and outlined,
cadastral numbers from 1:2500, zones coloured by the UTR code's function, their codes
as labels). Requests: GetMap PNG (RGBA) of parcels+zones in EPSG:3857 at 1.19 m/pixel
(web zoom 17) over random places within 2 km of the centre, 256×256 and 1024×768.
``wrk`` replays the same list on both (1 thread, closed loop, 8 connections), passes
alternate, the median is kept. ``PARITY`` lines compare image size, bytes and the
share of painted pixels.

Data: database ``urbangis_bench_ows`` on the benchmarks' embedded cluster (a copy of
``bench_features``'s parcels when that database exists and is idle, else generated),
made once. Needs ``mapserv``, ``lighttpd`` and ``wrk`` (``bash scripts/setup``).
Run from the repository root: ``.venv/bin/python benchmarks/bench_wms.py``
(``BENCH_SCENARIOS=1024`` runs only the scenarios whose name holds one of the given words).
"""

from __future__ import annotations

import io
import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import bench_features as harness
import numpy as np
import sqlalchemy as sa
from PIL import Image
from sqlalchemy.engine import URL

from gis_core import migrate, twins
from gis_core.crs import transform_coords
from gis_core.db import bulk_transaction, create_engine
from gis_core.embedded import EmbeddedCluster
from gis_core.settings import Settings

DATABASE = "urbangis_bench_ows"
ZONE_SIZE = 500.0  # metres
UTR_CODES = ("L1a", "M2", "V1a", "A1", "IS", "CB1", "T1")
RESOLUTION = 1.194  # metres per pixel at web zoom 17
SEED = 3857
FONT = (
    Path(__file__).resolve().parents[1]
    / ".venv/lib/python3.11/site-packages/mapnik/lib/mapnik/fonts/DejaVuSans.ttf"
)


# -- data -------------------------------------------------------------------------------
def ows_url() -> URL:
    explicit = os.environ.get("URBANGIS_BENCH_OWS_DATABASE_URL")
    if explicit:
        return sa.engine.make_url(explicit).set(drivername="postgresql+psycopg")
    cluster = EmbeddedCluster(Settings(data_dir=harness.DATA_DIR))
    cluster.ensure_running()
    return cluster.url().set(database=DATABASE)


def ows_settings() -> Settings:
    return Settings(
        database_url=ows_url().render_as_string(hide_password=False),
        data_dir=harness.DATA_DIR,
        pool_size=harness.POOL_SIZE,
    )


def prepare() -> Settings:
    """The bench database with parcels and zones (made once, then reused)."""
    settings = ows_settings()
    url = ows_url()
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": url.database}
        ).scalar()
        if not exists:
            _create(conn, str(url.database))
    admin.dispose()
    engine = create_engine(settings)
    migrate.upgrade(engine, settings.storage_srid)
    with bulk_transaction(engine) as conn:
        runs = {str(kind) for (kind,) in conn.execute(sa.text("SELECT kind FROM core.import_run"))}
        if "bench-grid" not in runs:
            started = time.perf_counter()
            harness.generate_parcels(conn, harness.PARCELS)
            print(f"generated parcels in {time.perf_counter() - started:.0f} s", flush=True)
        if "bench-zones" not in runs:
            generate_zones(conn, harness.PARCELS)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("cadastre.parcel", "urbanism.zone", "bench.parcels_4326"):
            conn.execute(sa.text(f"VACUUM ANALYZE {table}"))
    engine.dispose()
    return settings


def _create(conn: sa.Connection, name: str) -> None:
    """A copy of the features benchmark's database when it is idle, else an empty one."""
    source = harness.DATABASE
    try:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{source}"'))
        print(f"copied {source} into {name}", flush=True)
    except sa.exc.DBAPIError:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))


def generate_zones(conn: sa.Connection, parcels: int) -> None:
    """Square UTR zones of one approved PUG over the parcel grid, with their twins."""
    side = math.isqrt(parcels) * harness.PLOT
    count = max(int(side // ZONE_SIZE), 1)
    origin_e, origin_n = harness.CENTRE_E - side / 2, harness.CENTRE_N - side / 2
    plan = conn.execute(
        sa.text(
            "INSERT INTO urbanism.plan (uat_siruta, plan_type, title, hcl_number, status, "
            "valid_from) VALUES (54975, 'PUG', 'PUG bench', '1/2014', 'approved', "
            "'2014-01-01') RETURNING id"
        )
    ).scalar_one()
    conn.execute(
        sa.text(
            """
            INSERT INTO urbanism.zone (plan_id, utr_code, function, geom, valid_from)
            SELECT :plan, (CAST(:codes AS text[]))[1 + (i * 7 + j * 3) % 7], 'bench',
                   ST_Multi(ST_MakeEnvelope(:e + i * :size, :n + j * :size,
                                            :e + (i + 1) * :size, :n + (j + 1) * :size,
                                            3844)),
                   '2015-01-01'
            FROM generate_series(0, :count - 1) AS i, generate_series(0, :count - 1) AS j
            """
        ),
        {
            "plan": plan,
            "codes": list(UTR_CODES),
            "e": origin_e,
            "n": origin_n,
            "size": ZONE_SIZE,
            "count": count,
        },
    )
    twins.fill_missing_twins(conn, "urbanism.zone", 3844)
    conn.execute(
        sa.text(
            "INSERT INTO core.import_run (kind, source, parameters, status) VALUES "
            "('bench-zones', 'benchmarks/bench_wms.py', '{}'::jsonb, 'succeeded')"
        )
    )


def map_boxes(count: int, width: int, height: int) -> list[tuple[float, float, float, float]]:
    """EPSG:3857 boxes of ``width``×``height`` pixels at zoom 17 within 2 km of the centre."""
    rng = random.Random(SEED + width)
    lon, lat = transform_coords(3844, 4326, harness.CENTRE_E, harness.CENTRE_N)
    x0, y0 = transform_coords(4326, 3857, lon, lat)
    boxes = []
    for _ in range(count):
        x = float(x0) + rng.uniform(-2000, 2000)
        y = float(y0) + rng.uniform(-2000, 2000)
        half_w, half_h = width * RESOLUTION / 2, height * RESOLUTION / 2
        boxes.append((x - half_w, y - half_h, x + half_w, y + half_h))
    return boxes


# -- servers ----------------------------------------------------------------------------
def our_server(settings: Settings) -> harness.Server:
    server = harness.our_server(settings)
    env = {
        **server.env,
        "URBANGIS_DATABASE_URL": ows_url().render_as_string(hide_password=False),
    }
    return harness.Server(
        server.name,
        server.command,
        env,
        "/ogc/wfs?SERVICE=WFS&REQUEST=GetCapabilities",
        server.port,
    )


def _conninfo(url: URL) -> str:
    parts = harness._libpq_parts(url)
    return " ".join(f"{k}={v}" for k, v in parts.items())


MAPFILE = """
MAP
  NAME "bench"
  SIZE 256 256
  EXTENT 2600000 5900000 2650000 5950000
  UNITS METERS
  FONTSET "{fontset}"
  PROJECTION "init=epsg:3857" END
  CONFIG "MS_ERRORFILE" "stderr"
  OUTPUTFORMAT
    NAME "png" DRIVER AGG/PNG MIMETYPE "image/png" IMAGEMODE RGBA EXTENSION "png"
  END
  OUTPUTFORMAT
    NAME "geojson" DRIVER "OGR/GEOJSON" MIMETYPE "application/json; subtype=geojson"
    FORMATOPTION "STORAGE=stream" FORMATOPTION "FORM=SIMPLE"
  END
  WEB
    METADATA
      "ows_enable_request" "*"
      "ows_title" "bench"
      "ows_onlineresource" "http://127.0.0.1:{port}/mapserv?"
      "ows_srs" "EPSG:4326 EPSG:3857 EPSG:3844"
      "wfs_getfeature_formatlist" "geojson"
      "wms_feature_info_mime_type" "text/html"
    END
  END
  LAYER
    NAME "zones" TYPE POLYGON STATUS ON
    CONNECTIONTYPE POSTGIS CONNECTION "{conninfo}"
    DATA "{zones_data}"
    PROJECTION "init=epsg:4258" END
    PROCESSING "CLOSE_CONNECTION=DEFER"
    METADATA
      "wms_title" "zones" "wfs_title" "zones" "gml_include_items" "all" "wfs_featureid" "id"
    END
    CLASSITEM "utr_code"
    LABELITEM "utr_code"
    {zone_classes}
  END
  LAYER
    NAME "parcels" TYPE POLYGON STATUS ON
    CONNECTIONTYPE POSTGIS CONNECTION "{conninfo}"
    DATA "geom FROM bench.parcels_4326 USING UNIQUE id USING SRID=4326"
    PROJECTION "init=epsg:4326" END
    PROCESSING "CLOSE_CONNECTION=DEFER"
    METADATA
      "wms_title" "parcels" "wfs_title" "parcels" "gml_include_items" "all"
      "wfs_featureid" "id" "gml_types" "auto"
    END
    LABELITEM "cadastral_number"
    CLASS
      STYLE COLOR 244 228 193 OPACITY 65 END
      STYLE OUTLINECOLOR 140 109 63 WIDTH 0.6 END
      LABEL TYPE TRUETYPE FONT "dejavu" SIZE 9 COLOR 59 42 20 OUTLINECOLOR 255 255 255
        OUTLINEWIDTH 1 POSITION CC PARTIALS FALSE MAXSCALEDENOM 2500 END
    END
  END
END
"""
# The public zone rows, as the catalog's row rule has them (approved plans in force).
ZONES_DATA = (
    "geom FROM (SELECT z.id, z.utr_code, z.geom_etrs89 AS geom FROM urbanism.zone z "
    "JOIN urbanism.plan p ON p.id = z.plan_id WHERE p.status = 'approved' AND "
    "(p.valid_to IS NULL OR p.valid_to >= current_date) AND z.valid_to IS NULL) AS t "
    "USING UNIQUE id USING SRID=4258"
)
ZONE_COLOURS = (
    ("^L", "246 213 142"),
    ("^M", "244 162 97"),
    ("^C", "231 111 81"),
    ("^A", "179 157 219"),
    ("^I", "239 111 143"),
    ("^V", "143 209 138"),
    ("^T", "176 183 191"),
)


def _zone_classes() -> str:
    parts = []
    for regex, colour in ZONE_COLOURS:
        parts.append(
            f"CLASS EXPRESSION /{regex}/ STYLE COLOR {colour} OPACITY 65 END "
            "STYLE OUTLINECOLOR 49 130 189 WIDTH 0.8 END "
            'LABEL TYPE TRUETYPE FONT "dejavu" SIZE 11 COLOR 8 48 107 OUTLINECOLOR 255 255 255 '
            "OUTLINEWIDTH 1 POSITION CC MAXSCALEDENOM 25000 END END"
        )
    parts.append(
        "CLASS STYLE COLOR 158 202 225 OPACITY 65 END "
        "STYLE OUTLINECOLOR 49 130 189 WIDTH 0.8 END END"
    )
    return "\n    ".join(parts)


CONFIG = """
CONFIG
  ENV
    "MS_MAPFILE" "{mapfile}"
  END
END
"""
LIGHTTPD = """
server.document-root = "{root}"
server.bind = "127.0.0.1"
server.port = {port}
server.modules = ("mod_fastcgi")
server.errorlog = "{root}/error.log"
fastcgi.server = ( "/mapserv" => ((
    "bin-path" => "{mapserv}",
    "socket" => "{root}/mapserv.sock",
    "max-procs" => {workers},
    "check-local" => "disable",
    "bin-environment" => (
        "MS_MAPFILE" => "{mapfile}", "MAPSERVER_CONFIG_FILE" => "{root}/mapserver.conf"
    ),
)))
"""


def ensure_mapserver() -> tuple[str, str]:
    mapserv = shutil.which("mapserv") or "/usr/lib/cgi-bin/mapserv"
    lighttpd = shutil.which("lighttpd") or "/usr/sbin/lighttpd"
    if not Path(mapserv).exists() or not Path(lighttpd).exists():
        raise SystemExit(
            "MapServer or lighttpd is missing: apt-get install cgi-mapserver lighttpd "
            "(or bash scripts/setup)"
        )
    return mapserv, lighttpd


@contextmanager
def mapserver_server() -> Iterator[harness.Server]:
    """MapServer 8 FastCGI (2 processes) behind lighttpd, in a temporary folder."""
    mapserv, lighttpd = ensure_mapserver()
    port = harness.free_port()
    with tempfile.TemporaryDirectory(prefix="bench-mapserver-") as folder:
        root = Path(folder)
        (root / "fonts.txt").write_text(f"dejavu {FONT}\n")
        # MapServer 8 refuses to start without a configuration file.
        (root / "mapserver.conf").write_text(CONFIG.format(mapfile=root / "bench.map"))
        mapfile = root / "bench.map"
        mapfile.write_text(
            MAPFILE.format(
                port=port,
                conninfo=_conninfo(ows_url()),
                fontset=root / "fonts.txt",
                zone_classes=_zone_classes(),
                zones_data=ZONES_DATA,
            )
        )
        config = root / "lighttpd.conf"
        config.write_text(
            LIGHTTPD.format(
                root=root, port=port, mapserv=mapserv, workers=harness.WORKERS, mapfile=mapfile
            )
        )
        server = harness.Server(
            name="mapserver",
            command=[lighttpd, "-D", "-f", str(config)],
            env={},
            ready_path="/mapserv?SERVICE=WMS&REQUEST=GetCapabilities",
            port=port,
        )
        with harness.running(server) as started:
            yield started


# -- scenarios --------------------------------------------------------------------------
def getmap_paths(
    boxes: list[tuple[float, float, float, float]], width: int, height: int
) -> dict[str, list[str]]:
    def query(box: tuple[float, float, float, float]) -> str:
        bbox = ",".join(f"{v:.2f}" for v in box)
        return (
            f"SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=zones,parcels&STYLES=,"
            f"&CRS=EPSG:3857&BBOX={bbox}&WIDTH={width}&HEIGHT={height}&FORMAT=image/png"
        )

    return {
        "ours": [f"/ogc/wms?{query(b)}" for b in boxes],
        "mapserver": [f"/mapserv?{query(b)}" for b in boxes],
    }


def painted(body: bytes) -> float:
    """The share of pixels that are neither transparent nor the white background."""
    picture = np.asarray(Image.open(io.BytesIO(body)).convert("RGBA"))
    drawn = (picture[..., 3] > 0) & (picture[..., :3] != 255).any(axis=-1)
    return float(drawn.mean())


def image_parity(scenario: str, servers: dict[str, tuple[harness.Server, list[str]]]) -> None:
    found = {}
    for name, (server, paths) in servers.items():
        sizes, shares, total = set(), [], 0
        for path in paths[:5]:
            status, body = harness.fetch(server.base + path)
            if status != 200 or not body.startswith(b"\x89PNG"):
                raise RuntimeError(f"{name} did not answer a PNG to {path}: {body[:300]!r}")
            sizes.add(Image.open(io.BytesIO(body)).size)
            shares.append(painted(body))
            total += len(body)
        found[name] = (sizes, sum(shares) / len(shares), total)
    ours, peer = found["ours"], found["mapserver"]
    print(
        f"PARITY {scenario}: size ours={sorted(ours[0])} peer={sorted(peer[0])}, painted "
        f"ours={ours[1]:.2f} peer={peer[1]:.2f}, bytes ours/peer={ours[2] / max(peer[2], 1):.2f}",
        flush=True,
    )


def count_postgres_cpu_here() -> None:
    """The harness's CPU split counts the backends of ``URBANGIS_BENCH_DATABASE_URL``'s
    database: point it at this benchmark's database (not ``bench_features``')."""
    os.environ["URBANGIS_BENCH_DATABASE_URL"] = ows_url().render_as_string(hide_password=False)


def selected(scenarios: dict[str, Any]) -> dict[str, Any]:
    """The scenarios named in ``BENCH_SCENARIOS`` (comma-separated substrings), or all."""
    wanted = [w for w in os.environ.get("BENCH_SCENARIOS", "").split(",") if w]
    if not wanted:
        return scenarios
    return {name: value for name, value in scenarios.items() if any(w in name for w in wanted)}


def main() -> None:
    harness.ensure_wrk()
    settings = prepare()
    count_postgres_cpu_here()
    scenarios = {
        "wms_getmap_256": getmap_paths(map_boxes(300, 256, 256), 256, 256),
        "wms_getmap_1024x768": getmap_paths(map_boxes(60, 1024, 768), 1024, 768),
    }
    scenarios = selected(scenarios)
    print(f"load average before: {harness.load_average()}", flush=True)
    results = {}
    with ExitStack() as stack:
        servers = {
            "ours": stack.enter_context(harness.running(our_server(settings))),
            "mapserver": stack.enter_context(mapserver_server()),
        }
        for scenario, paths in scenarios.items():
            plan = {name: (server, paths[name]) for name, server in servers.items()}
            image_parity(scenario, plan)
            for connections in harness.CONNECTIONS:
                results[(scenario, connections)] = harness.compare(plan, connections)
                harness.report_passes(scenario, connections, results[(scenario, connections)])
    print(f"load average after: {harness.load_average()}", flush=True)
    for (scenario, connections), found in results.items():
        suffix = "" if connections == 8 else f"_c{connections}"
        harness.report(
            f"{scenario}_vs_mapserver{suffix}",
            found["ours"].rate,
            found["mapserver"].rate,
            "req/s, higher is better (target >= 0.8)",
        )


if __name__ == "__main__":
    main()
