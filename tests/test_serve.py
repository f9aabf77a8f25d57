"""``urbangis serve``: the real servers (granian, gunicorn) answer /healthz, and the command
line."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from gis_core.settings import Settings
from webmap.cli import main
from webmap.commands import serve

URBANGIS = Path(sys.executable).parent / "urbangis"
STARTUP_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_environment(settings: Settings, **extra: str) -> dict[str, str]:
    """The test settings as the URBANGIS_* variables an operator would export, plus
    ``extra`` ones (``HOST="..."`` → ``URBANGIS_HOST``)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("URBANGIS_")}
    assert settings.database_url is not None
    env.update(
        URBANGIS_DATABASE_URL=settings.database_url.get_secret_value(),
        URBANGIS_DATA_DIR=str(settings.data_dir),
        URBANGIS_STORAGE_SRID=str(settings.storage_srid),
    )
    env.update({f"URBANGIS_{name}": value for name, value in extra.items()})
    return env


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the servers' graceful stop), then SIGKILL if it has not ended in 30 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _wait_for_health(url: str, process: subprocess.Popen[bytes], log: Path) -> dict[str, object]:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"urbangis serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            status, body = _get(url)
        except OSError:
            status, body = 0, b""
        if status == 200:
            report: dict[str, object] = orjson.loads(body)
            return report
        time.sleep(0.3)
    pytest.fail(f"/healthz did not answer 200 within {STARTUP_TIMEOUT_S} s:\n{log.read_text()}")


@pytest.mark.parametrize("server", ["granian", "gunicorn"])
def test_serve_runs_the_server(server: str, settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    command = [str(URBANGIS), "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", "1", "--server", server]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, env=server_environment(settings), stdout=output, stderr=subprocess.STDOUT
        )
        try:
            base = f"http://127.0.0.1:{port}"
            report = _wait_for_health(f"{base}/healthz", process, log)
            assert report["status"] == "ok"
            assert report["storage_srid"] == settings.storage_srid
            status, page = _get(f"{base}/map")
            assert status == 200
            assert b'id="map"' in page
        finally:
            stop_server(process)
    text = log.read_text()
    assert process.returncode == 0, text
    assert server in text.lower()
    assert '"GET /healthz HTTP/1.1" 200' in text, "the access log goes to stdout"


# -- the command line, without starting servers ------------------------------------------
def test_granian_is_the_default_server(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, host="::1", port=8123, workers=3, threads=5)
    assert settings.server == "granian"
    command = serve.server_command(settings)
    assert Path(command[0]) == Path(sys.executable).parent / "granian"
    assert command[command.index("--interface") + 1] == "wsgi"
    assert command[command.index("--host") + 1] == "::1"
    assert command[command.index("--port") + 1] == "8123"
    assert command[command.index("--workers") + 1] == "3"
    assert command[command.index("--blocking-threads") + 1] == "5"
    assert "--no-access-log" in command, "the app writes the access log"
    assert command[-1] == serve.LOGGED_WSGI_APP == "webmap.wsgi:logged_app"
    quiet = serve.server_command(Settings(data_dir=tmp_path, access_log=False))
    assert quiet[-1] == serve.WSGI_APP


def test_gunicorn_command(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, host="::1", port=8123, workers=3, server="gunicorn")
    command = serve.server_command(settings)
    assert Path(command[0]) == Path(sys.executable).parent / "gunicorn"
    assert command[command.index("--bind") + 1] == "[::1]:8123"
    assert command[command.index("--workers") + 1] == "3"
    assert "--access-logfile" not in command, "the app writes the access log"
    assert command[-1] == serve.LOGGED_WSGI_APP


def test_options_override_settings_and_reach_the_workers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("HOST", "PORT", "WORKERS"):
        monkeypatch.setenv(f"URBANGIS_{name}", "")
        monkeypatch.delenv(f"URBANGIS_{name}")
    monkeypatch.setenv("URBANGIS_DATA_DIR", str(tmp_path))
    seen: dict[str, Settings] = {}
    monkeypatch.setattr(serve, "prepare_database", lambda settings: None)
    monkeypatch.setattr(serve, "exec_server", lambda settings: seen.setdefault("server", settings))
    monkeypatch.setattr(serve, "run_dev_server", lambda settings: seen.setdefault("dev", settings))

    result = CliRunner().invoke(main, ["serve", "--port", "8124", "--workers", "4"])
    assert result.exit_code == 0, result.output
    assert (seen["server"].port, seen["server"].workers) == (8124, 4)
    assert os.environ["URBANGIS_PORT"] == "8124"  # the server's workers read the same
    assert os.environ["URBANGIS_WORKERS"] == "4"

    result = CliRunner().invoke(main, ["serve", "--dev", "--host", "0.0.0.0"])
    assert result.exit_code == 0, result.output
    assert seen["dev"].host == "0.0.0.0"


def test_bad_option_value_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("URBANGIS_PORT", "5000")
    monkeypatch.setenv("URBANGIS_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(serve, "prepare_database", lambda settings: None)
    result = CliRunner().invoke(main, ["serve", "--port", "70000"])
    assert result.exit_code == 2
    assert "URBANGIS_PORT" in result.output
