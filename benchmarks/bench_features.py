"""OGC API – Features throughput against pygeoapi and TiPg on the same 1 000 000 parcels.

Protocol (performance-anchors.md §3): one PostGIS, one table of generated parcels, every
server with 2 worker processes and a pool of 4 connections per process on 127.0.0.1,
the same fixed list of requests replayed by ``wrk`` (1 thread, closed loop) at 1, 8 and
32 connections (``BENCH_CONNECTIONS``). All servers run at once and their passes
alternate: per level a warm-up of ``BENCH_WARMUP`` s (10), then ``BENCH_PASSES`` (5)
passes of ``BENCH_SECONDS`` (30) each, the median pass kept, so a change in the load of
the shared machine hits every server alike. Before any warm-up, freshly started servers
get one cold pass at 8 connections (``_cold`` lines): empty caches, pools and compiled
statements. The database is not restarted nor the OS cache dropped for it: the
benchmark cluster is shared with other benchmarks, which that would break. Each pass
reports req/s, p50/p95/p99 and the CPU split (the server's processes / PostgreSQL
backends of the bench database / wrk, in % of one core). The load average is printed
beside the figures. gzip is off (wrk asks for none). One ``RESULT`` line per scenario
and peer; ``PARITY`` lines show that both sides did the same work (features, ids, bytes).

Peers live in their own virtualenvs under ``var/peers/``, never in ``.venv``; they are
installed from PyPI on first use (``ensure_peer``): pygeoapi 0.21 (the last release for
Python 3.11; 0.22+ need 3.12) with its PostgreSQL provider under gunicorn, and TiPg 1.6
under uvicorn. ``wrk`` is a Debian package (``URBANGIS_SETUP_BENCH=1 scripts/setup``).

Data: ``URBANGIS_BENCH_DATABASE_URL`` (default: database ``urbangis_bench_features`` on
the benchmarks' embedded cluster in ``var/bench``) gets a square grid of
``BENCH_PARCELS`` parcels (25 m plots around central Cluj-Napoca, synthetic) with
TransDatRO twins, once. Peers serve ``bench.parcels_4326``: the same current parcels and
public columns with the geometry in EPSG:4326, GiST-indexed, so no peer pays for a
transformation we skip.

Run from the repository root: ``.venv/bin/python benchmarks/bench_features.py``.
"""

from __future__ import annotations

import http.client
import math
import os
import random
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote, urlsplit

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from gis_core import migrate, twins
from gis_core.crs import transform_coords
from gis_core.db import bulk_transaction, create_engine
from gis_core.embedded import EmbeddedCluster
from gis_core.settings import Settings

REPO = Path(__file__).resolve().parents[1]
PEERS = REPO / "var" / "peers"
# The benchmarks' own embedded cluster (not the test cluster other suites hammer).
DATA_DIR = REPO / "var" / "bench"
DATABASE = "urbangis_bench_features"
# Database connections per worker process, the same budget for every server (§3: 4).
POOL_SIZE = 4
PARCELS = int(os.environ.get("BENCH_PARCELS", "1000000"))
DURATION = int(os.environ.get("BENCH_SECONDS", "30"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "10"))
PASSES = int(os.environ.get("BENCH_PASSES", "5"))
CONNECTIONS = tuple(int(c) for c in os.environ.get("BENCH_CONNECTIONS", "1,8,32").split(","))
COLD_CONNECTIONS = 8
WORKERS = 2
# gunicorn's worker timeout (30 s by default): big pages on a loaded machine take longer
REQUEST_TIMEOUT = 600
THREADS = 4  # per worker: as many as the worker's pool has connections
PYGEOAPI = (
    "pygeoapi==0.21.0",
    "SQLAlchemy>=2.0,<2.1",
    "GeoAlchemy2>=0.15,<1",
    "pygeofilter>=0.3,<0.5",
    "psycopg2-binary>=2.9,<3",
    "gunicorn>=22,<28",
)
TIPG = ("tipg==1.6.1", "uvicorn>=0.30,<1")
PLOT = 25.0  # metres between parcel corners
CENTRE_E, CENTRE_N = 392_000.0, 586_000.0
SEED = 3844


