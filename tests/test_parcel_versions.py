"""The parcel version rule after migration 0007: no two versions of one parcel (UAT,
cadastral number) with overlapping periods, checked by triggers instead of a GiST
exclusion constraint, on every write path (INSERT, COPY, UPDATE), with the indexes
dropped for a bulk load, and between concurrent writers."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gis_core.bulk import copy_rows, drop_secondary_indexes, recreate_indexes

UAT = 54975
SQUARE = "POLYGON((390000 585000, 390020 585000, 390020 585020, 390000 585000))"


def _insert(conn: Connection, number: str, start: str, end: str | None, uat: int = UAT) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO cadastre.parcel (uat_siruta, cadastral_number, valid_from, valid_to, "
            "geom) VALUES (:u, :n, :f, :t, ST_Multi(ST_GeomFromText(:g, 3844)))"
        ),
        {"u": uat, "n": number, "f": start, "t": end, "g": SQUARE},
    )


def _refused(conn: Connection, statement: str, params: dict[str, object] | None = None) -> str:
    """Run ``statement`` in a savepoint; return the error message it must fail with."""
    savepoint = conn.begin_nested()
    with pytest.raises(sa.exc.IntegrityError) as caught:
        conn.execute(sa.text(statement), params or {})
    savepoint.rollback()
    assert getattr(caught.value.orig, "sqlstate", None) == "23P01"
    return str(caught.value.orig)


def _versions(conn: Connection, number: str) -> list[tuple[str, str | None]]:
    rows = conn.execute(
        sa.text(
            "SELECT valid_from::date::text, valid_to::date::text FROM cadastre.parcel "
            "WHERE cadastral_number = :n ORDER BY valid_from"
        ),
        {"n": number},
    )
    return [(str(r[0]), r[1]) for r in rows]


def test_the_exclusion_constraint_gave_way_to_triggers(db: Connection) -> None:
    constraints = db.execute(
        sa.text(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = 'cadastre.parcel'::regclass "
            "AND contype = 'x'"
        )
    ).scalar_one()
    triggers = set(
        db.execute(
            sa.text(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'cadastre.parcel'::regclass "
                "AND NOT tgisinternal"
            )
        ).scalars()
    )
    assert constraints == 0
    assert {"tr_parcel_versions_inserted", "tr_parcel_versions_changed"} <= triggers


def test_consecutive_versions_are_accepted(db: Connection) -> None:
    _insert(db, "700001", "2020-01-01", "2023-05-01")
    _insert(db, "700001", "2023-05-01", None)
    _insert(db, "700001", "2019-06-01", "2019-06-01")  # an empty period overlaps nothing
    _insert(db, "700001", "2021-01-01", None, uat=UAT + 1)  # same number, other UAT
    assert _versions(db, "700001")[:3] == [
        ("2019-06-01", "2019-06-01"),
        ("2020-01-01", "2023-05-01"),
        ("2021-01-01", None),
    ]


def test_an_overlapping_version_is_refused_with_a_clear_message(db: Connection) -> None:
    _insert(db, "700002", "2020-01-01", "2023-05-01")
    _insert(db, "700002", "2023-05-01", None)
    message = _refused(
        db,
        "INSERT INTO cadastre.parcel (uat_siruta, cadastral_number, valid_from, valid_to) "
        "VALUES (:u, '700002', '2021-01-01', '2021-02-01')",
        {"u": UAT},
    )
    assert "ex_parcel_versions" in message
    assert "parcel 700002 (UAT 54975)" in message
    assert "2021-01-01" in message and "2020-01-01" in message
    assert _versions(db, "700002") == [("2020-01-01", "2023-05-01"), ("2023-05-01", None)]


def test_two_current_versions_in_one_statement_are_refused(db: Connection) -> None:
    message = _refused(
        db,
        "INSERT INTO cadastre.parcel (uat_siruta, cadastral_number, valid_from) "
        "VALUES (:u, '700003', '2024-01-01'), (:u, '700003', '2024-02-01')",
        {"u": UAT},
    )
    assert "parcel 700003" in message and "open" in message
    assert _versions(db, "700003") == []


def test_copy_is_checked_too(db: Connection) -> None:
    _insert(db, "700004", "2020-01-01", None)
    now = db.execute(sa.text("SELECT now()")).scalar_one()
    savepoint = db.begin_nested()
    with pytest.raises(sa.exc.IntegrityError, match="ex_parcel_versions"):
        copy_rows(
            db,
            "cadastre.parcel",
            ["uat_siruta", "cadastral_number", "valid_from"],
            [(UAT, "700005", now), (UAT, "700004", now)],
        )
    savepoint.rollback()
    assert _versions(db, "700004") == [("2020-01-01", None)]
    assert _versions(db, "700005") == []


def test_updates_that_widen_a_period_are_checked_and_closing_is_free(db: Connection) -> None:
    _insert(db, "700006", "2020-01-01", "2022-01-01")
    _insert(db, "700006", "2022-01-01", None)
    guard = "SELECT writes FROM core.version_guard WHERE table_name = 'cadastre.parcel'"
    before = db.execute(sa.text(guard)).scalar_one()
    db.execute(
        sa.text(
            "UPDATE cadastre.parcel SET valid_to = '2024-01-01' "
            "WHERE cadastral_number = '700006' AND valid_to IS NULL"
        )
    )
    assert db.execute(sa.text(guard)).scalar_one() == before  # closing: no check ran
    message = _refused(
        db,
        "UPDATE cadastre.parcel SET valid_to = NULL WHERE cadastral_number = '700006' "
        "AND valid_from = '2020-01-01'",
    )
    assert "parcel 700006" in message
    _refused(
        db,
        "UPDATE cadastre.parcel SET valid_from = '2021-01-01' WHERE cadastral_number = '700006' "
        "AND valid_from = '2022-01-01'",
    )
    _insert(db, "700007", "2021-06-01", None)
    _refused(
        db,
        "UPDATE cadastre.parcel SET cadastral_number = '700006' WHERE cadastral_number = '700007'",
    )
    assert _versions(db, "700006") == [("2020-01-01", "2022-01-01"), ("2022-01-01", "2024-01-01")]


def test_the_rule_holds_during_a_bulk_load_without_indexes(db: Connection) -> None:
    db.execute(sa.text("ANALYZE cadastre.parcel"))  # statistics of a (nearly) empty table
    saved = drop_secondary_indexes(db, ["cadastre.parcel"])
    assert saved
    db.execute(
        sa.text(
            "INSERT INTO cadastre.parcel (uat_siruta, cadastral_number, valid_from) "
            "SELECT :u, 'B' || n, '2024-01-01' FROM generate_series(1, 3000) n"
        ),
        {"u": UAT},
    )
    message = _refused(
        db,
        "INSERT INTO cadastre.parcel (uat_siruta, cadastral_number, valid_from) "
        "SELECT :u, 'B' || n, '2025-01-01' FROM generate_series(2990, 3010) n",
        {"u": UAT},
    )
    assert "ex_parcel_versions" in message
    recreate_indexes(db, saved)
    assert db.execute(sa.text("SHOW enable_nestloop")).scalar_one() == "on"


@pytest.fixture
def clean(engine: Engine) -> Iterator[Engine]:
    yield engine
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM cadastre.parcel WHERE cadastral_number LIKE 'C-70000%'"))


def test_concurrent_writers_cannot_both_add_a_current_version(clean: Engine) -> None:
    """The second writer waits for the first (the guard row), then sees its version."""
    outcome: list[BaseException | None] = []

    def second() -> None:
        try:
            with clean.begin() as conn:
                _insert(conn, "C-700008", "2024-06-01", None)
            outcome.append(None)
        except sa.exc.IntegrityError as exc:
            outcome.append(exc)

    with clean.connect() as first, first.begin():
        _insert(first, "C-700008", "2024-01-01", None)
        thread = threading.Thread(target=second)
        thread.start()
        thread.join(timeout=1.0)  # it waits on the guard row until the first commits
    thread.join()
    assert len(outcome) == 1 and isinstance(outcome[0], sa.exc.IntegrityError)
    assert "ex_parcel_versions" in str(outcome[0])
    with clean.connect() as conn:
        assert _versions(conn, "C-700008") == [("2024-01-01", None)]
