"""Location check throughput: ``POST /api/v1/location-check`` against pgbench running the
same SQL.

Protocol (performance-anchors.md §3, scenario S1, peer A): the demo municipality with
``BENCH_PARCELS`` parcels (default 1 000 000) in its own database on the benchmarks'
embedded cluster (``var/bench``), loaded once by the demo loader. Ours is
``urbangis serve`` as deployed (granian, 2 workers with the default request threads;
``BENCH_THREADS`` sets ``URBANGIS_THREADS``, 1 = sync workers) with an API key, driven by
``wrk`` (1
thread, closed loop, 8 connections) replaying a fixed list of requests: one cadastral
number per request, or one point (lon/lat, as the portal sends it). The peer is
``pgbench -M prepared -c 8 -j 2`` running, for the very same inputs, the one statement
the endpoint runs (parcels, zones, restrictions and acts together): the database-only
ceiling. Passes alternate (warm-up, then
``BENCH_PASSES`` of ``BENCH_SECONDS`` each, median kept) so a change in the machine's
load hits both alike. Latency percentiles come from wrk's and pgbench's own logs.

Prints ``RESULT location_check_number ...`` and ``RESULT location_check_point ...`` with
requests per second, the ratio ours/peer (target ≥ 0.45) and p50/p95/p99 (target p95 ≤
15 ms). Run from the repository root: ``.venv/bin/python benchmarks/bench_location_check.py``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from gis_core import migrate
from gis_core.access import create_api_key
from gis_core.crs import transform_coords
from gis_core.db import create_engine
from gis_core.embedded import EmbeddedCluster
from gis_core.settings import Settings
from importers.demo.generate import DemoParameters
from importers.demo.load import load_demo

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = REPO / "var" / "bench"
PARCELS = int(os.environ.get("BENCH_PARCELS", "1000000"))
# One database per size: a run at another size never reloads (and locks) the database a
# run at the reference size is reading.
DATABASE = "urbangis_bench_location" + ("" if PARCELS == 1_000_000 else f"_{PARCELS}")
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "8"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "20"))
PASSES = int(os.environ.get("BENCH_PASSES", "3"))
WARMUP = 15
WORKERS = 2
THREADS = os.environ.get("BENCH_THREADS")  # None: the setting's default
INPUTS = 100  # distinct requests per scenario (pgbench takes at most 128 scripts)
SEED = 5


# -- data -----------------------------------------------------------------------------------
def bench_url() -> URL:
    explicit = os.environ.get("URBANGIS_BENCH_DATABASE_URL")
    if explicit:
        return make_url(explicit).set(drivername="postgresql+psycopg")
    cluster = EmbeddedCluster(Settings(data_dir=DATA_DIR))
    cluster.ensure_running()
    return cluster.url().set(database=DATABASE)


def prepare() -> Settings:
    """The bench database with the demo of ``PARCELS`` parcels (loaded once, then reused)."""
    url = bench_url()
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": url.database}
        ).scalar()
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()
    settings = Settings(database_url=url.render_as_string(hide_password=False), data_dir=DATA_DIR)
    engine = create_engine(settings)
    migrate.upgrade(engine, settings.storage_srid)
    started = time.perf_counter()
    report = load_demo(engine, DemoParameters(parcels=PARCELS), skip_if_loaded=True, progress=print)
    if not report.skipped:
        print(f"demo with {PARCELS} parcels loaded in {time.perf_counter() - started:.0f} s")
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
    engine.dispose()
    return settings


@dataclass(frozen=True)
class Inputs:
    numbers: list[str]
    points_xy: list[tuple[float, float]]  # storage CRS
    points_lonlat: list[tuple[float, float]]
    api_key: str


def pick_inputs(settings: Settings) -> Inputs:
    """Random current parcels (numbers) and random points inside parcels, fixed seed."""
    engine = create_engine(settings)
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT setseed(:s)"), {"s": SEED / 100})
        numbers = list(
            conn.execute(
                sa.text(
                    "SELECT cadastral_number FROM cadastre.parcel TABLESAMPLE BERNOULLI (1) "
                    "REPEATABLE (7) WHERE valid_to IS NULL ORDER BY random() LIMIT :n"
                ),
                {"n": INPUTS},
            ).scalars()
        )
        rows = conn.execute(
            sa.text(
                "SELECT ST_X(pt), ST_Y(pt) FROM (SELECT ST_PointOnSurface(geom) AS pt "
                "FROM cadastre.parcel TABLESAMPLE BERNOULLI (1) REPEATABLE (11) "
                "WHERE valid_to IS NULL ORDER BY random() LIMIT :n) s"
            ),
            {"n": INPUTS},
        ).all()
        key = create_api_key(conn, "benchmark", "portal", rate_limit_per_minute=10_000_000)
    engine.dispose()
    xy = [(float(x), float(y)) for x, y in rows]
    lon, lat = transform_coords(settings.storage_srid, 4326, [p[0] for p in xy], [p[1] for p in xy])
    lonlat = [(round(float(a), 8), round(float(b), 8)) for a, b in zip(lon, lat, strict=True)]
    return Inputs(numbers, xy, lonlat, key)


# -- the peer: pgbench with the endpoint's own statements --------------------------------------
def sql_literal(value: Any) -> str:
    """A value as SQL text for pgbench scripts (inputs are ours: numbers, plain text)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, bytes):
        return f"'\\x{value.hex()}'"
    if isinstance(value, list):
        inner = ",".join('"' + str(v).replace('"', "") + '"' for v in value)
        return "'{" + inner + "}'"
    return "'" + str(value).replace("'", "''") + "'"