# -- data ---------------------------------------------------------------------------------
def bench_url() -> URL:
    explicit = os.environ.get("URBANGIS_BENCH_DATABASE_URL")
    if explicit:
        return make_url(explicit).set(drivername="postgresql+psycopg")
    cluster = EmbeddedCluster(Settings(data_dir=DATA_DIR))
    cluster.ensure_running()
    return cluster.url().set(database=DATABASE)


def bench_settings() -> Settings:
    return Settings(
        database_url=bench_url().render_as_string(hide_password=False),
        data_dir=DATA_DIR,
        pool_size=POOL_SIZE,
    )


def prepare(parcels: int = PARCELS) -> Settings:
    """The bench database with ``parcels`` generated parcels (made once, then reused)."""
    settings = bench_settings()
    url = bench_url()
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": url.database}
        ).scalar()
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()
    engine = create_engine(settings)
    migrate.upgrade(engine, settings.storage_srid)
    with bulk_transaction(engine) as conn:
        loaded = conn.execute(
            sa.text(
                "SELECT count(*) FROM core.import_run WHERE kind = 'bench-grid' "
                "AND (parameters->>'parcels')::int = :n"
            ),
            {"n": parcels},
        ).scalar_one()
        if not loaded:
            started = time.perf_counter()
            generate_parcels(conn, parcels)
            print(f"generated {parcels} parcels in {time.perf_counter() - started:.0f} s")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE cadastre.parcel"))
        conn.execute(sa.text("VACUUM ANALYZE bench.parcels_4326"))
    engine.dispose()
    return settings


def generate_parcels(conn: sa.Connection, parcels: int) -> None:
    """A square grid of plots with TransDatRO twins, and the peers' EPSG:4326 copy."""
    side = math.isqrt(parcels)
    origin_e, origin_n = CENTRE_E - side * PLOT / 2, CENTRE_N - side * PLOT / 2
    conn.execute(sa.text("DELETE FROM cadastre.parcel"))
    conn.execute(
        sa.text(
            """
            INSERT INTO cadastre.parcel (uat_siruta, cadastral_number, cad_sector,
                measured_area, use_category, intravilan, address_text, geom, valid_from)
            SELECT 54975, (1000000 + i * :side + j)::text, (i / 40)::text,
                   400 + (i * 7 + j * 13) % 300,
                   CASE WHEN (i + j) % 3 = 0 THEN 'curți construcții' ELSE 'arabil' END,
                   true, 'Strada Bench nr. ' || j,
                   ST_Multi(ST_MakeEnvelope(:e + i * :plot, :n + j * :plot,
                                            :e + i * :plot + :plot - 0.5,
                                            :n + j * :plot + :plot - 0.5, 3844)),
                   '2024-01-01'
            FROM generate_series(0, :side - 1) AS i, generate_series(0, :side - 1) AS j
            """
        ),
        {"side": side, "e": origin_e, "n": origin_n, "plot": PLOT},
    )
    twins.fill_missing_twins(conn, "cadastre.parcel", 3844)
    conn.execute(sa.text("CREATE SCHEMA IF NOT EXISTS bench"))
    conn.execute(sa.text("DROP TABLE IF EXISTS bench.parcels_4326"))
    conn.execute(
        sa.text(
            """
            CREATE TABLE bench.parcels_4326 AS
            SELECT id, cadastral_number, cad_sector, measured_area, legal_area, use_category,
                   intravilan, address_text, valid_from,
                   ST_SetSRID(geom_etrs89, 4326)::geometry(MultiPolygon, 4326) AS geom
            FROM cadastre.parcel WHERE valid_to IS NULL
            """
        )
    )
    conn.execute(sa.text("ALTER TABLE bench.parcels_4326 ADD PRIMARY KEY (id)"))
    conn.execute(sa.text("CREATE INDEX ON bench.parcels_4326 USING gist (geom)"))
    conn.execute(
        sa.text(
            "INSERT INTO core.import_run (kind, source, parameters, status) "
            "VALUES ('bench-grid', 'benchmarks/bench_features.py', "
            "CAST(:p AS jsonb), 'succeeded')"
        ),
        {"p": orjson.dumps({"parcels": parcels}).decode()},
    )


