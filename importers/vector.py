"""The pipeline every vector import runs: read → check CRS → repair → stage → merge.

Format- and table-specific work is delegated: a reader yields batches, a ``Converter``
turns a batch's attribute columns into the target's columns, a ``Target`` says how
versions are recognised. Everything else (the CRS decision on the first batch,
reprojection, validation and repair, rejections with reasons, area and sliver checks,
the UAT test, ETRS89 twins, COPY into staging, duplicates, overlaps, the versioned
merge) happens here, once, for parcels, buildings, zones and restrictions alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeAlias, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from sqlalchemy.engine import Connection

from gis_core.bulk import copy_arrays
from gis_core.twins import fill_missing_twins
from gis_core.validation import EMPTY, MISSING, REJECTIONS, thinness, to_polygonal
from importers import checks, direct
from importers.coverage import EdgeSketch
from importers.direct import DirectLoad, KeyedSource
from importers.fields import FieldMap
from importers.geometry import (
    Rings,
    close_lines,
    decode_wkb,
    reproject,
    storage_ewkb,
    swap_axes,
    twin_ewkb,
    unreadable_reason,
)
from importers.merge import GEOMETRY_KEY, MergeCounts, Target, create_stage, merge
from importers.progress import Progress
from importers.readers.batch import FeatureBatch, VectorSource
from importers.report import Finding, ImportReport
from importers.sourcecrs import CrsDecision, Municipality, decide, fits, sample_coordinates
from importers.staging import StageWriter, keep_freed_memory, resolved
from importers.values import text_array

# Measured vs computed area: reported beyond both limits.
AREA_TOLERANCE_SHARE = 0.05
AREA_TOLERANCE_M2 = 1.0
SLIVER_THINNESS = 0.005
SLIVER_AREA_M2 = 0.5
# Features a batch holds. The pipeline holds three batches (staging.StageWriter), and
# the last ones drain through twins, encoding and PostgreSQL with nothing beside them:
# 25 000 rather than 50 000 took a million-parcel import 7 % less time and CPU (smaller
# arrays stay in the caches, a shorter drain) and 60 MB less memory.
DEFAULT_BATCH = 25_000


# A column of values: a list, a numpy array, or an Arrow array (the vectorised readers).
Values: TypeAlias = list[Any] | np.ndarray | pa.Array


@dataclass
class Converted:
    """A batch's values for the staged columns; ``keys`` label features and reject keyless ones."""

    columns: Mapping[str, Values]
    keys: Values | None = None
    measured_area: Values | None = None

    def key(self, index: int) -> Any:
        if self.keys is None:
            return None
        if isinstance(self.keys, pa.Array):
            return self.keys[index].as_py()
        return self.keys[index]

    def missing_keys(self, count: int) -> np.ndarray:
        """Which features have no key (all False when the target has no key column)."""
        if self.keys is None:
            return np.zeros(count, dtype=bool)
        if isinstance(self.keys, pa.Array):
            return np.asarray(self.keys.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        return np.array([key is None for key in self.keys], dtype=bool)


Converter = Callable[[FeatureBatch, FieldMap, ImportReport], Converted]


@dataclass
class VectorJob:
    """Everything one staging run needs."""

    conn: Connection
    target: Target
    storage_srid: int
    place: Municipality
    report: ImportReport
    progress: Progress
    source_crs: int | None = None
    batch_size: int = DEFAULT_BATCH
    check_outside: bool = True
    decisions: list[CrsDecision] = field(default_factory=list)
    next_row: int = 0  # row numbers of features staged without a reader (CGXML)
    run_id: int | None = None
    direct_ok: bool = False  # a big first import may skip staging (importers.direct)
    direct: DirectLoad | None = None
    row_offset: int = 0  # added to a reader's feature numbers: row numbers stay unique
    writer: StageWriter | None = None  # COPYs in the background while stage_source runs
    opening: Callable[[], None] | None = None  # opens ``writer`` before the first COPY
    twin_pool: ThreadPoolExecutor | None = None  # makes the ETRS89 twins, a batch behind
    sketch: EdgeSketch = field(default_factory=EdgeSketch)  # rings for the overlap test
    keys: list[pa.Array] = field(default_factory=list)  # staged natural keys
    staged_rows: list[np.ndarray] = field(default_factory=list)  # their row numbers
    staged_labels: list[pa.Array] = field(default_factory=list)  # and labels
    staged: int = 0
    missing_twins: int = 0  # staged geometries without their ETRS89 twin
    closed_lines: int = 0  # boundaries drawn as closed lines, read as areas


def stage_source(
    job: VectorJob,
    source: VectorSource,
    fields: FieldMap,
    convert: Converter,
    *,
    northing_first: bool = False,
) -> None:
    """Read ``source`` batch by batch into the target's staging table (or straight into
    the target, see ``importers.direct``)."""
    info = source.info
    keep_freed_memory()
    job.progress.start(info.name, info.feature_count)
    job.row_offset = job.next_row
    prefetch = ThreadPoolExecutor(1, thread_name_prefix="keys")
    keys = _prefetch_keys(job, source, fields, prefetch)
    job.opening = lambda: _open_writer(job, source, fields, keys)
    job.twin_pool = ThreadPoolExecutor(1, thread_name_prefix="twins")
    try:
        job.next_row += _stage_batches(job, source, fields, convert, northing_first)
        _opened(job).close()
    except BaseException:
        if job.writer is not None:
            job.writer.abandon()
        raise
    finally:
        prefetch.shutdown(cancel_futures=True)
        job.twin_pool.shutdown(cancel_futures=True)
        job.writer = job.twin_pool = job.opening = None
    for finding in source.findings():
        job.report.counts["read"] += 1 if finding.rejected else 0
        job.report.add(finding)
    if job.closed_lines:
        job.report.note(
            f"{info.name}: {job.closed_lines} boundaries drawn as closed lines read as areas"
        )
        job.closed_lines = 0
    job.progress.finish()


def _stage_batches(
    job: VectorJob,
    source: VectorSource,
    fields: FieldMap,
    convert: Converter,
    northing_first: bool,
) -> int:
    info = source.info
    decision: CrsDecision | None = None
    read = 0
    for batch in source.batches(job.batch_size):
        read += len(batch)
        job.report.counts["read"] += len(batch)
        geoms, unread = decode_wkb(job.conn, batch.wkb, ready=lambda: _wait_writer(job))
        if decision is None:
            decision = decide(
                info.name,
                sample_coordinates(geoms),
                job.place,
                declared=info.declared_epsg,
                declared_text=info.declared_text,
                override=job.source_crs,
                northing_first=northing_first,
            )
            job.decisions.append(decision)
            job.report.notes.extend(decision.notes)
            job.report.note(
                f"{info.name}: read as EPSG:{decision.epsg}, stored as EPSG:{job.storage_srid}"
            )
        stage_batch(job, batch, geoms, unread, decision, fields, convert)
        job.progress.advance(len(batch))
    return read


def _wait_writer(job: VectorJob) -> None:
    if job.writer is not None:
        job.writer.wait()


def _opened(job: VectorJob) -> StageWriter:
    """The job's writer, opened now if it was not yet (see ``_open_writer``)."""
    if job.opening is not None:
        opening, job.opening = job.opening, None
        opening()
    assert job.writer is not None
    return job.writer


def _open_writer(
    job: VectorJob, source: VectorSource, fields: FieldMap, keys: Future[pa.Array] | None
) -> None:
    """Decide where the rows go (``_begin_direct``) and open the COPY there.

    Called by the first batch's ``_copy``: the key column is read (``_prefetch_keys``)
    while that batch is read and validated, instead of before, when nothing else ran.
    """
    _begin_direct(job, source, fields, keys)
    if job.direct is not None:
        job.writer = StageWriter(job.conn, job.target.table, job.direct.columns())
    else:
        job.writer = StageWriter(job.conn, job.target.stage, stage_columns(job.target))


class _Prefetched:
    """A reader's key column, read on another thread (``KeyedSource`` for ``direct``)."""

    def __init__(self, name: str, column: Future[pa.Array]) -> None:
        self.name = name
        self.column = column

    def read_column(self, name: str) -> pa.Array:
        assert name == self.name
        return self.column.result()


def _direct_key(job: VectorJob, source: VectorSource, fields: FieldMap) -> str | None:
    """The source column of the target's key when a direct load may apply (a first
    import of one big source whose reader can list the key column), else None."""
    if not job.direct_ok or job.direct is not None or job.staged:
        return None
    keys = [k for k in job.target.key if k != GEOMETRY_KEY]
    source_key = fields.source(keys[0]) if len(keys) == 1 else None
    expected = source.info.feature_count
    if source_key is None or expected is None or not hasattr(source, "read_column"):
        return None
    return source_key


def _prefetch_keys(
    job: VectorJob, source: VectorSource, fields: FieldMap, pool: ThreadPoolExecutor
) -> Future[pa.Array] | None:
    """Start reading the key column that ``direct.begin`` will ask for, when it will:
    a big source whose scope holds no current version yet."""
    source_key = _direct_key(job, source, fields)
    expected = source.info.feature_count
    if source_key is None or expected is None:
        return None
    if not direct.may_apply(job.conn, job.target, expected):
        return None
    return pool.submit(cast(KeyedSource, source).read_column, source_key)


def _begin_direct(
    job: VectorJob,
    source: VectorSource,
    fields: FieldMap,
    keys: Future[pa.Array] | None = None,
) -> None:
    """Load straight into the target when ``importers.direct`` applies (``_direct_key``);
    ``keys``: the key column being read already."""
    source_key = _direct_key(job, source, fields)
    expected = source.info.feature_count
    if source_key is None or expected is None:
        return
    reader = cast(KeyedSource, source) if keys is None else _Prefetched(source_key, keys)
    job.direct = direct.begin(
        job.conn,
        job.target,
        job.run_id,
        reader,
        source_key,
        expected,
        text_array,
        provided=list(fields.columns),
    )
    if job.direct is not None:
        job.report.note(
            f"first import of {expected} features: loaded straight into {job.target.table}"
        )


def stage_columns(target: Target) -> list[str]:
    """The staging table's columns, in the order every batch is COPYed."""
    helpers = [name for name, _ in target.helpers]
    return ["row_no", "label", *target.data_columns, *helpers, *target.geometry_columns]


def stage_batch(
    job: VectorJob,
    batch: FeatureBatch,
    geoms: np.ndarray,
    unread: np.ndarray,
    decision: CrsDecision,
    fields: FieldMap,
    convert: Converter,
) -> None:
    """Validate, reproject and COPY one batch (rejected features are reported, not staged)."""
    report = job.report
    converted = convert(batch, fields, report)
    labels = _Labels(batch, converted, job.target.key_label)
    if decision.swap_axes:
        geoms = swap_axes(geoms)
    geoms = _swap_stray_features(job, geoms, decision, labels)
    geoms, closed = close_lines(geoms)
    if closed.any():
        job.closed_lines += int(closed.sum())
    moved = reproject(geoms, decision.epsg, job.storage_srid)
    result = to_polygonal(moved.geoms)
    rejected = np.array(result.rejected, dtype=object)
    if not job.target.geometry_required:
        _keep_without_geometry(report, rejected, labels)
    rejected[unread] = "unreadable_geometry"
    rejected[moved.failed & ~unread] = "transform_failed"
    if converted.keys is not None:
        no_key = converted.missing_keys(len(batch))
        rejected[no_key & (rejected == None)] = "missing_key"  # noqa: E711
    _report_rejections(report, rejected, labels, moved.reason, job.target.key_label, batch.wkb)
    accepted = np.flatnonzero(rejected == None)  # noqa: E711
    _report_repairs(report, result.repaired, result.reasons, labels)
    dropped = int(result.dropped_z[accepted].sum())
    if dropped:
        report.counts["z_dropped"] += dropped
    kept = result.geoms[accepted]
    drawn = ~shapely.is_missing(kept)
    _check_areas(report, kept[drawn], accepted[drawn], converted, labels)
    if job.check_outside:
        _check_outside(report, job.place, kept[drawn], accepted[drawn], labels)
    rings = Rings.of(kept)
    geometry: dict[str, Any] = {"geom": storage_ewkb(kept, rings, job.storage_srid)}
    if job.target.twin:
        geometry["geom_etrs89"] = _twins(job, kept, rings, drawn)
    job.sketch.add(job.row_offset + batch.start + accepted, kept, rings)
    _copy(job, batch, converted, accepted, geometry)


def _twins(
    job: VectorJob, kept: np.ndarray, rings: Rings, drawn: np.ndarray
) -> pa.Array | Future[pa.Array]:
    """The batch's ETRS89 twins, or their future when a pool makes them.

    The twins (TransDatRO, about half of a parcel's Python work) need only the accepted
    geometries, so they are made on a thread of their own while this one validates the
    next batch; the COPY writer waits for them. Only that thread counts missing twins.
    """

    def make() -> pa.Array:
        twin = twin_ewkb(kept, rings, job.storage_srid)
        job.missing_twins += int(np.count_nonzero(drawn & _nulls(twin)))
        return twin

    return make() if job.twin_pool is None else job.twin_pool.submit(make)


def _swap_stray_features(
    job: VectorJob, geoms: np.ndarray, decision: CrsDecision, labels: _Labels
) -> np.ndarray:
    """Features written in the other axis order than the rest of the source are swapped
    back and reported (GML readers swap lat/lon only where a geometry declares it)."""
    present = np.flatnonzero(~shapely.is_missing(geoms) & ~shapely.is_empty(geoms))
    if present.size == 0:
        return geoms
    bounds = shapely.bounds(geoms[present])
    cx, cy = (bounds[:, 0] + bounds[:, 2]) / 2, (bounds[:, 1] + bounds[:, 3]) / 2
    fine = fits(decision.epsg, job.place, cx, cy)
    if fine.all():
        return geoms
    flipped = ~fine & fits(decision.epsg, job.place, cy, cx)
    if not flipped.any():
        return geoms
    positions = present[flipped]
    result = np.array(geoms, dtype=object, copy=True)
    result[positions] = swap_axes(geoms[positions])
    for index in positions.tolist():
        job.report.add(
            Finding(
                "axes_swapped",
                "coordinates written in the other axis order than the rest of the source; "
                "read swapped",
                feature=labels[index],
            )
        )
    return result


class _Labels:
    """How findings name each feature of a batch ("cadastral number 12", "feature 7"),
    made only for the features a finding is about."""

    def __init__(self, batch: FeatureBatch, converted: Converted, key_label: str) -> None:
        self.batch = batch
        self.converted = converted
        self.key_label = key_label

    def __getitem__(self, index: int | np.integer) -> str:
        index = int(index)
        key = self.converted.key(index)
        if key is not None:
            return f"{self.key_label} {key}"
        return self.batch.label(index)


def _keep_without_geometry(report: ImportReport, rejected: np.ndarray, labels: _Labels) -> None:
    """Features of a register without a drawing are kept, geometry empty, and reported."""
    for index in np.flatnonzero((rejected == MISSING) | (rejected == EMPTY)):
        report.add(
            Finding(
                str(rejected[index]),
                f"{REJECTIONS[str(rejected[index])]}: kept without geometry",
                feature=labels[index],
            )
        )
        rejected[index] = None


def _report_rejections(
    report: ImportReport,
    rejected: np.ndarray,
    labels: _Labels,
    transform_reason: str | None,
    key_label: str,
    wkb: np.ndarray,
) -> None:
    messages = {
        **REJECTIONS,
        "unreadable_geometry": "the geometry cannot be read (corrupt or unsupported WKB)",
        "transform_failed": f"a vertex {transform_reason or 'cannot be transformed'}",
        "missing_key": f"the feature has no {key_label}",
    }
    for index in np.flatnonzero(rejected != None):  # noqa: E711
        code = str(rejected[index])
        message = messages[code]
        if code == "unreadable_geometry" and wkb[index] is not None:
            message = f"the geometry cannot be read: {unreadable_reason(bytes(wkb[index]))}"
        report.add(Finding(code, message, feature=labels[index], rejected=True))


def _report_repairs(
    report: ImportReport, repaired: np.ndarray, reasons: np.ndarray, labels: _Labels
) -> None:
    for index in np.flatnonzero(repaired):
        report.counts["repaired"] += 1
        report.add(
            Finding(
                "repaired",
                f"invalid geometry ({reasons[index]}) repaired with make-valid",
                feature=labels[index],
            )
        )


def _check_areas(
    report: ImportReport,
    geoms: np.ndarray,
    accepted: np.ndarray,
    converted: Converted,
    labels: _Labels,
) -> None:
    if geoms.size == 0:
        return
    area = shapely.area(geoms)
    if converted.measured_area is not None:
        measured = np.nan_to_num(_floats(converted.measured_area)[accepted], nan=0.0)
        difference = np.abs(area - measured)
        outlier = (measured > 0) & (difference > AREA_TOLERANCE_M2)
        outlier &= difference > AREA_TOLERANCE_SHARE * measured
        for index in np.flatnonzero(outlier):
            report.add(
                Finding(
                    "area_mismatch",
                    f"computed area {area[index]:.2f} m² differs from the measured "
                    f"{measured[index]:.2f} m² by {difference[index] / measured[index]:.0%}",
                    feature=labels[int(accepted[index])],
                    field="measured_area",
                )
            )
    ratio = thinness(geoms, area)
    sliver = (ratio < SLIVER_THINNESS) | (area < SLIVER_AREA_M2)
    for index in np.flatnonzero(sliver):
        report.add(
            Finding(
                "sliver",
                f"sliver: {area[index]:.2f} m², thinness {ratio[index]:.4f}",
                feature=labels[int(accepted[index])],
            )
        )


def _check_outside(
    report: ImportReport,
    place: Municipality,
    geoms: np.ndarray,
    accepted: np.ndarray,
    labels: _Labels,
) -> None:
    if place.boundary is None or geoms.size == 0:
        return
    shapely.prepare(place.boundary)
    points = shapely.point_on_surface(geoms)
    inside = shapely.contains_xy(place.boundary, shapely.get_x(points), shapely.get_y(points))
    for index in np.flatnonzero(~inside):
        report.add(
            Finding(
                "outside_uat",
                f"lies outside {place.described}",
                feature=labels[int(accepted[index])],
            )
        )


def _floats(values: Values) -> np.ndarray:
    """A column as float64, NaN where empty."""
    if isinstance(values, pa.Array):
        return np.asarray(values.cast(pa.float64()).fill_null(np.nan).to_numpy(), dtype=np.float64)
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def _take(values: Values | None, picked: np.ndarray) -> Values | None:
    if values is None:
        return None
    if isinstance(values, pa.Array):
        return values.take(pa.array(picked))
    if isinstance(values, np.ndarray):
        return values[picked]
    return [values[i] for i in picked.tolist()]


def _nulls(values: pa.Array) -> np.ndarray:
    return np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def _copy(
    job: VectorJob,
    batch: FeatureBatch,
    converted: Converted,
    accepted: np.ndarray,
    geometry: Mapping[str, Any],
) -> None:
    if accepted.size == 0:
        return
    target = job.target
    count = int(accepted.size)
    row_no = job.row_offset + batch.start + accepted.astype(np.int64)
    labels = _stage_labels(batch, accepted)
    data: dict[str, Any] = {"row_no": row_no, "label": labels}
    every = count == len(batch)  # nothing rejected: the columns as they are, no copy
    for name in stage_columns(target)[2:]:
        if name not in target.geometry_columns:
            values = converted.columns.get(name)
            values = values if every else _take(values, accepted)
            data[name] = [None] * count if values is None else values
    data.update(geometry)
    _remember_keys(job, data)
    job.staged_rows.append(row_no)
    job.staged_labels.append(labels)
    if job.opening is not None:
        _opened(job)  # decided with nothing staged yet
    job.staged += count
    if job.direct is not None:
        rows, _ = job.direct.split(data, count)
        if rows is None:
            return
        data = rows
    if job.writer is not None:
        job.writer.write(data)
    else:
        copy_arrays(job.conn, target.stage, resolved(data))


def _stage_labels(batch: FeatureBatch, accepted: np.ndarray) -> pa.Array:
    if batch.labels is not None:
        return pa.array([str(batch.labels[i]) for i in accepted.tolist()], type=pa.string())
    numbers = pa.array(batch.start + accepted.astype(np.int64)).cast(pa.string())
    return pc.binary_join_element_wise("feature ", numbers, "")


def _remember_keys(job: VectorJob, data: Mapping[str, Any]) -> None:
    """Keep the staged keys, so duplicates are looked for in SQL only when there are any."""
    keys = [k for k in job.target.key if k != GEOMETRY_KEY]
    if not keys:
        return
    parts = [_as_text(data[k]) for k in keys]
    job.keys.append(parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, " / "))


