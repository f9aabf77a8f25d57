"""Test fixtures: a real PostGIS, schemas built by the migrations, per-test isolation.

The suite runs against the embedded cluster in ``var/test`` (created on demand, like the
product's own) unless ``URBANGIS_TEST_DATABASE_URL`` names another server. Each session
(and each xdist worker) gets fresh databases migrated from scratch: one with the default
storage SRID 3844, one with EPSG:26986 for the real Cambridge (MA) data.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.orm import Session

from gis_core import migrate
from gis_core.db import create_engine, drop_database, recreate_database
from gis_core.embedded import EmbeddedCluster
from gis_core.settings import Settings

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
TEST_DATA_DIR = Path(os.environ.get("URBANGIS_TEST_DATA_DIR", REPO / "var" / "test"))


def _server_url() -> URL:
    """The server the test databases are created on."""
    external = os.environ.get("URBANGIS_TEST_DATABASE_URL")
    if external:
        url = make_url(external)
        return url.set(drivername="postgresql+psycopg")
    cluster = EmbeddedCluster(Settings(data_dir=TEST_DATA_DIR))
    cluster.ensure_running()
    return cluster.url()


def fresh_database(server: URL, name: str) -> URL:
    return recreate_database(server, name)


def settings_for(url: URL, storage_srid: int) -> Settings:
    return Settings(
        database_url=url.render_as_string(hide_password=False),
        data_dir=TEST_DATA_DIR,
        storage_srid=storage_srid,
    )


def clear_parcels(engine: Engine) -> Engine:
    """Remove every parcel (and its use sub-parcels) of the engine's database."""
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE cadastre.parcel_use, cadastre.parcel CASCADE"))
    return engine


@contextmanager
def parcel_free_engine(settings: Settings) -> Iterator[Engine]:
    """An engine on ``settings``' database with no parcels in it, disposed after."""
    engine = create_engine(settings)
    try:
        yield clear_parcels(engine)
    finally:
        engine.dispose()


def _worker_suffix() -> str:
    """Unique per test process, so concurrent runs never drop each other's databases."""
    return f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"


def unique_database_name(purpose: str) -> str:
    """A database name no other test process (or concurrent test run) uses."""
    return f"urbangis_test_{purpose}_{_worker_suffix()}"


def pytest_sessionfinish(session: pytest.Session) -> None:
    """In CI, stop the embedded test cluster once the whole run (all workers) is over.

    On a developer's machine it keeps running: other test runs may be using it.
    """
    is_worker = hasattr(session.config, "workerinput")
    if is_worker or os.environ.get("URBANGIS_TEST_DATABASE_URL") or not os.environ.get("CI"):
        return
    EmbeddedCluster(Settings(data_dir=TEST_DATA_DIR)).stop()


@pytest.fixture(scope="session")
def server_url() -> URL:
    return _server_url()


def _migrated_settings(server: URL, name: str, storage_srid: int) -> Iterator[Settings]:
    settings = settings_for(fresh_database(server, name), storage_srid)
    engine = create_engine(settings)
    migrate.upgrade(engine, settings.storage_srid)
    engine.dispose()
    yield settings
    drop_database(server, name)


@pytest.fixture(scope="session")
def settings(server_url: URL) -> Iterator[Settings]:
    """Settings of a freshly migrated database in the default storage CRS (EPSG:3844)."""
    yield from _migrated_settings(server_url, f"urbangis_test_{_worker_suffix()}", 3844)


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    engine = create_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def settings_26986(server_url: URL) -> Iterator[Settings]:
    """A database whose storage CRS is NAD83 / Massachusetts Mainland (Cambridge data)."""
    yield from _migrated_settings(server_url, f"urbangis_test_26986_{_worker_suffix()}", 26986)


@pytest.fixture(scope="session")
def engine_26986(settings_26986: Settings) -> Iterator[Engine]:
    engine = create_engine(settings_26986)
    yield engine
    engine.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Connection]:
    """A connection inside an outer transaction that is rolled back after the test."""
    with engine.connect() as conn:
        outer = conn.begin()
        try:
            yield conn
        finally:
            outer.rollback()


@pytest.fixture
def session(db: Connection) -> Iterator[Session]:
    """An ORM session whose commits become SAVEPOINTs of the test's outer transaction."""
    with Session(bind=db, join_transaction_mode="create_savepoint") as session:
        yield session


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the shared test data folder {SHARED_DATA} is missing")
    return SHARED_DATA


# The small demo municipality the location-check tests share (one load per test process).
LOCATION_DEMO_PARCELS = 2000
LOCATION_DEMO_SEED = 2


@pytest.fixture(scope="session")
def location_demo_settings(server_url: URL) -> Iterator[Settings]:
    """A Stereo 70 database holding the small demo municipality, loaded once."""
    from importers.demo.generate import DemoParameters
    from importers.demo.load import load_demo

    databases = _migrated_settings(server_url, f"urbangis_test_locdemo_{_worker_suffix()}", 3844)
    settings = next(databases)
    engine = create_engine(settings)
    load_demo(engine, DemoParameters(parcels=LOCATION_DEMO_PARCELS, seed=LOCATION_DEMO_SEED))
    engine.dispose()
    yield settings
    next(databases, None)


@pytest.fixture(scope="session")
def database_factory(server_url: URL) -> Iterator[Callable[..., Settings]]:
    """Fresh migrated databases on demand, e.g. ``database_factory("imports", 3035)``.

    Keyword arguments override settings (``uat_siruta=...``); every database made is
    dropped at the end of the session.
    """
    created: list[str] = []

    def make(label: str, storage_srid: int, **overrides: object) -> Settings:
        name = f"urbangis_test_{label}_{_worker_suffix()}"
        url = fresh_database(server_url, name)
        settings = Settings(
            database_url=url.render_as_string(hide_password=False),
            data_dir=TEST_DATA_DIR,
            storage_srid=storage_srid,
            **overrides,  # type: ignore[arg-type]
        )
        engine = create_engine(settings)
        migrate.upgrade(engine, storage_srid)
        engine.dispose()
        created.append(name)
        return settings

    yield make
    for name in created:
        drop_database(server_url, name)
