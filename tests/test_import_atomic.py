"""All or nothing: a killed import, a failed one and a strict one leave the data as it was;
a replace import closes what disappeared; encodings are detected and text kept as written.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gis_core.db import create_engine
from gis_core.search_keys import search_key
from gis_core.settings import Settings
from importers.cadastre import CadastreOptions, import_cadastre
from importers.restrictions import RestrictionOptions, import_restrictions
from importers.runner import ImportFailed

ORIGIN = (390_000.0, 583_000.0)  # Stereo 70, inside Romania


@pytest.fixture(scope="module")
def stereo(database_factory: Callable[..., Settings]) -> Settings:
    return database_factory("import_atomic", 3844, uat_siruta=999_998)


@pytest.fixture(scope="module")
def engine(stereo: Settings) -> Iterator[Engine]:
    engine = create_engine(stereo)
    yield engine
    engine.dispose()


def grid_parcels(path: Path, count: int, *, prefix: str = "", size: float = 20.0) -> Path:
    """A GeoPackage of ``count`` square parcels in EPSG:3844 with numbers and areas."""
    side = int(np.ceil(np.sqrt(count)))
    index = np.arange(count)
    x = ORIGIN[0] + (index % side) * size
    y = ORIGIN[1] + (index // side) * size
    frame = gpd.GeoDataFrame(
        {
            "NR_CAD": [f"{prefix}{400000 + i}" for i in range(count)],
            "SUPRAFATA": np.full(count, size * size),
        },
        geometry=shapely.box(x, y, x + size, y + size),
        crs="EPSG:3844",
    )
    pyogrio.write_dataframe(frame, path, layer="parcels")
    return path


def _state(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            int(conn.execute(sa.text(sql)).scalar_one())
            for sql in (
                "SELECT count(*) FROM cadastre.parcel",
                "SELECT count(*) FROM cadastre.parcel WHERE valid_to IS NOT NULL",
                "SELECT count(*) FROM core.import_run",
            )
        )


def test_a_killed_import_leaves_no_trace(stereo: Settings, engine: Engine, tmp_path: Path) -> None:
    import_cadastre(
        engine, stereo, [str(grid_parcels(tmp_path / "small.gpkg", 50))], CadastreOptions()
    )
    before = _state(engine)
    big = grid_parcels(tmp_path / "big.gpkg", 150_000, prefix="K")
    env = {
        **os.environ,
        "URBANGIS_DATABASE_URL": stereo.database_url.get_secret_value(),  # type: ignore[union-attr]
        "URBANGIS_STORAGE_SRID": "3844",
        "URBANGIS_UAT_SIRUTA": str(stereo.uat_siruta),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from webmap.cli import main; main()",
            "import",
            "cadastre",
            str(big),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_staging(engine, process)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    _wait_for_backends_gone(engine)
    assert _state(engine) == before


def _wait_for_staging(engine: Engine, process: subprocess.Popen[bytes], rows: int = 10_000) -> None:
    """Until the import's COPY has sent ``rows`` rows into its transaction (PostgreSQL's
    COPY progress view), so the kill lands while written rows are still uncommitted, not
    after a guessed delay by which a fast import may have committed."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert process.poll() is None, "the import ended before it could be killed"
        with engine.connect() as conn:
            copied = conn.execute(
                sa.text(
                    "SELECT coalesce(max(tuples_processed), 0) FROM pg_stat_progress_copy "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
        if copied >= rows:
            return
        time.sleep(0.02)
    raise AssertionError("the import never started staging")


def _wait_for_backends_gone(engine: Engine) -> None:
    for _ in range(100):
        with engine.connect() as conn:
            others = conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
                )
            ).scalar_one()
        if not others:
            return
        time.sleep(0.1)


