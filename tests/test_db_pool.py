"""Pooled connections: no liveness query per checkout, yet a connection the server closed
is never handed out (the engine of ``gis_core.db`` and the API's own pool)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from psycopg.pq import Trace
from sqlalchemy.engine import Engine

from gis_core.db import connection_is_open, create_engine
from gis_core.settings import Settings
from webmap.app import create_app


@pytest.fixture
def one_connection(settings: Settings) -> Iterator[Engine]:
    engine = create_engine(settings, pool_size=1)
    yield engine
    engine.dispose()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        pid: int = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    return pid


def _terminate(settings: Settings, where: str, **params: object) -> list[int]:
    """End the server sessions matching ``where`` and wait until they are gone."""
    admin = create_engine(settings, pool_size=1)
    try:
        with admin.connect() as conn:
            pids = list(
                conn.execute(
                    sa.text(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                        f"AND pid <> pg_backend_pid() AND {where}"
                    ),
                    params,
                ).scalars()
            )
            conn.execute(sa.text("SELECT pg_terminate_backend(p) FROM unnest(:p) p"), {"p": pids})
            for _ in range(500):
                left = conn.execute(
                    sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:p)"),
                    {"p": pids},
                ).scalar_one()
                if not left:
                    break
                time.sleep(0.01)
    finally:
        admin.dispose()
    return pids


def test_a_closed_pooled_connection_is_replaced_at_checkout(
    settings: Settings, one_connection: Engine
) -> None:
    """What a server restart does to an idle pool: the next checkout gets a working
    connection, not an error on its first statement."""
    first = _backend_pid(one_connection)
    assert _terminate(settings, "pid = :pid", pid=first) == [first]
    with one_connection.connect() as conn:
        second = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    assert second != first


def test_checkout_costs_no_round_trip(one_connection: Engine, tmp_path: Path) -> None:
    """Checking a pooled connection out sends nothing to the server (no ``SELECT 1``)."""
    with one_connection.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
        pgconn = conn.connection.driver_connection.pgconn  # type: ignore[union-attr]
    trace = tmp_path / "checkout.trace"
    with trace.open("w") as out:
        pgconn.trace(out.fileno())
        pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS | Trace.REGRESS_MODE)
        try:
            with one_connection.connect() as conn:
                assert conn.connection.driver_connection.pgconn is pgconn  # type: ignore[union-attr]
        finally:
            pgconn.untrace()
    sent = [line for line in trace.read_text().splitlines() if line.startswith("F\t")]
    assert sent == []


def test_an_idle_connection_is_open_until_the_server_ends_it(
    settings: Settings, one_connection: Engine
) -> None:
    proxy = one_connection.raw_connection()
    try:
        raw = proxy.driver_connection
        pid = raw.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[union-attr]
        raw.rollback()  # type: ignore[union-attr]
        assert connection_is_open(raw)
        _terminate(settings, "pid = :pid", pid=pid)
        assert not connection_is_open(raw)
    finally:
        proxy.invalidate()
        proxy.close()


def test_the_api_answers_after_its_connections_were_ended(location_demo_settings: Settings) -> None:
    """The API pool has no ping either; after the server ended its sessions (a restart)
    the next requests are answered, not refused with a 503."""
    app = create_app(location_demo_settings)
    client = app.test_client()
    assert client.get("/api/v1/addresses?q=strada").status_code == 200
    assert _terminate(location_demo_settings, "application_name = 'urbangis-api'")
    statuses = [client.get("/api/v1/addresses?q=strada").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