def _as_text(values: Values) -> pa.Array:
    if isinstance(values, pa.Array):
        return values.cast(pa.string())
    return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def has_duplicate_keys(job: VectorJob) -> bool:
    """Whether two staged features share a natural key (NULL keys never do)."""
    if not job.keys:
        return False
    keys = pa.chunked_array(job.keys, type=pa.string()).drop_null()
    return len(pc.unique(keys)) < len(keys)


def complete(
    job: VectorJob,
    run_id: int | None,
    *,
    provided: Sequence[str],
    replace: bool,
    overlap_tolerance: float | None,
    summed: Sequence[str] = (),
) -> Mapping[str, int]:
    """Cross-feature checks, the merge and the twin check.

    Duplicates are merged in SQL on the staging table. The overlap test
    (``importers.coverage``) is pure Python on the rings kept from staging, so it runs
    while PostgreSQL merges or rebuilds the indexes, on a thread of its own.
    """
    report = job.report
    target = job.target
    job.progress.phase("checking duplicates and overlaps")
    folded: Mapping[int, int] = {}
    if job.direct is not None:
        held = direct.held_rows(job.direct)
        if held is not None:
            copy_arrays(job.conn, target.stage, {c: held[c] for c in stage_columns(target)})
            folded = checks.merge_duplicates(job.conn, target, report, summed)
    elif has_duplicate_keys(job):
        folded = checks.merge_duplicates(job.conn, target, report, summed)
    job.progress.phase(f"merging into {target.table}")
    with ThreadPoolExecutor(1, thread_name_prefix="merge") as pool:
        merging = pool.submit(_merge, job, run_id, provided, replace)
        try:
            pairs = _overlaps(job, overlap_tolerance, folded)
        finally:
            counts = merging.result()
    _report_overlaps(job, pairs)
    job.sketch = EdgeSketch()
    for name, value in counts.as_dict().items():
        report.counts[name] += value
    return counts.as_dict()


