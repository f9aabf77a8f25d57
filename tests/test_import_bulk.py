"""The bulk paths of the vector import: overlaps found by the edge prefilter and coverage
validation in tiles (none missed at a tile border, none below the tolerance), and a big
first import loaded straight into the parcel table, indexes dropped and rebuilt, with
duplicates merged, the version rule enforced, and nothing left behind when it fails.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyogrio
import pytest
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gis_core.db import create_engine
from gis_core.errors import InvalidInput
from gis_core.settings import Settings
from importers import coverage, direct, merge, vector
from importers.cadastre import CadastreOptions, import_cadastre, parcel_target
from importers.runner import ImportFailed
from importers.staging import StageWriter
from tests.conftest import clear_parcels
from tests.test_import_atomic import grid_parcels

SIZE = 20.0


@pytest.fixture(scope="module")
def stereo(database_factory: Callable[..., Settings]) -> Settings:
    return database_factory("import_bulk", 3844, uat_siruta=999_997)


@pytest.fixture(scope="module")
def engine(stereo: Settings) -> Iterator[Engine]:
    engine = create_engine(stereo)
    yield engine
    engine.dispose()


@pytest.fixture
def empty(engine: Engine) -> Iterator[Engine]:
    yield clear_parcels(engine)


def _schema(engine: Engine | Connection) -> tuple[list[str], list[str], list[str]]:
    """The parcel table's index, trigger and constraint definitions."""
    with engine.connect() if isinstance(engine, Engine) else nullcontext(engine) as conn:
        indexes = conn.execute(
            sa.text(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = 'cadastre' "
                "AND tablename = 'parcel' ORDER BY indexdef"
            )
        ).scalars()
        triggers = conn.execute(
            sa.text(
                "SELECT pg_get_triggerdef(oid) FROM pg_trigger "
                "WHERE tgrelid = 'cadastre.parcel'::regclass AND NOT tgisinternal ORDER BY tgname"
            )
        ).scalars()
        constraints = conn.execute(
            sa.text(
                "SELECT conname || ' ' || pg_get_constraintdef(oid) || ' ' || convalidated "
                "FROM pg_constraint WHERE conrelid = 'cadastre.parcel'::regclass ORDER BY conname"
            )
        ).scalars()
        return list(indexes), list(triggers), list(constraints)


VERSION_TRIGGER = "tr_parcel_versions_inserted"
RUN_KEY = "fk_parcel_import_run_id_import_run"


