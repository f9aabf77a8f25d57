"""How the location statement is sent: PostgreSQL's ``$n`` form, prepared, with errors
reported as SQLAlchemy's, as if it had gone through ``Connection.execute``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gis_core.db import create_engine
from gis_core.settings import Settings
from permits.location_sql import Statement, fetch_document, location_statement


@pytest.fixture
def autocommit(settings: Settings) -> Iterator[Connection]:
    engine: Engine = create_engine(settings, pool_size=1)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        yield conn
    engine.dispose()


def test_named_parameters_become_positional_ones_once_each() -> None:
    """As SQLAlchemy's ``text()`` reads them: ``:name``, never a ``::type`` cast."""
    statement = Statement.of("SELECT CAST(:a AS int) + (:b)::int, :a, x::text FROM t WHERE y = :b")
    assert statement.names == ("a", "b")
    assert statement.positional == (
        b"SELECT CAST($1 AS int) + ($2)::int, $1, x::text FROM t WHERE y = $2"
    )


def test_every_location_statement_names_its_parameters() -> None:
    for mode in ("numbers", "ids", "point", "lonlat", "polygon"):
        for as_of in (False, True):
            statement = location_statement(mode, as_of)
            assert b":" not in statement.positional.replace(b"::", b""), (mode, as_of)
            assert {"uat", "t", "day", "nearby"} <= set(statement.names)
            assert str(statement.text) == statement.sql
            # Tools (the benchmark's pgbench scripts) write it on one line.
            assert "--" not in statement.sql


def test_a_statement_runs_prepared_and_answers_its_text(autocommit: Connection) -> None:
    statement = Statement.of("SELECT json_build_object('n', CAST(:n AS int) + 1)::text")
    assert [fetch_document(autocommit, statement, {"n": n}) for n in (1, 2)] == [
        '{"n" : 2}',
        '{"n" : 3}',
    ]
    assert (
        autocommit.execute(
            sa.text("SELECT count(*) FROM pg_prepared_statements WHERE NOT from_sql")
        ).scalar_one()
        >= 1
    )


def test_a_timeout_is_an_operational_error(autocommit: Connection) -> None:
    autocommit.execute(sa.text("SET statement_timeout = 50"))
    with pytest.raises(sa.exc.OperationalError, match="statement timeout"):
        fetch_document(autocommit, Statement.of("SELECT pg_sleep(2)::text"), {})
    autocommit.execute(sa.text("RESET statement_timeout"))
    assert autocommit.execute(sa.text("SELECT 1")).scalar_one() == 1


def test_a_refused_geometry_is_a_dbapi_error_and_the_connection_lives_on(
    autocommit: Connection,
) -> None:
    statement = Statement.of("SELECT ST_AsText(ST_GeomFromEWKB(CAST(:wkb AS bytea)))")
    with pytest.raises(sa.exc.DBAPIError) as caught:
        fetch_document(autocommit, statement, {"wkb": b"\x01\x02"})
    assert not isinstance(caught.value, sa.exc.OperationalError)
    assert not caught.value.connection_invalidated
    assert autocommit.execute(sa.text("SELECT 1")).scalar_one() == 1


def test_a_lost_connection_is_invalidated(settings: Settings) -> None:
    engine = create_engine(settings, pool_size=1)
    try:
        with engine.connect() as conn:
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
            with engine.connect() as other:
                other.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            with pytest.raises(sa.exc.OperationalError) as caught:
                fetch_document(conn, Statement.of("SELECT pg_sleep(1)::text"), {})
            assert caught.value.connection_invalidated
            assert conn.invalidated
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() != pid
    finally:
        engine.dispose()
