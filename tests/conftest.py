"""Test fixtures: a real PostGIS, schemas built by the migrations, per-test isolation.

The suite runs against the embedded cluster in ``var/test`` (created on demand, like the
product's own) unless ``URBANGIS_TEST_DATABASE_URL`` names another server. Each session
(and each xdist worker) gets fresh databases migrated from scratch: one with the default
storage SRID 3844, one with EPSG:26986 for the real Cambridge (MA) data.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.orm import Session

from gis_core import migrate
from gis_core.db import create_engine
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
    admin = sa.create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return server.set(database=name)


def settings_for(url: URL, storage_srid: int) -> Settings:
    return Settings(
        database_url=url.render_as_string(hide_password=False),
        data_dir=TEST_DATA_DIR,
        storage_srid=storage_srid,
    )


def _worker_suffix() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the embedded test cluster once the whole run (all xdist workers) is over."""
    is_worker = hasattr(session.config, "workerinput")
    if is_worker or os.environ.get("URBANGIS_TEST_DATABASE_URL"):
        return
    EmbeddedCluster(Settings(data_dir=TEST_DATA_DIR)).stop()


@pytest.fixture(scope="session")
def server_url() -> URL:
    return _server_url()


@pytest.fixture(scope="session")
def settings(server_url: URL) -> Settings:
    """Settings of a freshly migrated database in the default storage CRS (EPSG:3844)."""
    url = fresh_database(server_url, f"urbangis_test_{_worker_suffix()}")
    settings = settings_for(url, 3844)
    engine = create_engine(settings)
    migrate.upgrade(engine, settings.storage_srid)
    engine.dispose()
    return settings


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    engine = create_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def settings_26986(server_url: URL) -> Settings:
    """A database whose storage CRS is NAD83 / Massachusetts Mainland (Cambridge data)."""
    url = fresh_database(server_url, f"urbangis_test_26986_{_worker_suffix()}")
    settings = settings_for(url, 26986)
    engine = create_engine(settings)
    migrate.upgrade(engine, settings.storage_srid)
    engine.dispose()
    return settings


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