def centre_boxes(count: int, size_m: float, spread_m: float) -> list[tuple[float, ...]]:
    """Random lon/lat boxes of ``size_m`` metres in the central ``spread_m`` square."""
    rng = random.Random(SEED)
    boxes: list[tuple[float, ...]] = []
    for _ in range(count):
        e = CENTRE_E + rng.uniform(-spread_m / 2, spread_m / 2)
        n = CENTRE_N + rng.uniform(-spread_m / 2, spread_m / 2)
        lon, lat = transform_coords(3844, 4326, [e, e + size_m], [n, n + size_m])
        boxes.append((float(lon[0]), float(lat[0]), float(lon[1]), float(lat[1])))
    return boxes


# -- tools and peers --------------------------------------------------------------------
def ensure_wrk() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit(
            "wrk is not installed: apt-get install wrk "
            "(or URBANGIS_SETUP_BENCH=1 bash scripts/setup)"
        )


def ensure_peer(name: str, requirements: tuple[str, ...]) -> Path:
    """The peer's own virtualenv ``var/peers/<name>-venv``, installed from PyPI once."""
    venv = PEERS / f"{name}-venv"
    stamp = venv / ".bench-requirements"
    wanted = "\n".join(requirements)
    if stamp.is_file() and stamp.read_text() == wanted:
        return venv / "bin"
    print(f"installing the {name} peer into {venv} from PyPI: {' '.join(requirements)}")
    PEERS.mkdir(parents=True, exist_ok=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    installed = subprocess.run([*pip, *requirements], check=False)
    if installed.returncode != 0:
        raise SystemExit(f"could not install the {name} peer; see the pip output above")
    stamp.write_text(wanted)
    return venv / "bin"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cores)"


# -- servers ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Server:
    name: str
    command: list[str]
    env: dict[str, str]
    ready_path: str
    port: int
    group: int = 0  # the process group once running: its CPU time is the server's

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running(server: Server, timeout: float = 180.0) -> Iterator[Server]:
    """Start ``server`` in its own process group; always stop that group (by its id)."""
    with tempfile.NamedTemporaryFile(
        prefix=f"bench-{server.name}-", suffix=".log", delete=False
    ) as log:
        process = subprocess.Popen(
            server.command,
            env={**os.environ, **server.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
        )
        try:
            _wait_ready(server, process, log.name, timeout)
            yield replace(server, group=process.pid)
        finally:
            _stop(process)


def _wait_ready(server: Server, process: subprocess.Popen[bytes], log: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{server.name} exited; see {log}")
        try:
            with urllib.request.urlopen(server.base + server.ready_path, timeout=30) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.name} did not start; see {log}")
        time.sleep(0.5)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server's own process group (started with ``start_new_session``)."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def our_server(
    settings: Settings,
    *,
    tile_cache: bool = True,
    name: str = "ours",
    factory: str = "bench_features:our_app",
) -> Server:
    """Our app under granian, the server ``urbangis serve`` runs (no access log, as for
    the peers)."""
    port = free_port()
    return Server(
        name=name,
        command=[
            str(REPO / ".venv" / "bin" / "granian"),
            "--interface",
            "wsgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(WORKERS),
            "--blocking-threads",
            str(THREADS),
            "--no-ws",
            "--log-level",
            "warning",
            "--factory",
            factory,
        ],
        env={
            "URBANGIS_DATABASE_URL": bench_url().render_as_string(hide_password=False),
            "URBANGIS_DATA_DIR": str(settings.data_dir),
            "URBANGIS_POOL_SIZE": str(POOL_SIZE),
            "BENCH_TILE_CACHE": "1" if tile_cache else "0",
            "PYTHONPATH": str(REPO / "benchmarks"),
        },
        ready_path="/ogc/features/collections/parcels",
        port=port,
    )


