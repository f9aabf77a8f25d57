"""``urbangis db``: the embedded cluster's life cycle and the schema migrations.

The same commands work against an external server (``URBANGIS_DATABASE_URL``): start and
stop then only check the connection, and the database and PostGIS are created if missing.
"""

from __future__ import annotations

import click
import sqlalchemy as sa

from gis_core import migrate
from gis_core.db import create_engine, database_url, ensure_database_exists, server_versions
from gis_core.embedded import EmbeddedCluster
from gis_core.errors import DatabaseError
from gis_core.settings import Settings
from webmap.commands.context import current_settings


@click.group(name="db")
def group() -> None:
    """Start, stop and migrate the database."""


def _connected_engine(settings: Settings) -> sa.Engine:
    """An engine on a reachable database (started or created when it is ours to create)."""
    if not settings.embedded:
        ensure_database_exists(database_url(settings))
    return create_engine(settings, pool_size=1)


@group.command()
def start() -> None:
    """Create and start the embedded database (external: check the connection)."""
    settings = current_settings()
    engine = _connected_engine(settings)
    with engine.connect() as conn:
        versions = server_versions_or_plain(conn)
    where = EmbeddedCluster(settings).root if settings.embedded else "external server"
    click.echo(f"database running ({where}); PostgreSQL {versions['postgresql']}")
    engine.dispose()


@group.command()
def stop() -> None:
    """Stop the embedded database cleanly."""
    settings = current_settings()
    if not settings.embedded:
        click.echo("external database (URBANGIS_DATABASE_URL): nothing to stop")
        return
    stopped = EmbeddedCluster(settings).stop()
    click.echo("embedded database stopped" if stopped else "embedded database was not running")


@group.command()
def status() -> None:
    """Say where the database is, whether it runs, and its schema revision."""
    settings = current_settings()
    if settings.embedded:
        state = EmbeddedCluster(settings).status()
        click.echo(f"embedded cluster: {state.root}")
        click.echo(f"  initialised: {'yes' if state.initialised else 'no'}")
        click.echo(f"  running: {'yes' if state.running else 'no'}")
        click.echo(f"  socket: {state.socket_dir} port {state.port}")
        click.echo(f"  PostgreSQL binaries: {state.bindir or 'not found'}")
        if not state.running:
            raise SystemExit(3)
    else:
        url = database_url(settings)
        click.echo(f"external database: {url.render_as_string(hide_password=True)}")
    engine = create_engine(settings, start=False, pool_size=1)
    try:
        with engine.connect() as conn:
            versions = server_versions_or_plain(conn)
            revision = migrate.current_revision(conn)
    except sa.exc.OperationalError as exc:
        raise DatabaseError(f"database unreachable: {str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()
    click.echo("  versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    head = migrate.head_revision()
    click.echo(f"  schema: {revision or 'empty'} (head {head})")


@group.command()
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def upgrade(revision: str) -> None:
    """Create or bring the schema up to date (PostGIS created if missing)."""
    settings = current_settings()
    engine = _connected_engine(settings)
    try:
        reached = migrate.upgrade(engine, settings.storage_srid, revision)
    finally:
        engine.dispose()
    click.echo(f"schema at {reached} (storage SRID EPSG:{settings.storage_srid})")


@group.command()
def current() -> None:
    """Print the schema revision of the database (empty before the first upgrade)."""
    settings = current_settings()
    engine = _connected_engine(settings)
    try:
        with engine.connect() as conn:
            revision = migrate.current_revision(conn)
    finally:
        engine.dispose()
    click.echo(revision or "(empty: run 'urbangis db upgrade')")


def server_versions_or_plain(conn: sa.Connection) -> dict[str, str]:
    """Versions of PostgreSQL and PostGIS; before PostGIS is installed, PostgreSQL only."""
    has_postgis = conn.execute(
        sa.text("SELECT 1 FROM pg_extension WHERE extname = 'postgis'")
    ).scalar()
    if has_postgis:
        return server_versions(conn)
    return {"postgresql": str(conn.execute(sa.text("SHOW server_version")).scalar_one())}