def render(statement: str, params: dict[str, Any]) -> str:
    """The statement with every ``:name`` replaced by its literal (longest names first)."""
    text = statement
    for name in sorted(params, key=len, reverse=True):
        literal = sql_literal(params[name])
        text = re.sub(rf"(?<![:\w]):{name}\b", literal.replace("\\", "\\\\"), text)
    return " ".join(text.split()) + ";"


def peer_scripts(settings: Settings, inputs: Inputs, mode: str, folder: Path) -> list[Path]:
    """One pgbench script per input: the location statement the endpoint runs (parcels,
    zones, restrictions and acts in one statement), with that input's values."""
    from permits.location_sql import location_statement

    now = datetime.now(UTC)
    # Points arrive as longitude/latitude: the endpoint runs the "lonlat" statement.
    statement = location_statement("numbers" if mode == "numbers" else "lonlat", False).sql
    scripts = []
    for index in range(INPUTS):
        params: dict[str, Any] = {
            "uat": settings.uat_siruta,
            "t": now.isoformat(),
            "day": now.date().isoformat(),
            "nearby": settings.api_nearby_m,
            "with_geometry": False,
            "wkb": None,
            "lon": None,
            "lat": None,
        }
        if mode == "numbers":
            params["numbers"] = [inputs.numbers[index]]
        else:
            params["lon"], params["lat"] = inputs.points_lonlat[index]
        script = folder / f"{mode}_{index:03d}.sql"
        script.write_text(render(statement, params) + "\n")
        scripts.append(script)
    return scripts


@dataclass(frozen=True)
class Pass:
    rate: float
    p50: float
    p95: float
    p99: float


def pgbench(url: URL, scripts: list[Path], seconds: int) -> Pass:
    host = str(url.query.get("host", url.host or "127.0.0.1"))
    with tempfile.TemporaryDirectory() as folder:
        command = ["pgbench", "-n", "-M", "prepared", "-c", str(CONNECTIONS), "-j", "2"]
        command += ["-T", str(seconds), "-l", "--log-prefix", f"{folder}/log"]
        command += ["-h", host, "-p", str(url.port or 5432), "-U", str(url.username)]
        for script in scripts:
            command += ["-f", f"{script}@1"]
        command.append(str(url.database))
        # Under the API's statement timeout, like ours: a statement stuck behind a lock
        # (someone reloading the bench database) ends the run with an error instead of
        # leaving pgbench waiting for it.
        options = f"-c statement_timeout={Settings().api_statement_timeout_ms}"
        env = {**os.environ, "PGPASSWORD": url.password or "", "PGOPTIONS": options}
        output = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
        found = re.search(r"tps = ([\d.]+)", output.stdout)
        if not found:
            raise RuntimeError(output.stdout + output.stderr)
        latencies = []
        for log in Path(folder).glob("log*"):
            for line in log.read_text().splitlines():
                latencies.append(int(line.split()[2]) / 1000)
    return Pass(float(found.group(1)), *percentiles(latencies))


def percentiles(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    if not ordered:
        return float("nan"), float("nan"), float("nan")
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return pick(0.50), pick(0.95), pick(0.99)


# -- ours: urbangis serve, driven by wrk ---------------------------------------------------------
WRK_SCRIPT = """
local bodies = {{}}
for line in io.lines("{bodies}") do bodies[#bodies + 1] = line end
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "{key}"
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, "/api/v1/location-check", nil, bodies[i])
end
done = function(summary, latency, requests)
  io.write(string.format("PCT %d %d %d\\n", latency:percentile(50), latency:percentile(95),
                         latency:percentile(99)))
end
"""


def wrk(base: str, bodies: list[bytes], key: str, seconds: int) -> Pass:
    with tempfile.TemporaryDirectory() as folder:
        body_file = Path(folder) / "bodies.txt"
        body_file.write_bytes(b"\n".join(bodies) + b"\n")
        script = Path(folder) / "post.lua"
        script.write_text(WRK_SCRIPT.format(bodies=body_file, key=key))
        command = ["wrk", "-t", "1", "-c", str(CONNECTIONS), "-d", f"{seconds}s"]
        command += ["--timeout", "30s", "-s", str(script), base]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"errors while loading {base}:\n{output}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    pct = re.search(r"PCT (\d+) (\d+) (\d+)", output)
    if not rate or not pct:
        raise RuntimeError(output)
    p50, p95, p99 = (int(v) / 1000 for v in pct.groups())
    return Pass(float(rate.group(1)), p50, p95, p99)


@contextmanager
def our_server(settings: Settings) -> Iterator[str]:
    """``urbangis serve`` with 2 workers, in its own process group (stopped by its id)."""
    port = _free_port()
    env = {
        **os.environ,
        "URBANGIS_DATABASE_URL": bench_url().render_as_string(hide_password=False),
        "URBANGIS_DATA_DIR": str(DATA_DIR),
        "URBANGIS_WORKERS": str(WORKERS),
        "URBANGIS_PORT": str(port),
    }
    if THREADS:
        env["URBANGIS_THREADS"] = THREADS
    command = [str(REPO / ".venv" / "bin" / "urbangis"), "serve"]
    with tempfile.NamedTemporaryFile(prefix="bench-location-", suffix=".log", delete=False) as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(base + "/api/v1/", process, log.name)
            yield base
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: str) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"urbangis serve exited; see {log}")
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"urbangis serve did not start; see {log}")


