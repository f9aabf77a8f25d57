"""Real data: Cambridge (MA) special permits linked to the FY2014 parcels (EPSG:26986).

Measured facts (shared/data/real/SOURCES.md): 393 of 499 permits cite at least one
existing parcel id (``MapLots`` -> ``ML``), all 499 points fall inside a parcel, and for
307 the containing parcel is one the permit cites. The rest must wait in the review
queue with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pyogrio
import pytest
import shapely
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import URL, Engine

from gis_core import migrate
from gis_core.bulk import copy_rows
from gis_core.db import create_engine
from gis_core.settings import Settings
from tests.conftest import drop_database, fresh_database, settings_for
from webmap.cli import main

SRID = 26986
CAMBRIDGE_MAP = (
    "number=CaseID,cadastral_numbers=MapLots,source_id=GlobalID,address=ProjectAddress,"
    "purpose=ProjectName,status=CaseStatus"
)


def load_cambridge_parcels(engine: Engine, shared_data: Path, uat: int) -> int:
    """FY2014 parcels by COPY, one imobil per map-lot (the pieces of one ML together)."""
    frame = pyogrio.read_dataframe(shared_data / "real/cambridge-ma/parcels_fy2014.gpkg")
    frame = frame.to_crs(SRID)
    parts: dict[str, list[shapely.Polygon]] = {}
    for ml, geom in zip(frame["ML"], shapely.make_valid(frame.geometry.values), strict=True):
        polygons = shapely.get_parts(shapely.get_parts(geom))
        parts.setdefault(str(ml), []).extend(
            p for p in polygons if p.geom_type == "Polygon" and not p.is_empty
        )
    numbers = [ml for ml in parts if parts[ml]]
    geoms = shapely.set_srid(np.asarray([shapely.MultiPolygon(parts[ml]) for ml in numbers]), SRID)
    wkb = shapely.to_wkb(geoms, include_srid=True)
    with engine.begin() as conn:
        return copy_rows(
            conn,
            "cadastre.parcel",
            ("uat_siruta", "cadastral_number", "geom"),
            zip([uat] * len(numbers), numbers, wkb, strict=True),
        )


@pytest.fixture(scope="module")
def cambridge(server_url: URL, shared_data: Path) -> Iterator[Settings]:
    name = f"urbangis_test_permits_26986_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    settings = settings_for(fresh_database(server_url, name), SRID)
    engine = create_engine(settings)
    migrate.upgrade(engine, SRID)
    load_cambridge_parcels(engine, shared_data, settings.uat_siruta)
    engine.dispose()
    yield settings
    drop_database(server_url, name)


def _invoke(settings: Settings, *args: str) -> str:
    env = {
        "URBANGIS_DATABASE_URL": settings.database_url.get_secret_value(),  # type: ignore[union-attr]
        "URBANGIS_STORAGE_SRID": str(SRID),
    }
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_cambridge_permits_reproduce_the_measured_figures(
    cambridge: Settings, shared_data: Path, tmp_path: Path
) -> None:
    permits = shared_data / "real/cambridge-ma/special_permits.geojson"
    out = _invoke(
        cambridge, "permits", "import", str(permits), "--map", CAMBRIDGE_MAP, "--kind", "AC"
    )
    assert "inserted 499" in out
    assert "unreadable_cadastral_number: 2" in out  # "Numerous (~39)"
    report_file = tmp_path / "link.json"
    out = _invoke(cambridge, "permits", "link", "--report", str(report_file))
    report = orjson.loads(report_file.read_bytes())
    assert report["acts"] == 499, report
    assert report["acts_citing_an_existing_parcel"] == 393
    assert report["acts_located_in_a_parcel"] == 499
    assert report["location_in_a_cited_parcel"] == 307
    assert report["number_location_disagreements"] == 393 - 307
    assert report["linked"] == 499
    assert report["by_method"] == {"number": 393, "spatial": 106}
    assert report["queued"] == 499 - 307
    assert report["queue_reasons"]["number_location_disagree"] == 86
    assert "location in a cited parcel 307" in out
    queue = _invoke(cambridge, "permits", "queue", "--json", "--limit", "1000")
    items = orjson.loads(queue)
    assert sum(items["counts"].values()) == 192
    assert all(item["detail"] for item in items["items"])
    engine = create_engine(cambridge)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT link_state, count(*) FROM permits.act GROUP BY 1"))
            states: dict[str, int] = dict(rows.tuples().all())
    finally:
        engine.dispose()
    assert states == {"linked": 307, "review": 192}
    # Re-linking is idempotent: same figures, no duplicate queue items.
    again = _invoke(cambridge, "permits", "link")
    assert "queued for review 192" in again