def _watch_load(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The parcel table's schema as the direct load's ``finish`` finds it (mid-load),
    the columns the load wrote and the statements restoring the schema."""
    seen: list[Any] = []
    real_finish = direct.finish

    def watch(conn: Connection, load: direct.DirectLoad, *args: Any) -> Any:
        seen.append(_schema(conn))
        seen.append(load.columns())
        seen.append(list(load.saved))
        return real_finish(conn, load, *args)

    monkeypatch.setattr(direct, "finish", watch)
    return seen


def _count(engine: Engine, where: str = "true") -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(f"SELECT count(*) FROM cadastre.parcel WHERE {where}")
            ).scalar_one()
        )


def test_overlaps_are_found_across_tiles_above_the_tolerance(
    stereo: Settings, empty: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(coverage, "TILE_FEATURES", 4)  # the candidates in several tiles
    path = grid_parcels(tmp_path / "overlaps.gpkg", 36, prefix="O", size=SIZE)
    frame = pyogrio.read_dataframe(path)
    # 7 pushed 5 m into its neighbour 8 (100 m²); 20 redrawn inside 21 (25 m²);
    # 13 pushed 2 cm into 14 (0.4 m², below the 1 m² tolerance).
    frame.loc[7, "geometry"] = shapely.affinity.translate(frame.loc[7, "geometry"], 5.0, 0.0)
    x0, y0, _, _ = frame.loc[21, "geometry"].bounds
    frame.loc[20, "geometry"] = shapely.box(x0 + 5, y0 + 5, x0 + 10, y0 + 10)
    frame.loc[20, "SUPRAFATA"] = 25.0
    frame.loc[13, "geometry"] = shapely.affinity.translate(frame.loc[13, "geometry"], 0.02, 0.0)
    pyogrio.write_dataframe(frame, path, layer="parcels")
    report = import_cadastre(empty, stereo, [str(path)], CadastreOptions())
    overlaps = sorted(f"{f.feature} | {f.message}" for f in report.findings if f.code == "overlap")
    assert len(overlaps) == 2, overlaps
    assert "cadastral number O400007" in overlaps[0] and "O400008" in overlaps[0]
    assert "100.00 m²" in overlaps[0]
    assert "cadastral number O400020" in overlaps[1] and "O400021" in overlaps[1]
    assert "25.00 m²" in overlaps[1]
    assert report.counts["inserted"] == 36


def test_a_clean_coverage_has_no_suspects(
    stereo: Settings, empty: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suspects: list[list[int]] = []
    real = coverage.EdgeSketch.suspects

    def spy(sketch: coverage.EdgeSketch, tile_features: int | None = None) -> list[int]:
        suspects.append(real(sketch, tile_features))
        return suspects[-1]

    monkeypatch.setattr(coverage.EdgeSketch, "suspects", spy)
    path = grid_parcels(tmp_path / "clean.gpkg", 25, prefix="C", size=SIZE)
    report = import_cadastre(empty, stereo, [str(path)], CadastreOptions())
    assert suspects == [[]]
    assert report.finding_counts["overlap"] == 0


def test_only_the_rim_of_a_clean_coverage_is_validated(tmp_path: Path) -> None:
    """Edges shared by two neighbours clear a parcel before GEOS looks at it; a copy of a
    parcel (its edges walked twice the same way) does not clear it, in the same batch or
    in a later one."""
    path = grid_parcels(tmp_path / "rim.gpkg", 100, prefix="R", size=SIZE)
    geoms = np.asarray(pyogrio.read_dataframe(path).geometry.values, dtype=object)
    clean = coverage.EdgeSketch()
    clean.add(np.arange(50), geoms[:50])  # two batches: edges matched across them too
    clean.add(np.arange(50, 100), geoms[50:])
    assert clean.pool == [] and clean.matched == 0  # staging only keeps the rings
    rim = {i for i in range(100) if i < 10 or i >= 90 or i % 10 in (0, 9)}
    assert set(clean.candidates().tolist()) == rim
    assert clean.suspects() == []
    copy = shapely.reverse(geoms[55])  # its orientation does not matter
    same_batch = coverage.EdgeSketch()
    same_batch.add(np.arange(101), np.asarray([*geoms, copy], dtype=object))
    assert {55, 100} <= set(same_batch.candidates().tolist())
    later = coverage.EdgeSketch()
    later.add(np.arange(100), geoms)
    later.add(np.array([100]), np.asarray([copy], dtype=object))
    assert 100 in set(later.candidates().tolist())
    for sketch in (same_batch, later):
        assert {55, 100} <= set(sketch.suspects())
        pairs = sketch.overlaps(sketch.suspects(), 1.0, {})
        assert pairs == [(55, 100, pytest.approx(SIZE * SIZE))]


def test_cell_membership_and_edge_matching_agree_with_their_plain_forms() -> None:
    rng = np.random.default_rng(3)
    cells = rng.integers(0, 2**40, 5_000)
    taken = np.concatenate([rng.choice(cells, 50), rng.integers(0, 2**40, 50)])
    assert (coverage._member(cells, taken) == np.isin(cells, taken)).all()
    # Two squares sharing an edge, and a third far away: only the shared edge matches.
    squares = np.asarray(
        [shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1), shapely.box(5, 5, 6, 6)], dtype=object
    )
    sketch = coverage.EdgeSketch()
    sketch.add(np.arange(3), squares)
    pooled, bad = coverage._match(sketch.chunks[0].edges(), final=False)
    assert bad.size == 0 and len(pooled.row) == 10  # 12 edges, 2 matched
    assert sorted(sketch.candidates().tolist()) == [0, 1, 2]


def test_the_writer_waits_for_columns_still_being_made(db: Connection) -> None:
    db.execute(sa.text("CREATE TEMP TABLE later (i integer, t text)"))
    writer = StageWriter(db, "pg_temp.later", ["i", "t"])
    with ThreadPoolExecutor(1) as pool:
        writer.write({"i": np.array([1, 2]), "t": pool.submit(lambda: pa.array(["a", "b"]))})
        third = pool.submit(lambda: pa.array(["c"]))
        writer.write({"i": np.array([3]), "t": third}, background=False)
    writer.close()
    rows = db.execute(sa.text("SELECT i, t FROM pg_temp.later ORDER BY i")).all()
    assert [tuple(row) for row in rows] == [(1, "a"), (2, "b"), (3, "c")]


def test_twins_are_made_beside_the_validation_of_the_next_batch(
    stereo: Settings, empty: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    real = vector.twin_ewkb

    def spy(*args: Any) -> Any:
        threads.append(threading.current_thread().name)
        return real(*args)

    monkeypatch.setattr(vector, "twin_ewkb", spy)
    path = grid_parcels(tmp_path / "twins.gpkg", 30, prefix="T", size=SIZE)
    report = import_cadastre(empty, stereo, [str(path)], CadastreOptions(batch_size=8))
    assert report.counts["inserted"] == 30
    assert len(threads) == 4 and all(name.startswith("twins") for name in threads)
    assert _count(empty, "geom_etrs89 IS NOT NULL") == 30


def test_columns_are_copied_only_when_features_were_rejected(
    stereo: Settings, empty: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken: list[int] = []
    real = vector._take

    def spy(values: Any, picked: np.ndarray) -> Any:
        taken.append(len(picked))
        return real(values, picked)

    monkeypatch.setattr(vector, "_take", spy)
    path = grid_parcels(tmp_path / "clean.gpkg", 20, prefix="C", size=SIZE)
    assert import_cadastre(empty, stereo, [str(path)], CadastreOptions()).counts["inserted"] == 20
    assert taken == []
    frame = pyogrio.read_dataframe(path)
    frame.loc[3, "NR_CAD"] = None  # rejected: no cadastral number
    pyogrio.write_dataframe(frame, tmp_path / "one_rejected.gpkg", layer="parcels")
    with empty.begin() as conn:
        conn.execute(sa.text("TRUNCATE cadastre.parcel CASCADE"))
    report = import_cadastre(
        empty, stereo, [str(tmp_path / "one_rejected.gpkg")], CadastreOptions()
    )
    assert report.counts["rejected"] == 1 and report.counts["inserted"] == 19
    assert taken and set(taken) == {19}
    assert _count(empty, "cadastral_number = 'C400004' AND measured_area = 400") == 1


_FAULTS_SCRIPT = """
import resource, sys
import numpy as np
from importers.staging import keep_freed_memory

def faults():
    sizes = np.random.default_rng(1).integers(10_000, 2_500_000, (8, 12))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for batch_sizes in sizes:  # a batch's arrays of 0.1 to 20 MB, freed together
        batch = [np.ones(int(size)) for size in batch_sizes]
        del batch
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

faults()
plain = faults()
tuned = keep_freed_memory()
faults()
print(plain, faults(), tuned)
"""


def test_freed_batch_buffers_are_reused_without_page_faults() -> None:
    """A batch's arrays come back from the heap, not as fresh pages from the system."""
    import platform
    import subprocess
    import sys

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc only")
    output = subprocess.run(
        [sys.executable, "-c", _FAULTS_SCRIPT], check=True, capture_output=True, text=True
    ).stdout.split()
    plain, tuned, applied = int(output[0]), int(output[1]), output[2]
    assert applied == "True"
    assert plain > 10_000  # the batches' pages handed back and faulted in anew
    assert tuned < plain / 10


def test_thinness_takes_the_areas_the_import_computed() -> None:
    """The sliver check passes the areas it has; the measure is the same 4πA/P²."""
    from gis_core.validation import thinness

    geoms = np.asarray([shapely.box(0, 0, 10, 10), shapely.box(0, 0, 100, 0.01)], dtype=object)
    assert thinness(geoms).tolist() == pytest.approx([math.pi / 4, 4 * math.pi * 1 / 200.02**2])
    assert thinness(geoms, shapely.area(geoms)) == pytest.approx(thinness(geoms))
    assert thinness(geoms, np.zeros(2)).tolist() == [0.0, 0.0]  # the given areas are used
    assert thinness(np.asarray([shapely.Point(0, 0)], dtype=object)).tolist() == [0.0]


@pytest.mark.parametrize("column", ["address_id", "e2_identifier"])
def test_sparse_parcel_keys_are_indexed_where_present_and_still_found(
    engine: Engine, column: str
) -> None:
    """Indexes on keys most parcels lack hold only the parcels that have them (nothing
    to sort for them after a big load); lookups and joins by the key still use them."""
    with engine.begin() as conn:
        definition = conn.execute(
            sa.text("SELECT pg_get_indexdef(CAST(:name AS regclass))"),
            {"name": f"cadastre.ix_parcel_{column}"},
        ).scalar_one()
        assert definition.endswith(f"WHERE ({column} IS NOT NULL)")
        conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
        value = "1" if column == "address_id" else "'E2-1'"
        plans = [
            f"SELECT id FROM cadastre.parcel WHERE {column} = {value}",
            f"SELECT p.id FROM cadastre.parcel p JOIN (VALUES ({value})) v(k) ON p.{column} = v.k",
        ]
        for query in plans:
            plan = "\n".join(conn.execute(sa.text(f"EXPLAIN {query}")).scalars())
            assert f"ix_parcel_{column}" in plan


def _direct(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make a 30-parcel file a "big first import" (loaded straight into the table)."""
    monkeypatch.setattr(merge, "BULK_ROWS", 10)


def test_a_big_first_import_goes_straight_in_and_rebuilds_the_indexes(
    stereo: Settings, empty: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _direct(monkeypatch)
    before = _schema(empty)
    dropped: list[list[str]] = []
    real_drop = direct.drop_secondary_indexes

    def watch(conn: Any, tables: Any, **kwargs: Any) -> list[str]:
        dropped.append(real_drop(conn, tables, **kwargs))
        return dropped[-1]

    monkeypatch.setattr(direct, "drop_secondary_indexes", watch)
    during = _watch_load(monkeypatch)
    path = grid_parcels(tmp_path / "bulk.gpkg", 30, prefix="B", size=SIZE)
    report = import_cadastre(empty, stereo, [str(path)], CadastreOptions())
    assert report.counts["inserted"] == 30
    assert any("loaded straight into cadastre.parcel" in note for note in report.notes)
    assert any("USING gist (geom, geom_etrs89)" in statement for statement in dropped[0])
    # The version trigger and the run's foreign key were suspended for the load...
    _, triggers, constraints = during[0]
    assert not any(VERSION_TRIGGER in trigger for trigger in triggers)
    assert not any(RUN_KEY in constraint for constraint in constraints)
    assert any("pk_parcel" in constraint for constraint in constraints)
    # ... and are back, validated, with the indexes.
    assert _schema(empty) == before
    assert any(VERSION_TRIGGER in t for t in before[1])
    assert any(RUN_KEY in c and c.endswith(" true") for c in before[2])
    # Ids were sent with the rows, one block taken from the sequence, which moved past it.
    with empty.connect() as conn:
        low, high, count, following = conn.execute(
            sa.text(
                "SELECT min(id), max(id), count(DISTINCT id), "
                "nextval(pg_get_serial_sequence('cadastre.parcel', 'id')) FROM cadastre.parcel"
            )
        ).one()
    assert (high - low + 1, count) == (30, 30) and following > high
    # Columns the file does not feed were left out of the COPY (NULL, no default).
    columns = during[1]
    assert columns[0] == "id"
    assert {"cadastral_number", "measured_area", "geom", "geom_etrs89"} <= set(columns)
    assert not {"land_book_number", "notes", "address_id", "intravilan"} & set(columns)
    # The GiST index (geometry and twin) is built first, beside the overlap test; B-trees after.
    kinds = [" USING gist " in statement for statement in during[2] if "INDEX" in statement]
    assert kinds == sorted(kinds, reverse=True) and kinds.count(True) == 1
    with empty.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT count(*), count(geom_etrs89), count(DISTINCT import_run_id), "
                "sum(measured_area), min(valid_from) = max(valid_from) FROM cadastre.parcel"
            )
        ).one()
    assert tuple(row) == (30, 30, 1, pytest.approx(30 * SIZE * SIZE), True)
    again = import_cadastre(empty, stereo, [str(path)], CadastreOptions())
    assert again.counts["unchanged"] == 30 and again.counts["inserted"] == 0
    assert not any("straight into" in note for note in again.notes)
    with empty.connect() as conn, pytest.raises(sa.exc.IntegrityError, match="ex_parcel"):
        conn.execute(
            sa.text(
                "INSERT INTO cadastre.parcel (uat_siruta, cadastral_number, valid_from) "
                "SELECT uat_siruta, cadastral_number, valid_from + interval '1 second' "
                "FROM cadastre.parcel LIMIT 1"
            )
        )


def test_the_key_column_is_read_while_the_first_batch_is_validated(
    stereo: Settings, empty: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The direct load's first read of the key column runs beside the first batch's
    validation, not before it (when nothing else would run)."""
    from importers.readers.ogr import OgrSource

    _direct(monkeypatch)
    validating = threading.Event()
    overlapped: list[bool] = []
    real_read, real_check = OgrSource.read_column, vector._check_areas

    def read_column(self: OgrSource, name: str) -> pa.Array:
        elsewhere = threading.current_thread() is not threading.main_thread()
        overlapped.append(elsewhere and validating.wait(timeout=5))
        return real_read(self, name)

    def check_areas(*args: Any) -> None:
        validating.set()
        real_check(*args)

    monkeypatch.setattr(OgrSource, "read_column", read_column)
    monkeypatch.setattr(vector, "_check_areas", check_areas)
    path = grid_parcels(tmp_path / "keys.gpkg", 30, prefix="K", size=SIZE)
    report = import_cadastre(empty, stereo, [str(path)], CadastreOptions())
    assert overlapped == [True]
    assert report.counts["inserted"] == 30
    assert any("loaded straight into cadastre.parcel" in note for note in report.notes)


def test_a_big_first_import_merges_duplicates_and_reports_findings(
    stereo: Settings, empty: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _direct(monkeypatch)
    path = grid_parcels(tmp_path / "dups.gpkg", 60, prefix="D", size=SIZE)
    frame = pyogrio.read_dataframe(path)
    frame.loc[5, "NR_CAD"] = frame.loc[4, "NR_CAD"]  # two pieces of D400004
    frame.loc[9, "geometry"] = None  # a register row: kept without geometry, reported
    frame.loc[11, "SUPRAFATA"] = -5.0  # a bad number: left empty, reported
    pyogrio.write_dataframe(frame, path, layer="parcels")
    report = import_cadastre(empty, stereo, [str(path)], CadastreOptions())
    assert any("straight into" in note for note in report.notes)
    assert report.counts["inserted"] == 59 and report.counts["rejected"] == 0
    assert report.finding_counts["missing_geometry"] == 1
    assert report.finding_counts["bad_number"] == 1
    duplicate = next(f for f in report.findings if f.code == "duplicate_key")
    assert "'D400004' appears in 2 features (feature 4, feature 5)" in duplicate.message
    assert report.finding_counts["overlap"] == 0
    with empty.connect() as conn:
        merged = conn.execute(
            sa.text(
                "SELECT ST_NumGeometries(geom), ST_Area(geom), measured_area, "
                "geom_etrs89 IS NOT NULL FROM cadastre.parcel WHERE cadastral_number = 'D400004'"
            )
        ).one()
    # Two squares side by side: their union is one polygon of both areas.
    assert merged[0] == 1 and merged[1] == pytest.approx(2 * SIZE * SIZE)
    assert float(merged[2]) == pytest.approx(2 * SIZE * SIZE) and merged[3]
    assert _count(empty) == 59
    assert _count(empty, "geom IS NULL AND geom_etrs89 IS NULL") == 1
    assert _count(empty, "measured_area IS NULL") == 1


KEYED = ("address_id", "import_run_id")  # the keys a big first load drops and adds back


def _statements_of(engine: Engine) -> tuple[list[str], Callable[[], None]]:
    """The SQL the engine runs from now on, and a function that stops recording."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    return seen, lambda: sa.event.remove(engine, "before_cursor_execute", record)


@pytest.mark.parametrize("duplicated", [False, True])
def test_the_load_is_analyzed_after_its_indexes_and_before_its_keys(
    stereo: Settings,
    empty: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    duplicated: bool,
) -> None:
    """The keys added back check the rows with statistics: on a million parcels the
    address key's check then reads the empty column's partial index instead of the
    table. Merged duplicates, inserted after, get a second ANALYZE."""
    _direct(monkeypatch)
    path = grid_parcels(tmp_path / "analyzed.gpkg", 60, prefix="A", size=SIZE)
    if duplicated:
        frame = pyogrio.read_dataframe(path)
        frame.loc[5, "NR_CAD"] = frame.loc[4, "NR_CAD"]
        pyogrio.write_dataframe(frame, path, layer="parcels")
    seen, stop = _statements_of(empty)
    try:
        import_cadastre(empty, stereo, [str(path)], CadastreOptions())
    finally:
        stop()

    def first(prefix: str) -> int:
        return next(i for i, statement in enumerate(seen) if statement.startswith(prefix))

    last_index = max(i for i, s in enumerate(seen) if s.startswith("CREATE INDEX ix_parcel"))
    analyzed = [i for i, s in enumerate(seen) if s == "ANALYZE cadastre.parcel"]
    keys = [first(f"ALTER TABLE cadastre.parcel ADD CONSTRAINT fk_parcel_{c}") for c in KEYED]
    assert last_index < analyzed[0] < min(keys)
    assert analyzed[0] < first("CREATE TRIGGER tr_parcel_versions_inserted")
    assert len(analyzed) == (2 if duplicated else 1)
    if duplicated:
        assert analyzed[-1] > max(keys)


def test_overlapping_versions_fail_the_import_and_leave_nothing(
    stereo: Settings, empty: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A closed version of one parcel ends in the future: the new version (from now)
    would overlap it. Through staging and straight in alike, the import is refused,
    naming the parcel, and the table is as it was."""
    path = grid_parcels(tmp_path / "clash.gpkg", 30, prefix="V", size=SIZE)
    with empty.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO cadastre.parcel (uat_siruta, cadastral_number, valid_from, valid_to) "
                "VALUES (:u, 'V400017', now() - interval '1 year', now() + interval '1 year')"
            ),
            {"u": stereo.uat_siruta},
        )
    before = _schema(empty)
    for straight in (False, True):
        if straight:
            _direct(monkeypatch)
        with pytest.raises(ImportFailed, match="ex_parcel_versions") as failed:
            import_cadastre(empty, stereo, [str(path)], CadastreOptions())
        assert "parcel V400017" in str(failed.value)
        assert _count(empty) == 1
        assert _schema(empty) == before


def test_keys_in_order_need_no_count_and_shared_ones_are_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counted: list[int] = []
    real = direct.pc.value_counts

    def count(values: pa.Array) -> Any:
        counted.append(len(values))
        return real(values)

    monkeypatch.setattr(direct.pc, "value_counts", count)
    values, sharing = direct.shared_keys(pa.array(["1", None, "2", "30", "4"]))
    assert values.to_pylist() == [] and sharing == 0 and counted == []
    values, sharing = direct.shared_keys(pa.array(["1", "2", "2", "3"]))
    assert values.to_pylist() == ["2"] and sharing == 2
    values, sharing = direct.shared_keys(pa.array(["3", "1", "2", "1", "1", None]))
    assert values.to_pylist() == ["1"] and sharing == 3
    assert counted == [4, 5]


def test_a_column_left_out_of_the_load_must_stay_empty() -> None:
    target = parcel_target(1)
    load = direct.DirectLoad(target, None, pa.array([], pa.string()), omitted=frozenset({"notes"}))
    assert "notes" not in load.columns() and "cadastral_number" in load.columns()
    batch = {c: pa.nulls(2, pa.string()) for c in target.data_columns}
    batch["cadastral_number"] = pa.array(["1", "2"])
    rows, _ = load.split(batch, 2)
    assert rows is not None and load.written == 2
    batch["notes"] = pa.array(["a note", None])
    with pytest.raises(ValueError, match="notes"):
        load.split(batch, 2)


def test_written_keys_are_compared_with_the_first_read_by_row() -> None:
    """Keys found at their rows of the first read need no count at the end."""
    target = parcel_target(1)
    load = direct.DirectLoad(
        target,
        None,
        pa.array([], pa.string()),
        unchecked=True,
        first_read=pa.array(["1", "2", "3"]),
    )

    def batch(rows: list[int], keys: list[str]) -> dict[str, Any]:
        data: dict[str, Any] = {c: pa.nulls(len(rows), pa.string()) for c in target.data_columns}
        data["row_no"] = np.array(rows, dtype=np.int64)
        data["cadastral_number"] = pa.array(keys)
        return data

    load.split(batch([0, 2], ["1", "3"]), 2)
    assert load.matches_first_read
    load.split(batch([1], ["9"]), 1)
    assert not load.matches_first_read


def test_a_load_whose_keys_differ_from_the_first_read_fails(
    stereo: Settings, empty: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The version trigger is suspended because the first read of the key column found
    every key once; if the batches then bring a key twice (the file was rewritten in
    between), the load fails and leaves nothing, instead of two current versions."""
    _direct(monkeypatch)
    path = grid_parcels(tmp_path / "changed.gpkg", 30, prefix="K", size=SIZE)
    frame = pyogrio.read_dataframe(path)
    frame.loc[7, "NR_CAD"] = frame.loc[3, "NR_CAD"]
    pyogrio.write_dataframe(frame, path, layer="parcels")
    from importers.readers.ogr import OgrSource

    def first_read(source: OgrSource, name: str) -> Any:  # what the file held before
        return pa.array([f"K{400000 + i}" for i in range(30)])

    monkeypatch.setattr(OgrSource, "read_column", first_read)
    during = _watch_load(monkeypatch)
    before = _schema(empty)
    with pytest.raises(ImportFailed, match=r"K400003.*changed during the import"):
        import_cadastre(empty, stereo, [str(path)], CadastreOptions())
    assert not any(VERSION_TRIGGER in trigger for trigger in during[0][1])
    assert _count(empty) == 0
    assert _schema(empty) == before


def test_the_run_key_stays_when_another_transaction_holds_the_runs(
    stereo: Settings, empty: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import of another kind holds the run table: the load does not wait for its
    lock (nor deadlock with it); the foreign key stays and checks the rows itself."""
    _direct(monkeypatch)
    during = _watch_load(monkeypatch)
    path = grid_parcels(tmp_path / "busy.gpkg", 30, prefix="L", size=SIZE)
    before = _schema(empty)
    with empty.connect() as other:
        other.execute(
            sa.text(
                "INSERT INTO core.import_run (kind, source, parameters, actor) "
                "VALUES ('zoning', 'plan.gpkg', '{}', 'test')"
            )
        )
        report = import_cadastre(empty, stereo, [str(path)], CadastreOptions())
        other.rollback()
    assert report.counts["inserted"] == 30
    assert any(RUN_KEY in constraint for constraint in during[0][2])
    assert not any(VERSION_TRIGGER in trigger for trigger in during[0][1])
    assert _schema(empty) == before


def test_more_rows_than_counted_move_the_sequence_past_them(
    stereo: Settings, empty: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader whose count fell short: the rows beyond the reserved ids still get
    unique ones, and the sequence is moved past them before anyone else inserts."""
    _direct(monkeypatch)
    real = direct._reserve_ids
    monkeypatch.setattr(direct, "_reserve_ids", lambda conn, load, n: real(conn, load, n - 12))
    path = grid_parcels(tmp_path / "short.gpkg", 30, prefix="S", size=SIZE)
    report = import_cadastre(empty, stereo, [str(path)], CadastreOptions())
    assert report.counts["inserted"] == 30
    with empty.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO cadastre.parcel (uat_siruta, cadastral_number) VALUES (1, 'after')"
            )
        )
    assert _count(empty) == 31
    with empty.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT count(DISTINCT id) FROM cadastre.parcel")).scalar() == 31
        )


def test_a_failed_big_first_import_leaves_the_schema_in_place(
    stereo: Settings, empty: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _direct(monkeypatch)
    before = _schema(empty)
    real_finish = direct.finish

    def finish_then_fail(*args: Any) -> Any:
        real_finish(*args)
        raise InvalidInput("disk full (simulated after the load)")

    monkeypatch.setattr(direct, "finish", finish_then_fail)
    path = grid_parcels(tmp_path / "failing.gpkg", 30, prefix="F", size=SIZE)
    with pytest.raises(ImportFailed, match="simulated"):
        import_cadastre(empty, stereo, [str(path)], CadastreOptions())
    assert _schema(empty) == before
    assert _count(empty) == 0
