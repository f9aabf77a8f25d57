"""How the location statement is sent: PostgreSQL's ``$n`` form, prepared, with errors
reported as SQLAlchemy's, as if it had gone through ``Connection.execute``."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gis_core.db import create_engine
from gis_core.settings import Settings
from permits.location_sql import ZONE_PIECE_SQL, Statement, fetch_document, location_statement


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


def test_parameters_arrive_as_the_values_sent(autocommit: Connection) -> None:
    """Parameters are written out as text by hand: quotes, backslashes, braces, commas and
    non-ASCII letters in arrays, bytes, dates and moments arrive unchanged."""
    from datetime import UTC, date, datetime

    statement = Statement.of(
        "SELECT json_build_object('texts', CAST(:texts AS text[]), 'ids', CAST(:ids AS "
        "bigint[]), 'hex', encode(CAST(:raw AS bytea), 'hex'), 'day', CAST(:day AS date), "
        "'at', CAST(:at AS timestamptz) = '2026-03-01 10:20:30.5+00', 'x', CAST(:x AS "
        "float8), 'flag', CAST(:flag AS boolean), 'none', CAST(:none AS text) IS NULL)::text"
    )
    texts = ['a"b', "c\\d", "{e,f}", "", "NULL", "ț ă", " g "]
    params = {
        "texts": texts,
        "ids": [1, 2**40],
        "raw": b"\x00\x01\xff",
        "day": date(2026, 3, 1),
        "at": datetime(2026, 3, 1, 10, 20, 30, 500000, tzinfo=UTC),
        "x": 0.1,
        "flag": False,
        "none": None,
    }
    answer = orjson.loads(fetch_document(autocommit, statement, params))
    assert answer == {
        "texts": texts,
        "ids": [1, 2**40],
        "hex": "0001ff",
        "day": "2026-03-01",
        "at": True,
        "x": 0.1,
        "flag": False,
        "none": True,
    }


def test_a_text_with_a_nul_is_refused_like_any_bad_value(autocommit: Connection) -> None:
    """libpq would cut the text at the NUL: it is refused, as a database error."""
    statement = Statement.of("SELECT CAST(:n AS text[])::text")
    with pytest.raises(sa.exc.DBAPIError) as caught:
        fetch_document(autocommit, statement, {"n": ["12\x003"]})
    assert not caught.value.connection_invalidated
    assert fetch_document(autocommit, statement, {"n": ["123"]}) == "{123}"


def test_statements_are_prepared_again_after_the_server_forgot_them(
    autocommit: Connection,
) -> None:
    """psycopg deallocates every prepared statement when it rolls back a transaction that
    had its own; the location statement is then prepared again, not failed."""
    statement = Statement.of("SELECT CAST(:n AS int)::text || ' once more'")
    assert fetch_document(autocommit, statement, {"n": 1}) == "1 once more"
    names = autocommit.execute(
        sa.text("SELECT name FROM pg_prepared_statements WHERE NOT from_sql")
    ).scalars()
    assert statement.name.decode() in list(names)
    autocommit.execute(sa.text("DEALLOCATE ALL"))
    assert fetch_document(autocommit, statement, {"n": 2}) == "2 once more"


def _zone_piece(conn: Connection, zone: str, subject: str) -> tuple[bool, float | None]:
    """``ZONE_PIECE_SQL`` for one zone and one subject (WKT, metres): whether the piece is
    the subject itself, byte for byte, and the piece's area (None: no piece)."""
    row = conn.execute(
        sa.text(
            "SELECT piece = s.geom, ST_Area(piece) FROM ("
            "  SELECT geom, ST_Dimension(geom) AS dim, centre,"
            "         ST_MaxDistance(centre, geom) AS reach"
            "  FROM ST_GeomFromText(:subject, 3844) AS geom, ST_Centroid(geom) AS centre) s,"
            " ST_GeomFromText(:zone, 3844) AS z(geom),"
            f" LATERAL (SELECT {ZONE_PIECE_SQL} AS piece) x"
        ),
        {"zone": zone, "subject": subject},
    ).one()
    return bool(row[0]), (None if row[1] is None else float(row[1]))


def test_a_subject_inside_a_zone_is_its_own_piece_without_an_overlay(
    autocommit: Connection,
) -> None:
    """The common case is settled by a point-in-polygon test and a distance: the piece is
    the subject itself (an overlay would give a new geometry, with vertices reordered)."""
    zone = "POLYGON((0 0,100 0,100 100,0 100,0 0),(80 80,90 80,90 90,80 90,80 80))"
    inside = "POLYGON((10 10,30 10,30 25,10 25,10 10))"
    assert _zone_piece(autocommit, zone, inside) == (True, 300.0)
    # Near the hole: the centre is inside, but the boundary is closer than the subject's
    # reach, so the exact overlay decides (and cuts the hole out).
    over_hole = "POLYGON((72 72,84 72,84 84,72 84,72 72))"
    same, area = _zone_piece(autocommit, zone, over_hole)
    assert not same and area == pytest.approx(144.0 - 16.0)


def test_a_zone_only_boxing_the_subject_gives_no_piece(autocommit: Connection) -> None:
    """An L-shaped zone whose box holds the subject, but not the zone itself."""
    zone = "POLYGON((0 0,100 0,100 10,10 10,10 100,0 100,0 0))"
    assert _zone_piece(autocommit, zone, "POLYGON((50 50,60 50,60 60,50 60,50 50))") == (
        False,
        None,
    )
    # Within the subject's reach of the zone but apart from it: the exact test says no.
    near = "POLYGON((11 11,40 11,40 12,11 12,11 11))"
    assert _zone_piece(autocommit, zone, near) == (False, None)


def test_a_subject_across_a_zone_boundary_gets_the_overlay(autocommit: Connection) -> None:
    zone = "POLYGON((0 0,100 0,100 100,0 100,0 0))"
    same, area = _zone_piece(autocommit, zone, "POLYGON((90 10,110 10,110 20,90 20,90 10))")
    assert not same and area == pytest.approx(100.0)
    # A point subject: in the zone or not, by the exact test.
    assert _zone_piece(autocommit, zone, "POINT(50 50)") == (True, 0.0)
    assert _zone_piece(autocommit, zone, "POINT(150 50)") == (False, None)
