"""A small, committed municipality for the layer, OGC and tile tests (synthetic data).

Live clients (OWSLib, GDAL) talk to a server in another thread with its own
connections, so the rows must be committed: they live in a database of their own,
created once per test process and dropped at the end, never in the shared test
database other suites count rows in. Other modules import ``layers_settings``.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import URL, Connection
from werkzeug.serving import make_server

from gis_core import migrate, twins
from gis_core.db import create_engine
from gis_core.settings import Settings
from layers import queries
from layers.catalog import Catalog, Field
from tests.conftest import _worker_suffix, drop_database, fresh_database, settings_for
from webmap.app import create_app

# A 10 x 10 grid of 50 m parcels in central Cluj-Napoca (Stereo 70 east, north).
ORIGIN_E, ORIGIN_N, SIZE = 392_000.0, 586_000.0, 50.0
GRID = 10
OWNER_NAME = "Ion Popescu-Fixture"
OWNER_CNP = "1800101123456"
SECRET_NOTE = "nota-interna-fixture"
APARTMENT = "ap-17-fixture"
APPLICANT_NAME = "Maria Ionescu-Solicitant"
PARCEL_COUNT = GRID * GRID  # current versions; one more historical version exists
_CACHE: dict[str, Settings] = {}


def _box(e: float, n: float, size: float) -> str:
    return f"MULTIPOLYGON((({e} {n},{e + size} {n},{e + size} {n + size},{e} {n + size},{e} {n})))"


def load_municipality(conn: Connection) -> None:
    """Insert the synthetic municipality (every published layer has rows)."""
    srid = 3844
    uat = _box(ORIGIN_E - 2000, ORIGIN_N - 2000, 4500)
    conn.execute(
        sa.text(
            "INSERT INTO core.admin_unit (siruta, name, level, geom) VALUES "
            "(54975, 'Cluj-Napoca', 'uat', ST_GeomFromText(:g, :s))"
        ),
        {"g": uat, "s": srid},
    )
    conn.execute(
        sa.text(
            "INSERT INTO core.intravilan (uat_siruta, name, geom, valid_from) VALUES "
            "(54975, 'Intravilan Cluj-Napoca', ST_GeomFromText(:g, :s), '2020-01-01')"
        ),
        {"g": _box(ORIGIN_E - 1000, ORIGIN_N - 1000, 2500), "s": srid},
    )
    _load_parcels(conn, srid)
    _load_plans(conn, srid)
    _load_acts(conn)
    for table in sorted(twins.TWINNED_TABLES):
        twins.fill_missing_twins(conn, table, srid)
    conn.execute(sa.text("ANALYZE"))


def _load_parcels(conn: Connection, srid: int) -> None:
    rows = []
    for i in range(GRID):
        for j in range(GRID):
            number = 200000 + i * GRID + j
            rows.append(
                {
                    "num": str(number),
                    "g": _box(ORIGIN_E + i * SIZE, ORIGIN_N + j * SIZE, SIZE),
                    "area": 2500 + i,
                    "use": "curți construcții" if (i + j) % 2 == 0 else "arabil",
                    "addr": f"Strada Fixture nr. {i * GRID + j}",
                    "notes": SECRET_NOTE if number == 200001 else None,
                    "s": srid,
                }
            )
    conn.execute(
        sa.text(
            "INSERT INTO cadastre.parcel (uat_siruta, cadastral_number, land_book_number, "
            "e2_identifier, measured_area, use_category, intravilan, address_text, notes, geom, "
            "valid_from) VALUES (54975, :num, 'CF' || :num, 'E2-' || :num, :area, :use, true, "
            ":addr, :notes, ST_GeomFromText(:g, :s), '2024-01-01')"
        ),
        rows,
    )
    conn.execute(
        sa.text(
            "INSERT INTO cadastre.parcel (uat_siruta, cadastral_number, measured_area, geom, "
            "valid_from, valid_to) VALUES (54975, '200000', 9999, ST_GeomFromText(:g, :s), "
            "'2020-01-01', '2024-01-01')"
        ),
        {"g": _box(ORIGIN_E, ORIGIN_N, SIZE * 2), "s": srid},
    )
    person = conn.execute(
        sa.text(
            "INSERT INTO protected.person (name, national_id, phone) "
            "VALUES (:n, :cnp, '0740000000') RETURNING id"
        ),
        {"n": OWNER_NAME, "cnp": OWNER_CNP},
    ).scalar_one()
    conn.execute(
        sa.text(
            "INSERT INTO protected.parcel_owner (parcel_id, person_id, share) "
            "SELECT id, :p, '1/1' FROM cadastre.parcel "
            "WHERE cadastral_number = '200001' AND valid_to IS NULL"
        ),
        {"p": person},
    )
    conn.execute(
        sa.text(
            "INSERT INTO cadastre.building (uat_siruta, cadastral_number, building_number, "
            "levels, height_m, destination, is_legal, geom, valid_from) "
            "SELECT 54975, cadastral_number, 'C1', 4, 12.5, 'locuință', false, "
            "ST_Multi(ST_Buffer(ST_Centroid(geom), 10, 'quad_segs=1')), '2024-01-01' "
            "FROM cadastre.parcel WHERE valid_to IS NULL AND cadastral_number::int % 5 = 0"
        )
    )
    conn.execute(
        sa.text(
            "INSERT INTO cadastre.address (uat_siruta, street_type, street_name, number, floor, "
            "apartment, full_text, search_text, geom) SELECT 54975, 'Strada', 'Fixture', "
            "cadastral_number, '3', :ap, 'Strada Fixture ' || cadastral_number, "
            "'strada fixture ' || cadastral_number, ST_Centroid(geom) FROM cadastre.parcel "
            "WHERE valid_to IS NULL AND cadastral_number::int % 10 = 0"
        ),
        {"ap": APARTMENT},
    )


def _load_plans(conn: Connection, srid: int) -> None:
    pug = conn.execute(
        sa.text(
            "INSERT INTO urbanism.plan (uat_siruta, plan_type, title, hcl_number, status, "
            "valid_from) VALUES (54975, 'PUG', 'PUG Fixture', '493/2014', 'approved', "
            "'2014-12-22') RETURNING id"
        )
    ).scalar_one()
    draft = conn.execute(
        sa.text(
            "INSERT INTO urbanism.plan (uat_siruta, plan_type, title, status) "
            "VALUES (54975, 'PUZ', 'PUZ Draft Fixture', 'draft') RETURNING id"
        )
    ).scalar_one()
    regulation = conn.execute(
        sa.text(
            "INSERT INTO urbanism.regulation (plan_id, utr_code, function, pot_max, cut_max, "
            "height_max_m) VALUES (:p, 'L1a', 'locuințe individuale', 35, 0.9, 10) RETURNING id"
        ),
        {"p": pug},
    ).scalar_one()
    half = GRID * SIZE / 2
    zones = [
        (pug, regulation, "L1a", _box(ORIGIN_E, ORIGIN_N, half), "2015-01-01", None),
        (pug, None, "M2", _box(ORIGIN_E + half, ORIGIN_N, half), "2015-01-01", None),
        (pug, None, "M2", _box(ORIGIN_E + half, ORIGIN_N, half), "2010-01-01", "2015-01-01"),
        (pug, None, "V1a", _box(ORIGIN_E, ORIGIN_N + half, half), "2015-01-01", None),
        (draft, None, "DRAFT1", _box(ORIGIN_E + half, ORIGIN_N + half, half), "2025-01-01", None),
    ]
    for plan, reg, code, geom, start, end in zones:
        conn.execute(
            sa.text(
                "INSERT INTO urbanism.zone (plan_id, regulation_id, utr_code, geom, valid_from, "
                "valid_to) VALUES (:p, :r, :c, ST_GeomFromText(:g, :s), :f, :t)"
            ),
            {"p": plan, "r": reg, "c": code, "g": geom, "s": srid, "f": start, "t": end},
        )
    conn.execute(
        sa.text(
            "INSERT INTO urbanism.restriction (uat_siruta, kind, name, legal_source, geom) "
            "VALUES (54975, 'heritage', 'Zona protejată Fixture', 'Legea 422/2001', "
            "ST_GeomFromText(:g, :s))"
        ),
        {"g": _box(ORIGIN_E + 100, ORIGIN_N + 100, 150), "s": srid},
    )


def _load_acts(conn: Connection) -> None:
    """A permit in force on parcel 200011 (its applicant is personal data), one whose
    validity ran out on parcel 200013, and an application still being processed on
    parcel 200012 (not public yet)."""
    in_force = (date.today() + timedelta(days=365)).isoformat()
    acts = [
        ("AC", "17/2024", "2024-03-01", "issued", "construire locuință P+1", in_force, 11),
        ("CU", "88/2025", None, "requested", "informare", None, 12),
        ("AC", "5/2020", "2020-02-01", "issued", "construire garaj", "2022-02-01", 13),
    ]
    for kind, number, issued, status, purpose, until, offset in acts:
        act = conn.execute(
            sa.text(
                "INSERT INTO permits.act (uat_siruta, kind, number, issued_on, register_key, "
                "status, purpose, valid_until, link_state, geom) "
                "SELECT 54975, :kind, :number, CAST(:issued AS date), :kind || ' ' || :number, "
                ":status, :purpose, CAST(:until AS date), 'linked', geom FROM cadastre.parcel "
                "WHERE cadastral_number = :cad AND valid_to IS NULL RETURNING id"
            ),
            {
                "kind": kind,
                "number": number,
                "issued": issued,
                "status": status,
                "purpose": purpose,
                "until": until,
                "cad": str(200000 + offset),
            },
        ).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO permits.act_parcel (act_id, parcel_id, cadastral_number, "
                "is_primary, method, confidence) SELECT :act, id, cadastral_number, true, "
                "'number', 1 FROM cadastre.parcel WHERE cadastral_number = :cad "
                "AND valid_to IS NULL"
            ),
            {"act": act, "cad": str(200000 + offset)},
        )
        conn.execute(
            sa.text(
                "INSERT INTO protected.act_applicant (act_id, name, national_id) "
                "VALUES (:act, :name, '2850505123456')"
            ),
            {"act": act, "name": APPLICANT_NAME},
        )


@pytest.fixture(scope="session")
def layers_settings(server_url: URL, request: pytest.FixtureRequest) -> Settings:
    """Settings of a migrated database holding the synthetic municipality (committed)."""
    if "settings" not in _CACHE:
        name = f"urbangis_layers_{_worker_suffix()}"
        settings = settings_for(fresh_database(server_url, name), 3844)
        engine = create_engine(settings)
        migrate.upgrade(engine, 3844)
        with engine.begin() as conn:
            load_municipality(conn)
        engine.dispose()
        _CACHE["settings"] = settings
        request.addfinalizer(lambda: drop_database(server_url, name))
    return _CACHE["settings"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def live_server(app: Flask) -> Iterator[str]:
    """The app on 127.0.0.1:<free port> in a thread; stopped when the block ends."""
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def layers_app(settings: Settings, **config: object) -> Flask:
    app = create_app(settings)
    app.config.update(TESTING=True, **config)
    return app


def page_failing_on_skipped_row(conn: Connection) -> tuple[int, queries.FeatureQuery]:
    """The first current parcel's id, and a page of parcels (limit 2, offset 1) whose one
    field divides by zero on that parcel, the row its offset skips: the page fails if a
    feature is built for a skipped row."""
    layer = Catalog(3844).get("parcels")
    first = conn.execute(
        sa.text("SELECT min(id) FROM cadastre.parcel WHERE valid_to IS NULL")
    ).scalar_one()
    probe = Field("probe", sa.literal(1) / (layer.id_expr - first), type="number")
    return first, queries.FeatureQuery(layer, "public", fields=(probe,), limit=2, offset=1)


def test_the_fixture_municipality_has_every_layer(layers_settings: Settings) -> None:
    engine = create_engine(layers_settings)
    with engine.connect() as conn:
        counts = {
            table: conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("cadastre.parcel", "cadastre.building", "urbanism.zone")
        }
        missing_twins = conn.execute(
            sa.text("SELECT count(*) FROM cadastre.parcel WHERE geom_etrs89 IS NULL")
        ).scalar_one()
    engine.dispose()
    assert counts == {
        "cadastre.parcel": PARCEL_COUNT + 1,
        "cadastre.building": 20,
        "urbanism.zone": 5,
    }
    assert missing_twins == 0
