"""Bulk work runs with Python's cyclic garbage collector paused, and resumes it after."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gis_core.collector import collector_paused
from gis_core.errors import InvalidInput
from importers.demo import load as demo_load
from importers.demo.generate import DemoParameters
from importers.report import ImportReport
from importers.runner import ImportFailed, RunRequest, run_import


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    """Each test starts with the collector on, as a fresh process does."""
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_paused_inside_and_resumed_after() -> None:
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_resumed_after_a_failure() -> None:
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_left_off_when_it_was_off_before() -> None:
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_resumed_only_when_the_last_holder_ends() -> None:
    """Two jobs in two threads: the first to end must not resume it under the other."""
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def first() -> None:
        with collector_paused():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second() -> None:
        with collector_paused():
            second_in.set()
            first_out.wait(5)
            seen.append(gc.isenabled())

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    threads[0].start()
    first_in.wait(5)
    threads[1].start()
    for thread in threads:
        thread.join(10)
    assert seen == [False]
    assert gc.isenabled()


def _request() -> RunRequest:
    return RunRequest("cadastre", ["collector.test"], {}, dry_run=True)


def test_an_import_runs_with_the_collector_paused(engine: Engine) -> None:
    seen: list[bool] = []

    def body(conn: Connection, report: ImportReport, run_id: int | None) -> None:
        seen.append(gc.isenabled())
        conn.execute(sa.text("SELECT 1"))

    run_import(engine, _request(), body)
    assert seen == [False]
    assert gc.isenabled()


def test_a_failed_import_resumes_the_collector(engine: Engine) -> None:
    def body(conn: Connection, report: ImportReport, run_id: int | None) -> None:
        raise InvalidInput("a bad file")

    with pytest.raises(ImportFailed, match="a bad file"):
        run_import(engine, _request(), body)
    assert gc.isenabled()


def test_the_demo_is_generated_with_the_collector_paused(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []

    class Stop(Exception):
        pass

    def generate(*args: object, **kwargs: object) -> object:
        seen.append(gc.isenabled())
        raise Stop

    monkeypatch.setattr(demo_load, "generate", generate)
    with pytest.raises(Stop):
        demo_load.load_demo(engine, DemoParameters(parcels=10))
    assert seen == [False]
    assert gc.isenabled()
