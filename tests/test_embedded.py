"""The embedded cluster: created, started, reported and stopped on demand."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from gis_core import migrate
from gis_core.db import create_engine, server_versions
from gis_core.embedded import EmbeddedCluster
from gis_core.settings import Settings
from webmap.cli import main

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("URBANGIS_TEST_DATABASE_URL")), reason="suite runs on an external server"
)


@pytest.fixture(scope="module")
def cluster_dir() -> Iterator[Path]:
    from tests.conftest import REPO, unique_database_name

    folder = REPO / "var" / unique_database_name("embedded")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_cluster_life_cycle(cluster_dir: Path) -> None:
    settings = Settings(data_dir=cluster_dir, embedded_port=5499)
    cluster = EmbeddedCluster(settings)
    cluster.ensure_running()
    try:
        state = cluster.status()
        assert state.initialised and state.running
        # private socket in its own folder: no collision with a system server
        assert (cluster.socket_dir / ".s.PGSQL.5499").exists()
        if os.geteuid() == 0:
            assert cluster.pgdata.stat().st_uid != 0, "PostgreSQL must not run as root"
        engine = create_engine(settings)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgis"))
            assert server_versions(conn)["postgis"].startswith("3.")
        engine.dispose()
        cluster.ensure_running()  # idempotent while running
    finally:
        assert cluster.stop() is True
    assert cluster.status().running is False
    assert cluster.stop() is False


def test_db_commands_on_a_fresh_data_folder(
    cluster_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("URBANGIS_DATA_DIR", str(cluster_dir))
    monkeypatch.setenv("URBANGIS_EMBEDDED_PORT", "5498")
    runner = CliRunner()
    try:
        assert runner.invoke(main, ["db", "start"]).exit_code == 0
        upgraded = runner.invoke(main, ["db", "upgrade"])
        assert upgraded.exit_code == 0, upgraded.output
        head = migrate.head_revision()
        assert f"schema at {head}" in upgraded.output
        current = runner.invoke(main, ["db", "current"])
        assert current.output.strip() == head
        status = runner.invoke(main, ["db", "status"])
        assert status.exit_code == 0 and "running: yes" in status.output
    finally:
        stopped = runner.invoke(main, ["db", "stop"])
    assert "stopped" in stopped.output
    assert runner.invoke(main, ["db", "status"]).exit_code == 3
