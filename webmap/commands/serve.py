"""``urbangis serve``: the web server, on a database that exists and is migrated.

Production runs granian (the default) or gunicorn from the same virtual environment;
``--dev`` runs Flask's debug server. Before any starts, the database is started
(embedded) or created (external, when allowed) and migrated, so ``urbangis serve`` works
on a fresh data folder. The server replaces this process (``exec``): signals such as
SIGTERM reach it directly, and its workers read their settings from the same environment,
to which the command-line overrides are added as ``URBANGIS_HOST/PORT/WORKERS/THREADS``.

granian parses HTTP, keeps connections alive and writes answers in Rust; Python runs only
the WSGI app, in ``threads`` blocking threads per worker. On two cores it answered a
minimal Flask view about three times as often per second as gunicorn's threaded worker
(whose HTTP handling is Python), and fixed bytes, like a cached tile, about six times.
gunicorn stays available (``URBANGIS_SERVER=gunicorn``) for deployments that want its
watchdog: it kills a worker stuck past the request timeout.

One thread a worker is the default: granian keeps every client's connection alive in
Rust while Python answers one request at a time, with no other thread of its process
to wait for. With ``threads`` > 1 a request waiting on PostgreSQL no longer idles its
process, which pays on more cores, or when some requests are long (big exports) and
must not hold up the short ones behind them; gunicorn needs more than one thread to keep
connections alive at all (its threaded worker). The API pool has at least one
connection per thread, so a thread never waits for another's connection.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from gis_core import migrate
from gis_core.db import create_engine, database_url, ensure_database_exists
from gis_core.errors import ConfigurationError
from gis_core.settings import Settings, load_settings
from webmap.commands.context import current_settings

# The server loads one of these in every worker (no preloading): each builds its own app.
WSGI_APP = "webmap.wsgi:app"
LOGGED_WSGI_APP = "webmap.wsgi:logged_app"  # the app writing the access log
# Seconds a request may run beyond the statement timeout before gunicorn kills the worker.
TIMEOUT_MARGIN_S = 30


@click.command(name="serve")
@click.option("--dev", is_flag=True, help="Run Flask's debug server (auto-reload, tracebacks).")
@click.option("--host", default=None, help="Address to bind (default: URBANGIS_HOST).")
@click.option("--port", type=int, default=None, help="Port to bind (default: URBANGIS_PORT).")
@click.option(
    "--workers", type=int, default=None, help="Server worker processes (URBANGIS_WORKERS)."
)
@click.option(
    "--threads",
    type=int,
    default=None,
    help="Request threads per worker; 1 = sync workers (URBANGIS_THREADS).",
)
@click.option(
    "--server",
    type=click.Choice(["granian", "gunicorn"]),
    default=None,
    help="HTTP server (URBANGIS_SERVER; default granian).",
)
def group(
    dev: bool,
    host: str | None,
    port: int | None,
    workers: int | None,
    threads: int | None,
    server: str | None,
) -> None:
    """Serve the web map, API and OGC services."""
    overrides: dict[str, object | None] = {
        "host": host,
        "port": port,
        "workers": workers,
        "threads": threads,
        "server": server,
    }
    settings = with_overrides(current_settings(), overrides)
    prepare_database(settings)
    if dev:
        run_dev_server(settings)
        return
    exec_server(settings)


def with_overrides(settings: Settings, overrides: dict[str, object | None]) -> Settings:
    """The settings with the command-line values given, validated like the environment."""
    given = {name: value for name, value in overrides.items() if value is not None}
    if not given:
        return settings
    for name, value in given.items():
        os.environ[f"URBANGIS_{name.upper()}"] = str(value)
    return load_settings()


def prepare_database(settings: Settings) -> None:
    """Start (embedded) or create (external) the database, then migrate it to head."""
    url = database_url(settings)
    if not settings.embedded:
        ensure_database_exists(url)
    engine = create_engine(settings, pool_size=1)
    try:
        revision = migrate.upgrade(engine, settings.storage_srid)
    finally:
        engine.dispose()
    click.echo(f"urbangis: database ready (schema {revision})", err=True)


def server_command(settings: Settings) -> list[str]:
    """The command line of the configured server."""
    if settings.server == "gunicorn":
        return gunicorn_command(settings)
    return granian_command(settings)


def wsgi_target(settings: Settings) -> str:
    """The app the server runs: the access log is the app's own (``webmap.access_log``),
    the servers' slower ones stay off."""
    return LOGGED_WSGI_APP if settings.access_log else WSGI_APP


def granian_command(settings: Settings) -> list[str]:
    """The granian command line: WSGI, workers and blocking threads, and a graceful stop
    that lets the longest statement finish."""
    return [
        str(venv_executable("granian")),
        "--interface",
        "wsgi",
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--workers",
        str(settings.workers),
        "--blocking-threads",
        str(settings.threads),
        "--no-ws",
        "--no-access-log",
        "--respawn-failed-workers",
        "--workers-kill-timeout",
        str(request_timeout_s(settings)),
        wsgi_target(settings),
    ]


def gunicorn_command(settings: Settings) -> list[str]:
    """The gunicorn command line: bind, workers and threads, errors to stderr, request
    timeout."""
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return [
        str(venv_executable("gunicorn")),
        "--bind",
        f"{host}:{settings.port}",
        "--workers",
        str(settings.workers),
        "--worker-class",
        "gthread" if settings.threads > 1 else "sync",
        "--threads",
        str(settings.threads),
        "--timeout",
        str(request_timeout_s(settings)),
        "--error-logfile",
        "-",
        "--name",
        "urbangis",
        *optional_gunicorn_flags(),
        wsgi_target(settings),
    ]


def request_timeout_s(settings: Settings) -> int:
    """Seconds a request may run: the statement timeout and a margin."""
    return settings.statement_timeout_ms // 1000 + TIMEOUT_MARGIN_S


def optional_gunicorn_flags() -> list[str]:
    """Flags only some gunicorn versions know.

    Newer gunicorn opens a control socket at one fixed path per user; two servers (a
    second instance, the test suite) would fight over it, and urbangis does not use it.
    """
    from gunicorn.config import KNOWN_SETTINGS

    known = {setting.name for setting in KNOWN_SETTINGS}
    return ["--no-control-socket"] if "control_socket_disable" in known else []


def venv_executable(name: str) -> Path:
    """A server of this virtual environment (not whatever is first on PATH)."""
    executable = Path(sys.executable).parent / name
    if not executable.exists():
        raise ConfigurationError(
            f"{name} is not installed beside {sys.executable}; run scripts/setup"
        )
    return executable


def exec_server(settings: Settings) -> None:
    """Replace this process with the configured server (it never returns)."""
    command = server_command(settings)
    click.echo(
        f"urbangis: serving on http://{settings.host}:{settings.port}/ with {settings.server}",
        err=True,
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)  # noqa: S606 -- a fixed argv, no shell involved


def run_dev_server(settings: Settings) -> None:
    """Flask's debug server with the reloader: for development only."""
    from webmap.app import create_app

    create_app(settings).run(host=settings.host, port=settings.port, debug=True)