def request_bodies(inputs: Inputs, mode: str) -> list[bytes]:
    if mode == "numbers":
        return [orjson.dumps({"cadastral_numbers": [n]}) for n in inputs.numbers]
    return [
        orjson.dumps({"geometry": {"type": "Point", "coordinates": [lon, lat]}})
        for lon, lat in inputs.points_lonlat
    ]


def parity(base: str, inputs: Inputs, mode: str, scripts: list[Path], url: URL) -> None:
    """Ours and the peer's statement name the same parcels for the first inputs."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        for index in range(3):
            body = request_bodies(inputs, mode)[index]
            request = urllib.request.Request(
                base + "/api/v1/location-check",
                data=body,
                headers={"Content-Type": "application/json", "X-API-Key": inputs.api_key},
            )
            with urllib.request.urlopen(request, timeout=30) as answer:
                ours = orjson.loads(answer.read())
            first = scripts[index].read_text().split(";\n")[0]
            peer = orjson.loads(conn.exec_driver_sql(first).scalar_one())
            mine = [p["cadastral_number"] for p in ours["parcels"]]
            theirs = [p["cadastral_number"] for p in peer["parcels"]]
            zones = [z["utr_code"] for z in ours["zones"]] == [z["utr_code"] for z in peer["zones"]]
            if mine != theirs or not zones:
                raise RuntimeError(f"parity failed for {mode} #{index}: {mine} vs {theirs}")
            print(f"PARITY {mode} #{index}: parcels {mine} zones {len(ours['zones'])} ok")
    engine.dispose()


def median_pass(runs: list[Pass]) -> Pass:
    return sorted(runs, key=lambda r: r.rate)[len(runs) // 2]


def main() -> None:
    for tool in ("wrk", "pgbench"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (URBANGIS_SETUP_BENCH=1 scripts/setup)")
    settings = prepare()
    url = bench_url()
    inputs = pick_inputs(settings)
    with tempfile.TemporaryDirectory() as folder, our_server(settings) as base:
        scenarios = {
            "numbers": (
                "location_check_number",
                peer_scripts(settings, inputs, "numbers", Path(folder)),
            ),
            "point": (
                "location_check_point",
                peer_scripts(settings, inputs, "point", Path(folder)),
            ),
        }
        for mode, (_, scripts) in scenarios.items():
            parity(base, inputs, mode, scripts, url)
        for mode, (name, scripts) in scenarios.items():
            bodies = request_bodies(inputs, mode)
            wrk(base, bodies, inputs.api_key, WARMUP)
            pgbench(url, scripts, WARMUP)
            ours: list[Pass] = []
            peer: list[Pass] = []
            for _ in range(PASSES):
                ours.append(wrk(base, bodies, inputs.api_key, SECONDS))
                peer.append(pgbench(url, scripts, SECONDS))
            mine, theirs = median_pass(ours), median_pass(peer)
            load = " ".join(f"{v:.2f}" for v in os.getloadavg())
            print(
                f"  {name} c={CONNECTIONS} threads={THREADS or Settings().threads}: "
                f"ours {[round(p.rate, 1) for p in ours]} req/s, "
                f"peer {[round(p.rate, 1) for p in peer]} tps; load {load}",
                flush=True,
            )
            print(
                f"RESULT {name} ours={mine.rate:.1f} peer={theirs.rate:.1f} "
                f"ratio={mine.rate / theirs.rate:.2f} "
                f"p50={mine.p50:.1f}ms p95={mine.p95:.1f}ms p99={mine.p99:.1f}ms "
                f"peer_p50={theirs.p50:.1f}ms peer_p95={theirs.p95:.1f}ms "
                f"peer_p99={theirs.p99:.1f}ms",
                flush=True,
            )


if __name__ == "__main__":
    main()