def our_app() -> object:
    """The server's factory: the real app; ``BENCH_TILE_CACHE=0`` switches the tile cache
    off."""
    from webmap.app import create_app

    app = create_app()
    if os.environ.get("BENCH_TILE_CACHE") == "0":
        app.config["URBANGIS_TILE_CACHE_BYTES"] = 0
    return app


def _libpq_parts(url: URL) -> dict[str, str]:
    host = str(url.query.get("host", url.host or "127.0.0.1"))
    port = str(url.query.get("port", url.port or 5432))
    return {"host": host, "port": port, "dbname": str(url.database), "user": str(url.username)}


def pygeoapi_server() -> Server:
    venv = ensure_peer("pygeoapi", PYGEOAPI)
    port = free_port()
    parts = _libpq_parts(bench_url())
    config = PEERS / "pygeoapi-bench.yml"
    config.write_text(
        PYGEOAPI_CONFIG.format(
            port=port,
            port_db=parts["port"],
            host=parts["host"],
            dbname=parts["dbname"],
            user=parts["user"],
        ),
        encoding="utf-8",
    )
    openapi = PEERS / "pygeoapi-bench-openapi.yml"
    generated = subprocess.run(
        [str(venv / "pygeoapi"), "openapi", "generate", str(config), "--output-file", str(openapi)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYGEOAPI_CONFIG": str(config)},
    )
    if generated.returncode != 0:
        raise RuntimeError(generated.stderr[-2000:])
    return Server(
        name="pygeoapi",
        command=[
            str(venv / "gunicorn"),
            "-w",
            str(WORKERS),
            "-k",
            "gthread",
            "--threads",
            str(THREADS),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "--timeout",
            str(REQUEST_TIMEOUT),
            "pygeoapi.flask_app:APP",
        ],
        env={"PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(openapi)},
        ready_path="/collections/parcels?f=json",
        port=port,
    )


def tipg_server() -> Server:
    venv = ensure_peer("tipg", TIPG)
    port = free_port()
    parts = _libpq_parts(bench_url())
    # TiPg's settings want a host in the URL: a socket directory goes there %-quoted
    dsn = f"postgresql://{parts['user']}@{quote(parts['host'], safe='')}:{parts['port']}/"
    dsn += parts["dbname"]
    return Server(
        name="tipg",
        command=[
            str(venv / "uvicorn"),
            "tipg.main:app",
            "--workers",
            str(WORKERS),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            # uvicorn restarts a worker that misses a 5 s health check: a worker busy
            # with a 5000-feature page on a loaded machine is not a dead one
            "--timeout-worker-healthcheck",
            str(REQUEST_TIMEOUT),
        ],
        env={
            "DATABASE_URL": dsn,
            "DB_MIN_CONN_SIZE": "1",
            "DB_MAX_CONN_SIZE": str(POOL_SIZE),
            "TIPG_DB_SCHEMAS": '["bench"]',
            "TIPG_MAX_FEATURES_PER_QUERY": "10000",
            "TIPG_TILE_BUFFER": "64",  # ours: 64 of 4096 (TiPg's default is 256)
        },
        ready_path="/collections/bench.parcels_4326",
        port=port,
    )


PYGEOAPI_CONFIG = """
server:
  bind: {{host: 127.0.0.1, port: {port}}}
  url: http://127.0.0.1:{port}
  mimetype: application/json; charset=UTF-8
  encoding: utf-8
  language: en-US
  limits: {{default_items: 10, max_items: 10000}}
  map: {{url: "https://tile.openstreetmap.org/{{z}}/{{x}}/{{y}}.png", attribution: OSM}}
logging: {{level: ERROR}}
metadata:
  identification:
    title: bench
    description: bench
    keywords: [bench]
    keywords_type: theme
    terms_of_service: "https://example.org/terms"
    url: "https://example.org"
  license: {{name: CC-BY 4.0, url: "https://creativecommons.org/licenses/by/4.0/"}}
  provider: {{name: bench, url: "https://example.org"}}
  contact:
    name: bench
    position: bench
    address: bench
    city: bench
    stateorprovince: bench
    postalcode: "0"
    country: RO
    phone: "0"
    fax: "0"
    email: bench@example.org
    url: "https://example.org"
    hours: always
    instructions: none
    role: pointOfContact
resources:
  parcels:
    type: collection
    title: parcels
    description: parcels
    keywords: [parcels]
    extents:
      spatial: {{bbox: [-180, -90, 180, 90], crs: "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}}
    providers:
      - type: feature
        name: PostgreSQL
        data:
          host: {host}
          port: {port_db}
          dbname: {dbname}
          user: {user}
          password: ""
          search_path: [bench, public]
        id_field: id
        table: parcels_4326
        geom_field: geom
"""


# -- load -----------------------------------------------------------------------------
WRK_SCRIPT = """
local paths = {{}}
for line in io.lines("{paths}") do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  io.write(string.format("PERCENTILES %d %d %d\\n", latency:percentile(50),
    latency:percentile(95), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class Pass:
    """One wrk pass: requests per second, latency percentiles (milliseconds) and the CPU
    used meanwhile in % of one core: the server's processes, the PostgreSQL backends of
    the bench database, wrk."""

    rate: float
    p50: float
    p99: float
    p95: float = float("nan")
    cpu: tuple[float, float, float] = (float("nan"), float("nan"), float("nan"))


def wrk(base: str, paths: list[str], seconds: int, connections: int, group: int = 0) -> Pass:
    """Replay ``paths`` in order (closed loop); any non-2xx answer aborts the run.
    ``group``: the server's process group, whose CPU time is measured."""
    with tempfile.TemporaryDirectory() as folder:
        path_file = Path(folder) / "paths.txt"
        path_file.write_text("\n".join(paths) + "\n")
        script = Path(folder) / "paths.lua"
        script.write_text(WRK_SCRIPT.format(paths=path_file))
        command = ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s"]
        command += ["--timeout", "60s", "--latency", "-s", str(script), base]
        before = _cpu_snapshot(group)
        started = time.perf_counter()
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        cpu = _cpu_split(before, _cpu_snapshot(group), time.perf_counter() - started)
    if "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"errors while loading {base}:\n{output}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", output)
    spread = re.search(r"^PERCENTILES (\d+) (\d+) (\d+)$", output, re.MULTILINE)
    if not found or not spread:
        raise RuntimeError(output)
    p50, p95, p99 = (int(v) / 1000 for v in spread.groups())  # from microseconds
    return Pass(float(found.group(1)), p50, p99, p95, cpu)


@dataclass(frozen=True)
class _Cpu:
    """CPU seconds so far: per process of the server and of the bench database's
    backends, and of the children this script waited for (wrk)."""

    app: dict[int, float]
    postgres: dict[int, float]
    children: float


def _cpu_snapshot(group: int) -> _Cpu:
    tick = os.sysconf("SC_CLK_TCK")
    title = f" {bench_url().database} ".encode()
    app: dict[int, float] = {}
    postgres: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            used = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
            if group and int(fields[2]) == group:
                app[int(entry.name)] = used
            elif "(postgres)" in stat and title in (entry / "cmdline").read_bytes():
                postgres[int(entry.name)] = used
        except (OSError, ValueError, IndexError):
            continue  # the process ended meanwhile
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return _Cpu(app, postgres, children.ru_utime + children.ru_stime)


def _cpu_split(before: _Cpu, after: _Cpu, seconds: float) -> tuple[float, float, float]:
    def spent(old: dict[int, float], new: dict[int, float]) -> float:
        return sum(used - old.get(pid, 0.0) for pid, used in new.items())

    return (
        100 * spent(before.app, after.app) / seconds,
        100 * spent(before.postgres, after.postgres) / seconds,
        100 * (after.children - before.children) / seconds,
    )


def median_pass(runs: list[Pass]) -> Pass:
    return sorted(runs, key=lambda r: r.rate)[len(runs) // 2]


def compare(
    servers: dict[str, tuple[Server, list[str]]], connections: int, scale: int = 1
) -> dict[str, Pass]:
    """Warm every server up, then alternate their passes; the median pass of each.
    ``scale`` lengthens the passes of slow scenarios (a pass must hold many requests)."""
    for server, paths in servers.values():
        wrk(server.base, paths, WARMUP * scale, connections)
    passes: dict[str, list[Pass]] = {name: [] for name in servers}
    for _ in range(PASSES):
        for name, (server, paths) in servers.items():
            passes[name].append(
                wrk(server.base, paths, DURATION * scale, connections, server.group)
            )
    return {name: median_pass(runs) for name, runs in passes.items()}


def cold_pass(servers: dict[str, tuple[Server, list[str]]], scale: int = 1) -> dict[str, Pass]:
    """One pass of each freshly started server before any warm-up (``COLD_CONNECTIONS``)."""
    return {
        name: wrk(server.base, paths, DURATION * scale, COLD_CONNECTIONS, server.group)
        for name, (server, paths) in servers.items()
    }


def fetch(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.status, response.read()


def first_byte_ms(base: str, path: str) -> float:
    """Milliseconds from sending the request to the first byte of the body."""
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(str(parts.hostname), parts.port, timeout=60)
    try:
        started = time.perf_counter()
        connection.request("GET", path)
        response = connection.getresponse()
        response.read(1)
        elapsed = (time.perf_counter() - started) * 1000
        response.read()
        return elapsed
    finally:
        connection.close()


def report(scenario: str, ours: float, peer: float, note: str = "") -> None:
    ratio = f"{ours / peer:.2f}" if peer else "inf"
    line = f"RESULT {scenario} ours={ours:.1f} peer={peer:.1f} ratio={ratio}"
    print(line + (f"  # {note}" if note else ""), flush=True)


def report_passes(scenario: str, connections: int | str, found: dict[str, Pass]) -> None:
    for name, run in found.items():
        app, postgres, load = run.cpu
        print(
            f"  {scenario} c={connections} {name}: {run.rate:.1f} req/s "
            f"p50={run.p50:.1f} ms p95={run.p95:.1f} ms p99={run.p99:.1f} ms "
            f"cpu app/pg/wrk={app:.0f}/{postgres:.0f}/{load:.0f} %",
            flush=True,
        )


# -- parity ---------------------------------------------------------------------------
def feature_ids(body: bytes) -> list[str]:
    return [str(f["id"]) for f in orjson.loads(body)["features"]]


def parity(
    scenario: str,
    servers: dict[str, tuple[Server, list[str]]],
    ids_of: Callable[[bytes], list[str]] = feature_ids,
    sample: int = 5,
) -> None:
    """Same work on both sides: features, shared ids and bytes over a sample of paths."""
    totals: dict[str, tuple[int, int]] = {}
    id_sets: dict[str, set[str]] = {}
    for name, (server, paths) in servers.items():
        count = size = 0
        seen: set[str] = set()
        for path in paths[:sample]:
            status, body = fetch(server.base + path)
            if status != 200:
                raise RuntimeError(f"{name} answered {status} to {path}")
            found = ids_of(body)
            count += len(found)
            size += len(body)
            seen.update(found)
        totals[name] = (count, size)
        id_sets[name] = seen
    ours_count, ours_bytes = totals["ours"]
    for name, (count, size) in totals.items():
        if name == "ours":
            continue
        shared = len(id_sets["ours"] & id_sets[name])
        print(
            f"PARITY {scenario} vs {name}: features ours={ours_count} peer={count}, "
            f"shared ids={shared}/{len(id_sets['ours'])}, bytes ours/peer="
            f"{ours_bytes / max(size, 1):.2f}",
            flush=True,
        )


def feature_paths(limit: int, boxes: list[tuple[float, ...]]) -> dict[str, list[str]]:
    def bbox(box: tuple[float, ...]) -> str:
        return ",".join(f"{v:.6f}" for v in box)

    return {
        "ours": [
            f"/ogc/features/collections/parcels/items?bbox={bbox(b)}&limit={limit}" for b in boxes
        ],
        "pygeoapi": [
            f"/collections/parcels/items?f=json&bbox={bbox(b)}&limit={limit}" for b in boxes
        ],
        "tipg": [
            f"/collections/bench.parcels_4326/items?f=geojson&bbox={bbox(b)}&limit={limit}"
            for b in boxes
        ],
    }


def servers_for(settings: Settings, stack: ExitStack) -> dict[str, Server]:
    """Ours and both peers, freshly started (stopped when ``stack`` closes)."""
    return {
        "ours": stack.enter_context(running(our_server(settings))),
        "pygeoapi": stack.enter_context(running(pygeoapi_server())),
        "tipg": stack.enter_context(running(tipg_server())),
    }


def main() -> None:
    ensure_wrk()
    settings = prepare()
    scenarios = {
        "items_bbox_limit100": feature_paths(100, centre_boxes(300, 400.0, 5_000.0)),
        "items_bbox_limit5000": feature_paths(5000, centre_boxes(40, 2_500.0, 5_000.0)),
    }
    chosen = os.environ.get("BENCH_SCENARIOS")  # e.g. items_bbox_limit5000
    if chosen:
        scenarios = {k: v for k, v in scenarios.items() if k in chosen.split(",")}
    print(f"load average before: {load_average()}", flush=True)
    for scenario, paths in scenarios.items():
        # a pass must hold many requests: big pages get passes of 30 s at least
        scale = max(1, math.ceil(30 / DURATION)) if "5000" in scenario else 1
        with ExitStack() as stack:  # fresh servers per scenario, for its cold pass
            servers = servers_for(settings, stack)
            plan = {name: (server, paths[name]) for name, server in servers.items()}
            found = cold_pass(plan, scale)
            report_passes(scenario, "cold", found)
            report_ratios(f"{scenario}_cold", found)
            parity(scenario, plan)
            for connections in CONNECTIONS:
                found = compare(plan, connections, scale)
                report_passes(scenario, connections, found)
                report_ratios(scenario + ("" if connections == 8 else f"_c{connections}"), found)
            if "5000" in scenario:
                first_bytes = {
                    name: statistics.median(
                        first_byte_ms(servers[name].base, path) for path in paths[name][:15]
                    )
                    for name in ("ours", "pygeoapi")
                }
                report(
                    f"{scenario}_first_byte_ms_vs_pygeoapi",
                    first_bytes["ours"],
                    first_bytes["pygeoapi"],
                    f"milliseconds, lower is better (target <= 0.2); load {load_average()}",
                )
    print(f"load average after: {load_average()}", flush=True)


def report_ratios(scenario: str, found: dict[str, Pass]) -> None:
    ours = found["ours"]
    for name in ("pygeoapi", "tipg"):
        target = "1.0" if name == "tipg" else ("10" if "5000" in scenario else "3")
        report(
            f"{scenario}_vs_{name}",
            ours.rate,
            found[name].rate,
            f"req/s, target >= {target}; ours p50/p95/p99={ours.p50:.1f}/{ours.p95:.1f}/"
            f"{ours.p99:.1f} ms; load {load_average()}",
        )


if __name__ == "__main__":
    main()
