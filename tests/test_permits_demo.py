"""The demo register (2 000 acts with deliberate noise) imported and linked to the demo city.

The register is generated from a seed, so the imobil each row was written for can be
recovered by replaying the generator; the linker must find it for at least 98 % of rows.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import URL, Engine

from gis_core import migrate
from gis_core.db import create_engine
from gis_core.settings import Settings
from importers.demo import register as demo_register
from importers.demo.generate import DemoCity, DemoParameters, generate
from importers.demo.load import load_demo
from tests.conftest import drop_database, fresh_database, settings_for
from webmap.cli import main

REPO = Path(__file__).resolve().parents[1]
REGISTER = REPO / "data" / "demo" / "register_acts.csv"


@pytest.fixture(scope="module")
def demo_city() -> DemoCity:
    return generate(DemoParameters())


@pytest.fixture(scope="module")
def demo_db(server_url: URL, demo_city: DemoCity) -> Iterator[Settings]:
    """A database of its own holding the default demo (25 000 parcels)."""
    name = f"urbangis_test_permits_demo_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    settings = settings_for(fresh_database(server_url, name), 3844)
    engine = create_engine(settings)
    migrate.upgrade(engine, 3844)
    load_demo(engine, DemoParameters())
    engine.dispose()
    yield settings
    drop_database(server_url, name)


@pytest.fixture(scope="module")
def demo_engine(demo_db: Settings) -> Iterator[Engine]:
    engine = create_engine(demo_db)
    yield engine
    engine.dispose()


def _truth(demo: DemoCity) -> list[str]:
    """The cadastral number each register row was generated for, in file order."""
    rng = np.random.default_rng([demo.parameters.seed, 78])
    acts = demo_register._acts(demo, 2000, rng)
    acts.sort(key=lambda act: (act.day, act.kind, act.parcel))
    return [str(demo.parcels.cadastral_number[act.parcel]) for act in acts]


def _invoke(settings: Settings, *args: str) -> str:
    env = {"URBANGIS_DATABASE_URL": settings.database_url.get_secret_value()}  # type: ignore[union-attr]
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_register_links_to_the_known_truth(
    demo_db: Settings, demo_engine: Engine, demo_city: DemoCity, tmp_path: Path
) -> None:
    out = _invoke(demo_db, "permits", "import", str(REGISTER), "--report", str(tmp_path / "i.json"))
    assert "inserted 2000" in out
    out = _invoke(demo_db, "permits", "link", "--report", str(tmp_path / "l.json"))
    assert "2000 acts" in out
    truth = _truth(demo_city)
    with demo_engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT a.source_ref, l.cadastral_number FROM permits.act a "
                "LEFT JOIN permits.act_parcel l ON l.act_id = a.id AND l.is_primary"
            )
        ).all()
    assert len(rows) == 2000
    linked = {int(ref.split()[1]) - 2: number for ref, number in rows}
    correct = sum(linked[i] == truth[i] for i in range(2000))
    link_report = orjson.loads((tmp_path / "l.json").read_bytes())
    print(out, f"{correct} of 2000 linked to the right imobil")
    assert correct / 2000 >= 0.98, f"{correct} of 2000 linked to the right imobil"
    # Most AC/ADs follow a CU for the same imobil; the linker points them at it.
    with demo_engine.connect() as conn:
        permits, based = conn.execute(
            sa.text(
                "SELECT count(*), count(basis_act_id) FROM permits.act WHERE kind IN ('AC', 'AD')"
            )
        ).one()
    assert based > permits / 2
    assert link_report["permits_without_valid_certificate"] == permits - based
    # A second import of the same file changes nothing.
    again = _invoke(demo_db, "permits", "import", str(REGISTER))
    assert "inserted 0" in again and "unchanged 2000" in again