def _merge(
    job: VectorJob, run_id: int | None, provided: Sequence[str], replace: bool
) -> MergeCounts:
    if job.direct is not None:
        counts = direct.finish(job.conn, job.direct, run_id, provided)
    else:
        counts = merge(job.conn, job.target, run_id, provided=provided, replace=replace)
    if job.target.twin and job.missing_twins:
        fill_missing_twins(job.conn, job.target.table, job.storage_srid)
    return counts


def _overlaps(
    job: VectorJob, tolerance: float | None, folded: Mapping[int, int]
) -> list[tuple[int, int, float]]:
    if tolerance is None:
        return []
    flagged = job.sketch.suspects()
    if not flagged:
        return []
    return job.sketch.overlaps(flagged, tolerance, folded)


def _report_overlaps(job: VectorJob, pairs: list[tuple[int, int, float]]) -> None:
    """Findings naming both features ("cadastral number 7 (feature 7)"), as in SQL."""
    if not pairs:
        return
    rows = np.concatenate(job.staged_rows)
    order = np.argsort(rows, kind="stable")
    keys = pa.concat_arrays(job.keys) if job.keys else None
    labels = pa.concat_arrays([label.cast(pa.string()) for label in job.staged_labels])

    def described(row: int) -> str:
        at = int(order[np.searchsorted(rows[order], row)])
        label = labels[at].as_py()
        key = keys[at].as_py() if keys is not None else None
        if keys is None:
            return str(label)
        return f"{job.target.key_label} {key if key is not None else '?'} ({label})"

    for left, right, area in pairs:
        job.report.add(
            Finding("overlap", f"overlaps {described(right)} by {area:.2f} m²", described(left))
        )


def create(job: VectorJob) -> None:
    create_stage(job.conn, job.target)
