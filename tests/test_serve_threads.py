"""``urbangis serve`` with request threads (granian's blocking threads, gunicorn's threaded
worker): kept-alive connections and many concurrent location checks on few processes."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from gis_core.db import create_engine
from gis_core.settings import Settings
from tests.test_serve import free_port, server_environment, stop_server
from webmap.auth import create_api_key
from webmap.cli import main
from webmap.commands import serve

URBANGIS = Path(sys.executable).parent / "urbangis"
STARTUP_TIMEOUT_S = 60
CLIENTS = 8
CHECKS_PER_CLIENT = 15


def test_threads_choose_the_worker_class(tmp_path: Path) -> None:
    threaded = serve.gunicorn_command(Settings(data_dir=tmp_path, threads=4, server="gunicorn"))
    assert threaded[threaded.index("--worker-class") + 1] == "gthread"
    assert threaded[threaded.index("--threads") + 1] == "4"
    single = serve.gunicorn_command(Settings(data_dir=tmp_path, threads=1))
    assert single[single.index("--worker-class") + 1] == "sync"
    # One request at a time per worker by default: on two cores the fastest and the
    # steadiest (a second thread only waits for the first one's interpreter lock).
    default = Settings(data_dir=tmp_path)
    assert default.threads == 1
    granian = serve.granian_command(default)
    assert granian[granian.index("--blocking-threads") + 1] == "1"


def test_threads_option_reaches_the_workers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("HOST", "PORT", "WORKERS", "THREADS"):
        monkeypatch.setenv(f"URBANGIS_{name}", "")
        monkeypatch.delenv(f"URBANGIS_{name}")
    monkeypatch.setenv("URBANGIS_DATA_DIR", str(tmp_path))
    seen: dict[str, Settings] = {}
    monkeypatch.setattr(serve, "prepare_database", lambda settings: None)
    monkeypatch.setattr(serve, "exec_server", lambda settings: seen.setdefault("server", settings))
    result = CliRunner().invoke(main, ["serve", "--threads", "6"])
    assert result.exit_code == 0, result.output
    assert seen["server"].threads == 6
    assert os.environ["URBANGIS_THREADS"] == "6"
    refused = CliRunner().invoke(main, ["serve", "--threads", "0"])
    assert refused.exit_code != 0 and "threads" in refused.output.lower()


def wait_ready(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"urbangis serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/api/v1/")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"the API did not answer within {STARTUP_TIMEOUT_S} s:\n{log.read_text()}")


def _checks(port: int, key: str, numbers: list[str]) -> list[tuple[int, list[str], str]]:
    """One client: location checks one after another on one kept-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    seen = []
    try:
        for number in numbers:
            connection.request(
                "POST",
                "/api/v1/location-check",
                body=orjson.dumps({"cadastral_numbers": [number]}),
                headers={"Content-Type": "application/json", "X-API-Key": key},
            )
            answer = connection.getresponse()
            document = orjson.loads(answer.read())
            found = [p["cadastral_number"] for p in document.get("parcels", [])]
            seen.append((answer.status, found, answer.getheader("Connection") or ""))
    finally:
        connection.close()
    return seen


@pytest.mark.parametrize("server", ["granian", "gunicorn"])
def test_threaded_server_answers_concurrent_checks_on_kept_alive_connections(
    server: str, location_demo_settings: Settings, tmp_path: Path
) -> None:
    engine = create_engine(location_demo_settings)
    with engine.begin() as conn:
        key = create_api_key(conn, "threads-test", "portal", rate_limit_per_minute=100_000)
        numbers = list(
            conn.execute(
                sa.text(
                    "SELECT cadastral_number FROM cadastre.parcel WHERE valid_to IS NULL "
                    "ORDER BY id LIMIT :n"
                ),
                {"n": CLIENTS * CHECKS_PER_CLIENT},
            ).scalars()
        )
    engine.dispose()
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(URBANGIS), "serve"],
            env=server_environment(
                location_demo_settings,
                HOST="127.0.0.1",
                PORT=str(port),
                WORKERS="1",
                THREADS="3",
                SERVER=server,
            ),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_ready(port, process, log)
            batches = [numbers[i::CLIENTS] for i in range(CLIENTS)]
            with ThreadPoolExecutor(CLIENTS) as pool:
                results = list(pool.map(lambda batch: _checks(port, key, batch), batches))
        finally:
            stop_server(process)
    for batch, seen in zip(batches, results, strict=True):
        assert [status for status, _, _ in seen] == [200] * len(batch), log.read_text()
        assert [found for _, found, _ in seen] == [[number] for number in batch]
        assert all(connection.lower() != "close" for _, _, connection in seen)
    text = log.read_text().lower()
    if server == "gunicorn":
        assert "using worker: gthread" in text, text
    else:
        assert "starting granian" in text, text
