"""Checks across features, run in SQL on the staging table before the merge.

- Duplicates: several features with one natural key (Cambridge's "-" road lots, a
  parcel digitised in two pieces). The documented choice: they become ONE multi-part
  feature (geometries unioned, attributes of the first, areas summed) and each key is
  reported with the features merged. Rejecting them would drop land from the register.
- Overlaps: two features whose interiors share more than a tolerance (m²) are reported
  in pairs with the shared area; smaller shared areas are digitising noise.

Overlaps are found in two passes so a million-parcel cadastre does not pay an exact
GEOS relate for each of its millions of touching neighbour pairs: GEOS coverage
validation (``shapely.coverage_invalid_edges``) first flags, tile by tile, the features
having an edge inside another feature (it is silent for features that only share
edges); the exact shared-area test then runs only on pairs involving a flagged feature.
Tiles take every feature whose box meets them, so two features whose boxes meet are
always validated together: no overlap is missed at a tile border. Vector imports flag
features from the rings kept while staging (``importers.coverage``, which first drops
the features whose every edge is shared with a neighbour); CGXML imports read them back
from the staging table here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from importers.merge import GEOMETRY_KEY, Target, index_stage, index_stage_keys
from importers.report import Finding, ImportReport

MAX_LISTED = 8
SUBDIVIDE_VERTICES = 64
TILE_FEATURES = 20_000  # features per coverage-validation tile (bounds memory)


def _described(alias: str, target: Target) -> str:
    """SQL text naming a staged feature: "cadastral number 12 (feature 7)"."""
    keys = [k for k in target.key if k != GEOMETRY_KEY]
    if not keys:
        return f"{alias}.label"
    key = " || ' / ' || ".join(f"coalesce({alias}.{k}::text, '?')" for k in keys)
    return f"'{target.key_label} ' || {key} || ' (' || {alias}.label || ')'"


def merge_duplicates(
    conn: Connection, target: Target, report: ImportReport, summed: Sequence[str] = ()
) -> dict[int, int]:
    """Fold staged rows sharing a key into the first of them; returns, for each row
    removed, the row it was folded into."""
    keys = [k for k in target.key if k != GEOMETRY_KEY]
    if not keys:
        return {}
    key_list = ", ".join(keys)
    not_null = " AND ".join(f"{k} IS NOT NULL" for k in keys)
    groups = conn.execute(
        sa.text(
            f"SELECT {key_list}, array_agg(row_no ORDER BY row_no), "  # noqa: S608
            f"array_agg(label ORDER BY row_no) FROM {target.stage} "
            f"WHERE ({key_list}) IN (SELECT {key_list} FROM {target.stage} WHERE {not_null} "
            f"GROUP BY {key_list} HAVING count(*) > 1) GROUP BY {key_list}"
        )
    ).all()
    if not groups:
        return {}
    index_stage_keys(conn, target)
    first_rows = []
    others: list[int] = []
    folded: dict[int, int] = {}
    for group in groups:
        key_text = " / ".join(str(v) for v in group[: len(keys)])
        rows, labels = list(group[len(keys)]), list(group[len(keys) + 1])
        first_rows.append(rows[0])
        others.extend(rows[1:])
        folded.update((int(row), int(rows[0])) for row in rows[1:])
        listed = ", ".join(labels[:MAX_LISTED]) + (" …" if len(labels) > MAX_LISTED else "")
        report.add(
            Finding(
                "duplicate_key",
                f"{target.key_label} {key_text!r} appears in {len(rows)} features ({listed}): "
                "merged into one multi-part feature",
                feature=f"{target.key_label} {key_text}",
            )
        )
    same_key = " AND ".join(f"d.{k} = s.{k}" for k in keys)
    union = "ST_Multi(ST_CollectionExtract(ST_UnaryUnion(ST_Collect(d.{0})), 3))"
    geometry_sets = [
        f"{column} = (SELECT {union.format(column)} FROM {target.stage} d WHERE {same_key})"  # noqa: S608
        for column in target.geometry_columns
    ]
    sum_sets = [
        f"{column} = (SELECT sum(d.{column}) FROM {target.stage} d WHERE {same_key})"  # noqa: S608
        for column in summed
    ]
    conn.execute(
        sa.text(
            f"UPDATE {target.stage} s SET {', '.join([*geometry_sets, *sum_sets])} "  # noqa: S608
            "WHERE s.row_no = ANY(:rows)"
        ),
        {"rows": first_rows},
    )
    conn.execute(
        sa.text(f"DELETE FROM {target.stage} WHERE row_no = ANY(:rows)"),  # noqa: S608
        {"rows": others},
    )
    return folded


def coverage_suspects(conn: Connection, target: Target) -> list[int]:
    """Row numbers of staged features coverage validation flags (edges inside another)."""
    extent = conn.execute(
        sa.text(
            "SELECT n, ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "  # noqa: S608
            f"(SELECT ST_Extent(geom) AS e, count(geom) AS n FROM {target.stage}) x"
        )
    ).one()
    if extent[1] is None:
        return []
    count, xmin, ymin, xmax, ymax = (float(v) for v in extent)
    side = max(1, math.ceil(math.sqrt(count / TILE_FEATURES)))
    width, height = (xmax - xmin) / side or 1.0, (ymax - ymin) / side or 1.0
    suspects: set[int] = set()
    for column in range(side):
        for row in range(side):
            box = (
                xmin + column * width,
                ymin + row * height,
                xmin + (column + 1) * width,
                ymin + (row + 1) * height,
            )
            suspects.update(_tile_suspects(conn, target, box))
    return sorted(suspects)


def _tile_suspects(
    conn: Connection, target: Target, box: tuple[float, float, float, float]
) -> list[int]:
    rows = conn.execute(
        sa.text(
            f"SELECT row_no, ST_AsBinary(geom) FROM {target.stage} "  # noqa: S608
            "WHERE geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, ST_SRID(geom))"
        ),
        {"x0": box[0], "y0": box[1], "x1": box[2], "y1": box[3]},
    ).all()
    if len(rows) < 2:
        return []
    numbers = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    geoms = shapely.from_wkb([bytes(r[1]) for r in rows])
    del rows
    edges = shapely.coverage_invalid_edges(geoms)
    return [int(n) for n in numbers[~shapely.is_empty(edges)]]


def report_overlaps(
    conn: Connection,
    target: Target,
    report: ImportReport,
    tolerance_m2: float,
    *,
    suspects: Sequence[int] | None = None,
) -> int:
    """Pairs of staged features whose interiors overlap by at least ``tolerance_m2``.

    Only flagged features are tested: ``suspects`` (row numbers) when the caller has
    them, else those of ``coverage_suspects`` (module docstring). Big flagged polygons
    (a merged road lot, a flood plain) are cut with ST_Subdivide first, so each exact
    test compares a small piece with one neighbour.
    """
    if suspects is None:
        suspects = coverage_suspects(conn, target)
    if not suspects:
        return 0
    index_stage(conn, target, keys=False)
    conn.execute(sa.text("DROP TABLE IF EXISTS pg_temp.overlap_parts"))
    conn.execute(
        sa.text(
            "CREATE TEMP TABLE overlap_parts ON COMMIT DROP AS "  # noqa: S608
            f"SELECT row_no, ST_Subdivide(geom, :limit) AS geom "
            f"FROM {target.stage} WHERE row_no = ANY(:rows)"
        ),
        {"limit": SUBDIVIDE_VERTICES, "rows": list(suspects)},
    )
    pairs = conn.execute(
        sa.text(
            "WITH pieces AS (SELECT a.row_no AS flagged, b.row_no AS other, "  # noqa: S608
            "ST_Area(ST_Intersection(a.geom, b.geom)) AS area "
            f"FROM overlap_parts a JOIN {target.stage} b ON a.geom && b.geom "
            "AND a.row_no <> b.row_no AND ST_Relate(a.geom, b.geom, '2********')), "
            "sums AS (SELECT flagged, other, sum(area) AS area FROM pieces "
            "GROUP BY flagged, other HAVING sum(area) >= :tolerance), "
            "pairs AS (SELECT DISTINCT ON (least(flagged, other), greatest(flagged, other)) "
            "least(flagged, other) AS left_row, greatest(flagged, other) AS right_row, area "
            "FROM sums ORDER BY least(flagged, other), greatest(flagged, other)) "
            f"SELECT {_described('l', target)}, {_described('r', target)}, p.area "
            f"FROM pairs p JOIN {target.stage} l "
            f"ON l.row_no = p.left_row JOIN {target.stage} r ON r.row_no = p.right_row "
            "ORDER BY p.area DESC"
        ),
        {"tolerance": tolerance_m2},
    ).all()
    for left, right, area in pairs:
        report.add(
            Finding(
                "overlap",
                f"overlaps {right} by {float(area):.2f} m²",
                feature=str(left),
            )
        )
    return len(pairs)
