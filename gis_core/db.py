"""Database engine and sessions, for the embedded cluster or an external PostGIS.

One engine per process (pooled connections), created from settings. Request queries run
under the statement timeout of the settings; bulk work raises it for its own transaction.

Pooled connections are checked without a round trip (``watch_for_disconnects``) and
replaced after ``POOL_RECYCLE_S``, rather than pinged with a query on every checkout.
"""

from __future__ import annotations

import select
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from gis_core.embedded import EmbeddedCluster
from gis_core.errors import DatabaseError
from gis_core.settings import Settings

EXTENSIONS = ("postgis", "btree_gist", "pg_trgm")
# Pooled connections older than this (seconds) are replaced at their next checkout, before
# a firewall or proxy that drops idle connections silently can do it for us.
POOL_RECYCLE_S = 1800


def database_url(settings: Settings, *, start: bool = True) -> URL:
    """The URL to connect to; starts the embedded cluster when it is the one in use."""
    if settings.database_url is None:
        cluster = EmbeddedCluster(settings)
        if start:
            cluster.ensure_running()
        return cluster.url()
    url = make_url(settings.database_url.get_secret_value())
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def _json_dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def create_engine(
    settings: Settings, *, start: bool = True, pool_size: int | None = None
) -> Engine:
    """A pooled engine; connections carry the statement timeout and an application name."""
    url = database_url(settings, start=start)
    options = f"-c statement_timeout={settings.statement_timeout_ms} -c timezone=UTC"
    engine = sa.create_engine(
        url,
        pool_size=pool_size or settings.pool_size,
        max_overflow=settings.pool_size,
        pool_recycle=POOL_RECYCLE_S,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        connect_args={"application_name": "urbangis", "options": options},
    )
    watch_for_disconnects(engine)
    return engine


def watch_for_disconnects(engine: Engine) -> None:
    """Replace, at checkout, pooled connections the server has closed, without a query.

    ``pool_pre_ping`` would cost a ``SELECT 1`` round trip per checkout, i.e. per request.
    A server that ends a session (restart, ``pg_terminate_backend``, idle timeout) sends
    its reason and closes the socket, so such a connection, idle in the pool, has
    something to read: one ``poll()`` without waiting tells. It is then discarded and the
    checkout goes on with a new connection (SQLAlchemy's ``DisconnectionError`` protocol).
    A connection lost while in use still fails its statement; SQLAlchemy then recognises
    the disconnect and invalidates it, and the next checkout connects afresh.
    """
    sa.event.listen(engine, "checkout", _refuse_closed_connection)


def _refuse_closed_connection(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    if not connection_is_open(dbapi_connection):
        raise DisconnectionError("the server closed this pooled connection")


def connection_is_open(dbapi_connection: Any) -> bool:
    """False when an idle driver connection is closed, or its socket has data or EOF
    waiting (nothing is expected while idle: it is the server's goodbye)."""
    if getattr(dbapi_connection, "closed", False):
        return False
    try:
        fd = dbapi_connection.fileno()
    except Exception:  # a connection that cannot even say its socket is gone
        return False
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    return not poller.poll(0)


@cache
def engine_for(settings: Settings) -> Engine:
    """The process-wide engine for these settings (settings objects are frozen, hashable)."""
    return create_engine(settings)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def bulk_transaction(engine: Engine, *, timeout_ms: int = 0) -> Iterator[Connection]:
    """One transaction for a whole import: all of it lands, or none of it does."""
    with engine.begin() as conn:
        conn.execute(
            sa.text("SELECT set_config('statement_timeout', :t, true)"), {"t": str(timeout_ms)}
        )
        yield conn


def ensure_database_exists(url: URL) -> None:
    """Create the target database of an external server when the user may (CREATEDB)."""
    probe = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with probe.connect():
            return
    except OperationalError as exc:
        if "does not exist" not in str(exc):
            raise DatabaseError(f"cannot connect to the database: {_first_line(exc)}") from None
    finally:
        probe.dispose()
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            name = conn.dialect.identifier_preparer.quote(url.database or "urbangis")
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    except OperationalError as exc:
        raise DatabaseError(f"cannot create database {url.database}: {_first_line(exc)}") from None
    finally:
        admin.dispose()


def recreate_database(server: URL, name: str) -> URL:
    """Drop ``name`` on ``server`` (closing its sessions) and create it empty; its URL.

    For throw-away databases (tests, benchmarks), never for a deployment's own.
    """
    admin = sa.create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            quoted = conn.dialect.identifier_preparer.quote(name)
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
            conn.execute(sa.text(f"CREATE DATABASE {quoted}"))
    finally:
        admin.dispose()
    return server.set(database=name)


def drop_database(server: URL, name: str) -> None:
    """Drop a throw-away database made by :func:`recreate_database`."""
    admin = sa.create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            quoted = conn.dialect.identifier_preparer.quote(name)
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
    finally:
        admin.dispose()


def ensure_extensions(conn: Connection) -> None:
    """PostGIS and the helper extensions the schema needs (idempotent)."""
    for name in EXTENSIONS:
        conn.execute(sa.text(f"CREATE EXTENSION IF NOT EXISTS {name}"))


def server_versions(conn: Connection) -> dict[str, str]:
    """PostgreSQL and PostGIS versions, for /healthz and ``db status``."""
    postgres = conn.execute(sa.text("SHOW server_version")).scalar_one()
    postgis = conn.execute(sa.text("SELECT postgis_lib_version()")).scalar_one()
    geos = conn.execute(sa.text("SELECT postgis_geos_version()")).scalar_one()
    proj = conn.execute(sa.text("SELECT postgis_proj_version()")).scalar_one()
    return {
        "postgresql": str(postgres),
        "postgis": str(postgis),
        "geos": str(geos),
        "proj": str(proj),
    }


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