def test_strict_fails_on_findings_and_writes_nothing(
    stereo: Settings, engine: Engine, tmp_path: Path
) -> None:
    path = grid_parcels(tmp_path / "strict.gpkg", 30, prefix="S")
    frame = pyogrio.read_dataframe(path)
    frame.loc[3, "SUPRAFATA"] = 999.0  # measured area far from the drawn 400 m²
    frame.loc[5, "geometry"] = shapely.Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])  # bow-tie
    frame.loc[5, "geometry"] = shapely.affinity.translate(frame.loc[5, "geometry"], *ORIGIN)
    pyogrio.write_dataframe(frame, path, layer="parcels")
    before = _state(engine)
    with pytest.raises(ImportFailed, match="--strict") as failure:
        import_cadastre(engine, stereo, [str(path)], CadastreOptions(strict=True))
    assert failure.value.report.finding_counts["area_mismatch"] == 2  # row 3 and the bow-tie
    assert failure.value.report.finding_counts["repaired"] == 1
    after = _state(engine)
    assert after[:2] == before[:2] and after[2] == before[2] + 1  # only the failed run recorded
    report = import_cadastre(engine, stereo, [str(path)], CadastreOptions())
    assert report.counts["repaired"] == 1 and report.counts["inserted"] == 30


def test_replace_closes_what_disappeared(stereo: Settings, engine: Engine, tmp_path: Path) -> None:
    full = grid_parcels(tmp_path / "full.gpkg", 20, prefix="R")
    import_cadastre(engine, stereo, [str(full)], CadastreOptions())
    frame = pyogrio.read_dataframe(full).iloc[:15]
    frame.loc[0, "geometry"] = shapely.affinity.scale(frame.loc[0, "geometry"], 1.5, 1.0)
    partial = tmp_path / "partial.gpkg"
    pyogrio.write_dataframe(frame, partial, layer="parcels")
    appended = import_cadastre(engine, stereo, [str(partial)], CadastreOptions(dry_run=True))
    assert (appended.counts["changed"], appended.counts["closed"]) == (1, 0)
    replaced = import_cadastre(engine, stereo, [str(partial)], CadastreOptions(mode="replace"))
    assert replaced.counts["changed"] == 1
    assert replaced.counts["unchanged"] == 14
    with engine.connect() as conn:
        current = conn.execute(
            sa.text(
                "SELECT count(*) FROM cadastre.parcel "
                "WHERE valid_to IS NULL AND cadastral_number LIKE 'R%'"
            )
        ).scalar_one()
    assert current == 15
    assert replaced.counts["closed"] >= 5  # R400015..R400019 (and earlier tests' parcels)


def test_legacy_code_page_is_detected_and_text_kept_as_written(
    stereo: Settings, engine: Engine, tmp_path: Path
) -> None:
    names = ["Zona protejată Ştefan cel Mare", "Situl Ţara Moţilor", "Piaţa Unirii"]
    x = ORIGIN[0] + np.arange(3) * 100.0
    frame = gpd.GeoDataFrame(
        {"DENUMIRE": names, "COD": ["Z1", "Z2", "Z3"]},
        geometry=shapely.box(x, np.full(3, ORIGIN[1]), x + 50, np.full(3, ORIGIN[1] + 50)),
        crs="EPSG:3844",
    )
    path = tmp_path / "zone_protejate.shp"
    pyogrio.write_dataframe(frame, path, encoding="CP1250")
    path.with_suffix(".cpg").unlink(missing_ok=True)
    dbf = path.with_suffix(".dbf")
    data = bytearray(dbf.read_bytes())
    data[29] = 0  # no language driver: only the bytes can tell the code page
    dbf.write_bytes(bytes(data))
    report = import_restrictions(engine, stereo, str(path), RestrictionOptions(kind="heritage"))
    assert any("detected as CP1250" in note for note in report.notes)
    with engine.connect() as conn:
        stored = (
            conn.execute(
                sa.text(
                    "SELECT name FROM urbanism.restriction WHERE kind = 'heritage' ORDER BY name"
                )
            )
            .scalars()
            .all()
        )
    assert stored == sorted(names)
    assert search_key("Ştefan") == search_key("Ștefan") == "stefan"
