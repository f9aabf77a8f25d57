"""``urbangis serve``: the web server, on a database that exists and is migrated.

Production runs gunicorn from the same virtual environment; ``--dev`` runs Flask's
debug server. Before either starts, the database is started (embedded) or created
(external, when allowed) and migrated, so ``urbangis serve`` works on a fresh data
folder. gunicorn replaces this process (``exec``): signals such as SIGTERM reach its
master directly, and the workers read their settings from the same environment, to
which the command-line overrides are added as ``URBANGIS_HOST/PORT/WORKERS/THREADS``.

With ``threads`` > 1 (the default) each worker is gunicorn's threaded worker: a request
waiting on PostgreSQL no longer idles its process, several requests share one database
round trip's latency, and clients' connections are kept alive between requests instead
of being closed after each answer (the sync worker's way). The API pool has at least one
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

# gunicorn loads this in every worker after fork (no --preload): each builds its own app.
WSGI_APP = "webmap.wsgi:app"
# Seconds a request may run beyond the statement timeout before gunicorn kills the worker.
TIMEOUT_MARGIN_S = 30


@click.command(name="serve")
@click.option("--dev", is_flag=True, help="Run Flask's debug server (auto-reload, tracebacks).")
@click.option("--host", default=None, help="Address to bind (default: URBANGIS_HOST).")
@click.option("--port", type=int, default=None, help="Port to bind (default: URBANGIS_PORT).")
@click.option(
    "--workers", type=int, default=None, help="gunicorn worker processes (URBANGIS_WORKERS)."
)
@click.option(
    "--threads",
    type=int,
    default=None,
    help="Request threads per worker; 1 = sync workers (URBANGIS_THREADS).",
)
def group(
    dev: bool, host: str | None, port: int | None, workers: int | None, threads: int | None
) -> None:
    """Serve the web map, API and OGC services."""
    overrides: dict[str, object | None] = {
        "host": host,
        "port": port,
        "workers": workers,
        "threads": threads,
    }
    settings = with_overrides(current_settings(), overrides)
    prepare_database(settings)
    if dev:
        run_dev_server(settings)
        return
    exec_gunicorn(settings)


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


def gunicorn_command(settings: Settings) -> list[str]:
    """The gunicorn command line: bind, workers and threads, logs to stdout/stderr, request
    timeout."""
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    timeout = settings.statement_timeout_ms // 1000 + TIMEOUT_MARGIN_S
    return [
        str(gunicorn_executable()),
        "--bind",
        f"{host}:{settings.port}",
        "--workers",
        str(settings.workers),
        "--worker-class",
        "gthread" if settings.threads > 1 else "sync",
        "--threads",
        str(settings.threads),
        "--timeout",
        str(timeout),
        "--access-logfile",
        "-",
        "--error-logfile",
        "-",
        "--name",
        "urbangis",
        *optional_gunicorn_flags(),
        WSGI_APP,
    ]


def optional_gunicorn_flags() -> list[str]:
    """Flags only some gunicorn versions know.

    Newer gunicorn opens a control socket at one fixed path per user; two servers (a
    second instance, the test suite) would fight over it, and urbangis does not use it.
    """
    from gunicorn.config import KNOWN_SETTINGS

    known = {setting.name for setting in KNOWN_SETTINGS}
    return ["--no-control-socket"] if "control_socket_disable" in known else []


def gunicorn_executable() -> Path:
    """gunicorn of this virtual environment (not whatever is first on PATH)."""
    executable = Path(sys.executable).parent / "gunicorn"
    if not executable.exists():
        raise ConfigurationError(
            f"gunicorn is not installed beside {sys.executable}; run scripts/setup"
        )
    return executable


def exec_gunicorn(settings: Settings) -> None:
    """Replace this process with gunicorn (it never returns)."""
    command = gunicorn_command(settings)
    click.echo(f"urbangis: serving on http://{settings.host}:{settings.port}/", err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)  # noqa: S606 -- a fixed argv, no shell involved


def run_dev_server(settings: Settings) -> None:
    """Flask's debug server with the reloader: for development only."""
    from webmap.app import create_app

    create_app(settings).run(host=settings.host, port=settings.port, debug=True)
