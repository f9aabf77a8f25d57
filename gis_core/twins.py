"""ETRS89 twins: the geographic copy of every stored geometry, computed at write time.

PostGIS cannot apply the official TransDatRO grid, and PROJ's default Stereo 70 path is
off by up to a metre. So whenever geometries are written in EPSG:3844 the platform also
writes the ETRS89 twin (``geom_etrs89`` beside ``geom``) transformed with TransDatRO in
Python (vectorised), and SQL serves geographic output (GeoJSON, tiles, the web map) from
the twin. For any other storage CRS PostGIS's own ``ST_Transform`` is the right tool and
runs in the database.

Most tables have one geometry, ``geom``. Acts (``permits.act``) have three, each with
its twin: the register point ``location``, the site plan ``footprint`` and ``geom``
(what the public layer draws). Their geometries change in place (a clerk's edit, a
re-link), so a database trigger (migration ``0006_act_twins``) clears a twin whose
geometry changed and the writer calls ``fill_missing_twins`` for the rows it touched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import psycopg
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_core.crs.transform import transform_geometries

STEREO70 = 3844
ETRS89 = 4258
_BATCH = 50_000

_GEOM = (("geom", "geom_etrs89"),)
# Tables with ETRS89 twins and their (storage column, twin column) pairs: the catalog of
# what this module may touch, so no table or column name from elsewhere is pasted into SQL.
TWIN_COLUMNS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "core.admin_unit": _GEOM,
    "core.intravilan": _GEOM,
    "cadastre.street": _GEOM,
    "cadastre.address": _GEOM,
    "cadastre.parcel": _GEOM,
    "cadastre.building": _GEOM,
    "urbanism.zone": _GEOM,
    "urbanism.restriction": _GEOM,
    "permits.act": (
        ("location", "location_etrs89"),
        ("footprint", "footprint_etrs89"),
        ("geom", "geom_etrs89"),
    ),
}
TWINNED_TABLES = frozenset(TWIN_COLUMNS)


@dataclass(frozen=True)
class TwinReport:
    table: str
    updated: int  # twins written (a row of ``permits.act`` may count up to three)


def fill_missing_twins(
    conn: Connection, table: str, storage_srid: int, *, ids: Sequence[int] | None = None
) -> TwinReport:
    """Compute every twin of ``table`` whose geometry is set but whose twin is not.

    ``ids`` limits the work to those rows (the ones a writer just touched).
    """
    pairs = TWIN_COLUMNS.get(table)
    if pairs is None:
        raise ValueError(f"{table} has no ETRS89 twin column")
    id_list = None if ids is None else [int(i) for i in ids]
    if id_list is not None and not id_list:
        return TwinReport(table, 0)
    updated = 0
    for column, twin in pairs:
        if storage_srid != STEREO70:
            updated += _fill_with_postgis(conn, table, column, twin, id_list)
        else:
            updated += _fill_with_transdatro(conn, table, column, twin, id_list)
    return TwinReport(table, updated)


def _only(ids: list[int] | None) -> str:
    return "" if ids is None else " AND id = ANY(CAST(:ids AS bigint[]))"


def _fill_with_postgis(
    conn: Connection, table: str, column: str, twin: str, ids: list[int] | None
) -> int:
    result = conn.execute(
        sa.text(
            f"UPDATE {table} SET {twin} = ST_Transform({column}, {ETRS89}) "  # noqa: S608
            f"WHERE {twin} IS NULL AND {column} IS NOT NULL" + _only(ids)
        ),
        {"ids": ids},
    )
    return int(result.rowcount)


def _fill_with_transdatro(
    conn: Connection, table: str, column: str, twin: str, ids: list[int] | None
) -> int:
    """Read WKB in batches, transform with TransDatRO, write back through a temp table."""
    conn.execute(
        sa.text(
            "CREATE TEMP TABLE IF NOT EXISTS _twin (id bigint PRIMARY KEY, wkb bytea) "
            "ON COMMIT DROP"
        )
    )
    updated = 0
    last_id = 0
    select = sa.text(
        f"SELECT id, ST_AsBinary({column}) FROM {table} "  # noqa: S608
        f"WHERE {twin} IS NULL AND {column} IS NOT NULL AND id > :last" + _only(ids) + " "
        "ORDER BY id LIMIT :batch"
    )
    while True:
        rows = conn.execute(select, {"last": last_id, "batch": _BATCH, "ids": ids}).fetchall()
        if not rows:
            break
        row_ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        geoms = shapely.from_wkb([bytes(row[1]) for row in rows])
        twins = transform_geometries(geoms, STEREO70, ETRS89)
        _write_twins(conn, table, twin, row_ids, shapely.to_wkb(twins))
        updated += len(rows)
        last_id = int(row_ids[-1])
    return updated


def _write_twins(
    conn: Connection, table: str, twin: str, ids: np.ndarray, wkbs: np.ndarray
) -> None:
    conn.execute(sa.text("TRUNCATE _twin"))
    raw = cast(psycopg.Connection[Any], conn.connection.dbapi_connection)
    with raw.cursor() as cursor, cursor.copy("COPY _twin (id, wkb) FROM STDIN") as copy:
        for row_id, wkb in zip(ids.tolist(), wkbs.tolist(), strict=True):
            copy.write_row((row_id, wkb))
    conn.execute(
        sa.text(
            f"UPDATE {table} AS t SET {twin} = ST_SetSRID(ST_GeomFromWKB(w.wkb), {ETRS89}) "  # noqa: S608
            "FROM _twin AS w WHERE t.id = w.id"
        )
    )
