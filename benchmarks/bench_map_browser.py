"""Web map timings in a real browser (headless Chromium) against ``urbangis serve``.

Measures, on a fresh database holding the demo (25 000 parcels by default), with the
production server the README tells operators to run (``urbangis serve``: granian, one
app per worker process) and the machine's load average printed beside the figures:
- map_interactive: from navigation to the map having drawn its layers (``data-ready``)
  on a deep link; peer: the same page's DOMContentLoaded (HTML + scripts, no data);
- parcel_card: from a click on the map to the card rendered (identify through
  ``/api/v1/parcels?lon&lat``, then the parcel status ``/api/v1/parcels/{n}``); peer:
  the parcel status JSON fetched alone by the same page (network and server only);
- extract_pdf: the urbanism extract over HTTP; peer: the parcel status over HTTP (the
  extract prints that very answer, so the ratio is the cost of the map and the PDF).

Usage: .venv/bin/python benchmarks/bench_map_browser.py [--parcels N] [--rounds R]
       [--workers W]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.sync_api import sync_playwright

from gis_core import migrate
from gis_core.db import create_engine
from gis_core.settings import Settings
from importers.demo.generate import DemoParameters
from importers.demo.load import load_demo
from tests.conftest import TEST_DATA_DIR, _server_url, drop_database, fresh_database

URBANGIS = Path(sys.executable).parent / "urbangis"
CHROMIUM = "/usr/bin/chromium"


def result(name: str, ours: list[float], peer: list[float]) -> None:
    o, p = statistics.median(ours), statistics.median(peer)
    print(f"RESULT {name} ours={o:.1f} ms peer={p:.1f} ms ratio={o / p:.2f}")


def fetch_ms(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        response.read()
    return (time.perf_counter() - started) * 1000


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} cores"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(
    settings: Settings, database_url: str, workers: int, log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    """``urbangis serve`` on a free port, configured by environment like an operator's."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("URBANGIS_")}
    env.update(
        URBANGIS_DATABASE_URL=database_url,
        URBANGIS_DATA_DIR=str(settings.data_dir),
        URBANGIS_STORAGE_SRID=str(settings.storage_srid),
        URBANGIS_OSM_TILES_URL="",
    )
    command = [str(URBANGIS), "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers)]
    process = subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"urbangis serve exited:\n{log.read_text()}")
        try:
            fetch_ms(f"{base}/healthz")
            return process, base
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit(f"urbangis serve did not answer:\n{log.read_text()}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# Pauses let the tiles of the new view arrive first, so click and peer fetch each meet an
# idle page (both still share the server with whatever else the machine is doing).
CLICK_TO_CARD = """async ([n, lon, lat]) => {
    const m = window.urbangisMap.map;
    const pause = (ms) => new Promise((r) => setTimeout(r, ms));
    m.setView([lat, lon], 18, {animate: false});
    await pause(1500);
    const xy = m.latLngToContainerPoint([lat, lon]);
    const t1 = performance.now();
    m.fire('click', {latlng: m.containerPointToLatLng(xy)});
    await new Promise((resolve) => {
      const poll = () => document.querySelector('#map').dataset.card === n
        ? resolve() : setTimeout(poll, 5);
      poll();
    });
    const cardMs = performance.now() - t1;
    await pause(1000);
    const t0 = performance.now();
    await (await fetch('/api/v1/parcels/' + n)).json();
    return {card: cardMs, json: performance.now() - t0};
}"""


def sample(settings: Settings, count: int) -> list[tuple[str, float, float]]:
    """Parcels spread over the city, each with a point inside it (ETRS89 twin)."""
    engine = create_engine(settings)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT cadastral_number, ST_X(c), ST_Y(c) FROM (SELECT cadastral_number, "
            "ST_PointOnSurface(geom_etrs89) AS c FROM cadastre.parcel WHERE valid_to IS NULL "
            "ORDER BY md5(cadastral_number) LIMIT %(n)s) AS q",
            {"n": count},
        ).all()
    engine.dispose()
    return [(str(n), float(x), float(y)) for n, x, y in rows]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parcels", type=int, default=25_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    server = _server_url()
    name = "urbangis_bench_map"
    database_url = fresh_database(server, name).render_as_string(hide_password=False)
    settings = Settings(
        database_url=database_url,
        data_dir=TEST_DATA_DIR,
        osm_tiles_url="",
    )
    engine = create_engine(settings)
    migrate.upgrade(engine, 3844)
    load_demo(engine, DemoParameters(parcels=args.parcels))
    engine.dispose()
    parcels = sample(settings, args.rounds * 2)
    log = TEST_DATA_DIR / "bench_map_browser.log"
    ready, dom, card, card_json, pdf, pdf_peer = [], [], [], [], [], []
    print(f"before: {load_average()}")
    process, base = start_server(settings, database_url, args.workers, log)
    try:
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            # One warm-up page: each worker builds its app, pools and catalog on first use.
            warm = browser.new_page()
            warm.goto(f"{base}/map?parcel={parcels[0][0]}")
            warm.wait_for_selector("#map[data-ready='1']", timeout=60_000)
            warm.close()
            for (number, _, _), (other, lon, lat) in zip(parcels[::2], parcels[1::2], strict=True):
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                started = time.perf_counter()
                page.goto(f"{base}/map?parcel={number}", wait_until="domcontentloaded")
                dom.append((time.perf_counter() - started) * 1000)
                page.wait_for_selector(f"#map[data-card='{number}']", timeout=60_000)
                page.wait_for_selector("#map[data-ready='1']", timeout=60_000)
                ready.append((time.perf_counter() - started) * 1000)
                timing = page.evaluate(CLICK_TO_CARD, [other, lon, lat])
                card.append(timing["card"])
                card_json.append(timing["json"])
                pdf.append(fetch_ms(f"{base}/parcels/{number}/extract.pdf"))
                pdf_peer.append(fetch_ms(f"{base}/api/v1/parcels/{number}"))
                page.close()
            browser.close()
    finally:
        stop_server(process)
        drop_database(server, name)
    print(f"after: {load_average()}")
    print(
        f"parcels={args.parcels} rounds={args.rounds} server=urbangis serve (granian, "
        f"{args.workers} workers)"
    )
    print(f"map interactive p50={statistics.median(ready):.0f} ms max={max(ready):.0f} ms")
    print(f"parcel card p50={statistics.median(card):.0f} ms max={max(card):.0f} ms")
    print(f"extract pdf p50={statistics.median(pdf):.0f} ms max={max(pdf):.0f} ms")
    result("map_interactive", ready, dom)
    result("parcel_card", card, card_json)
    result("extract_pdf", pdf, pdf_peer)


if __name__ == "__main__":
    main()
