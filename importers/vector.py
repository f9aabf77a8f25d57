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
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from sqlalchemy.engine import Connection

from gis_core.twins import fill_missing_twins
from gis_core.validation import EMPTY, MISSING, REJECTIONS, thinness, to_polygonal
from importers import checks
from importers.fields import FieldMap
from importers.geometry import decode_wkb, ewkb, reproject, swap_axes, twins, unreadable_reason
from importers.merge import Target, create_stage, index_stage, merge, stage_rows
from importers.progress import Progress
from importers.readers.batch import FeatureBatch, VectorSource
from importers.report import Finding, ImportReport
from importers.sourcecrs import CrsDecision, Municipality, decide, fits, sample_coordinates

# Measured vs computed area: reported beyond both limits.
AREA_TOLERANCE_SHARE = 0.05
AREA_TOLERANCE_M2 = 1.0
SLIVER_THINNESS = 0.005
SLIVER_AREA_M2 = 0.5
DEFAULT_BATCH = 50_000


@dataclass
class Converted:
    """A batch's values for the staged columns; ``keys`` label features and reject keyless ones."""

    columns: dict[str, list[Any]]
    keys: list[str | None] | None = None
    measured_area: list[float | None] | None = None


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


def stage_source(
    job: VectorJob,
    source: VectorSource,
    fields: FieldMap,
    convert: Converter,
    *,
    northing_first: bool = False,
) -> None:
    """Read ``source`` batch by batch into the target's staging table."""
    info = source.info
    job.progress.start(info.name, info.feature_count)
    decision: CrsDecision | None = None
    for batch in source.batches(job.batch_size):
        job.report.counts["read"] += len(batch)
        geoms, unread = decode_wkb(job.conn, batch.wkb)
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
    for finding in source.findings():
        job.report.counts["read"] += 1 if finding.rejected else 0
        job.report.add(finding)
    job.progress.finish()


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
    labels = _labels(batch, converted, job.target.key_label)
    if decision.swap_axes:
        geoms = swap_axes(geoms)
    geoms = _swap_stray_features(job, geoms, decision, labels)
    moved = reproject(geoms, decision.epsg, job.storage_srid)
    result = to_polygonal(moved.geoms)
    rejected = np.array(result.rejected, dtype=object)
    if not job.target.geometry_required:
        _keep_without_geometry(report, rejected, labels)
    rejected[unread] = "unreadable_geometry"
    rejected[moved.failed & ~unread] = "transform_failed"
    if converted.keys is not None:
        no_key = np.array([k is None for k in converted.keys], dtype=bool)
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
    twin = twins(kept, job.storage_srid) if job.target.twin else None
    _copy(job, batch, converted, labels, accepted, kept, twin)


def _swap_stray_features(
    job: VectorJob, geoms: np.ndarray, decision: CrsDecision, labels: list[str]
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


def _labels(batch: FeatureBatch, converted: Converted, key_label: str) -> list[str]:
    if converted.keys is None:
        return [batch.label(i) for i in range(len(batch))]
    return [
        f"{key_label} {key}" if key is not None else batch.label(i)
        for i, key in enumerate(converted.keys)
    ]


def _keep_without_geometry(report: ImportReport, rejected: np.ndarray, labels: list[str]) -> None:
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
    labels: list[str],
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
    report: ImportReport, repaired: np.ndarray, reasons: np.ndarray, labels: list[str]
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
    labels: list[str],
) -> None:
    if geoms.size == 0:
        return
    area = shapely.area(geoms)
    if converted.measured_area is not None:
        measured = np.array(
            [converted.measured_area[i] for i in accepted.tolist()], dtype=np.float64
        )
        measured = np.nan_to_num(measured, nan=0.0)
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
    ratio = thinness(geoms)
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
    labels: list[str],
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


def _copy(
    job: VectorJob,
    batch: FeatureBatch,
    converted: Converted,
    labels: list[str],
    accepted: np.ndarray,
    geoms: np.ndarray,
    twin: np.ndarray | None,
) -> None:
    if accepted.size == 0:
        return
    target = job.target
    picked = accepted.tolist()
    helpers = [name for name, _ in target.helpers if name in converted.columns]
    names = [*target.data_columns, *helpers]
    values = [[converted.columns[name][i] for i in picked] for name in names]
    geometry_values = [ewkb(geoms, job.storage_srid)]
    if twin is not None:
        geometry_values.append(ewkb(twin, 4258))
    row_numbers = [batch.start + i for i in picked]
    picked_labels = [batch.label(i) for i in picked]
    columns = ["row_no", "label", *names, *target.geometry_columns]
    stage_rows(
        job.conn,
        target,
        columns,
        zip(row_numbers, picked_labels, *values, *geometry_values, strict=True),
    )


def complete(
    job: VectorJob,
    run_id: int | None,
    *,
    provided: Sequence[str],
    replace: bool,
    overlap_tolerance: float | None,
    summed: Sequence[str] = (),
) -> Mapping[str, int]:
    """Cross-feature checks on the staging table, then the merge and the twin check."""
    report = job.report
    job.progress.phase("checking duplicates and overlaps")
    checks.merge_duplicates(job.conn, job.target, report, summed)
    index_stage(job.conn, job.target)
    if overlap_tolerance is not None:
        checks.report_overlaps(job.conn, job.target, report, overlap_tolerance)
    job.progress.phase(f"merging into {job.target.table}")
    counts = merge(job.conn, job.target, run_id, provided=provided, replace=replace)
    for name, value in counts.as_dict().items():
        report.counts[name] += value
    if job.target.twin:
        fill_missing_twins(job.conn, job.target.table, job.storage_srid)
    return counts.as_dict()


def create(job: VectorJob) -> None:
    create_stage(job.conn, job.target)
