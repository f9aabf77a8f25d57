"""Memory of a vector import: the batches between the reader and PostgreSQL are bounded
(when the COPY or the twin thread falls behind, the reader waits instead of piling up
batches), and the import benchmark reports the import process's own peak.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from gis_core.settings import Settings
from importers import staging, vector
from importers.cadastre import CadastreOptions, import_cadastre
from tests.conftest import parcel_free_engine
from tests.test_import_atomic import grid_parcels

BATCH = 8
PARCELS = 80  # ten batches
# Batches read but not yet encoded for the COPY when the writer is the slow end: the
# one being encoded, the one queued for it and the one waiting to be queued.
MOST_IN_FLIGHT = 3


@pytest.fixture(scope="module")
def stereo(database_factory: Callable[..., Settings]) -> Settings:
    return database_factory("import_memory", 3844, uat_siruta=999_996)


@pytest.fixture
def empty(stereo: Settings) -> Iterator[Engine]:
    with parcel_free_engine(stereo) as engine:
        yield engine


class _InFlight:
    """Counts batches entering validation and leaving through the COPY encoder."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entered = self.encoded = self.most = 0

    def enter(self) -> None:
        with self.lock:
            self.entered += 1
            self.most = max(self.most, self.entered - self.encoded)

    def leave(self) -> None:
        with self.lock:
            self.encoded += 1


def _watch(monkeypatch: pytest.MonkeyPatch, *, slow: str) -> _InFlight:
    flight = _InFlight()
    real_stage, real_encode, real_twins = vector.stage_batch, staging.encode_rows, vector.twin_ewkb

    def stage_batch(*args: Any, **kwargs: Any) -> None:
        flight.enter()
        real_stage(*args, **kwargs)

    def encode_rows(*args: Any) -> Any:
        if slow == "copy":
            time.sleep(0.1)
        encoded = real_encode(*args)
        flight.leave()
        return encoded

    def twin_ewkb(*args: Any) -> Any:
        if slow == "twins":
            time.sleep(0.1)
        return real_twins(*args)

    monkeypatch.setattr(vector, "stage_batch", stage_batch)
    monkeypatch.setattr(staging, "encode_rows", encode_rows)
    monkeypatch.setattr(vector, "twin_ewkb", twin_ewkb)
    return flight


@pytest.mark.parametrize("slow", ["copy", "twins"])
def test_batches_in_flight_stay_bounded_when_a_stage_falls_behind(
    stereo: Settings,
    empty: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    slow: str,
) -> None:
    """A slow COPY (PostgreSQL busy) or a slow twin thread makes the reader wait: the
    batches held at once stay at three whatever the file's size."""
    flight = _watch(monkeypatch, slow=slow)
    path = grid_parcels(tmp_path / f"slow_{slow}.gpkg", PARCELS, prefix="M", size=20.0)
    report = import_cadastre(empty, stereo, [str(path)], CadastreOptions(batch_size=BATCH))
    assert report.counts["inserted"] == PARCELS
    assert flight.entered == flight.encoded == PARCELS // BATCH
    assert 2 <= flight.most <= MOST_IN_FLIGHT  # the writer did fall behind, and was waited for


def _bench() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_import.py"
    spec = importlib.util.spec_from_file_location("bench_import", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_PARENT = """
import subprocess, sys
held = bytearray(600 * 2**20)
held[::4096] = b"x" * len(held[::4096])  # every page touched: the parent's peak
del held
child = sys.argv[1] + "\\nprint(peak_bytes())"
print(subprocess.run([sys.executable, "-c", child], capture_output=True, text=True).stdout)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="VmHWM is Linux's")
def test_the_benchmark_reports_the_import_process_own_peak_memory() -> None:
    """A parent that peaked at 600 MB (the benchmark generating its file) does not lend
    its peak to the import's figure, as ``ru_maxrss`` does after exec."""
    bench = _bench()
    output = subprocess.run(
        [sys.executable, "-c", _PARENT, bench.PEAK_SOURCE],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert 0 < int(output.split()[0]) < 200 * 2**20


def test_imports_read_batches_of_twenty_five_thousand_features_by_default() -> None:
    """Smaller batches than 50 000 were measured faster on a million parcels (caches,
    a shorter drain at the end) and hold less memory; every vector import uses them."""
    from importers.restrictions import RestrictionOptions
    from importers.zoning import ZoningOptions

    assert vector.DEFAULT_BATCH == 25_000
    assert CadastreOptions().batch_size == vector.DEFAULT_BATCH
    assert ZoningOptions.__dataclass_fields__["batch_size"].default == vector.DEFAULT_BATCH
    assert RestrictionOptions.__dataclass_fields__["batch_size"].default == vector.DEFAULT_BATCH
