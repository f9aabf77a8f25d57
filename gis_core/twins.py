"""ETRS89 twins: the geographic copy of every stored geometry, computed at write time.

PostGIS cannot apply the official TransDatRO grid, and PROJ's default Stereo 70 path is
off by up to a metre. So whenever geometries are written in EPSG:3844 the platform also
writes ``geom_etrs89`` transformed with TransDatRO in Python (vectorised), and SQL serves
geographic output (GeoJSON, tiles, the web map) from the twin. For any other storage CRS
PostGIS's own ``ST_Transform`` is the right tool and runs in the database.
"""

from __future__ import annotations

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

# Tables with a ``geom_etrs89`` twin; the catalog of what this module may touch, so no
# table name from elsewhere is ever pasted into SQL.
TWINNED_TABLES = frozenset(
    {
        "core.admin_unit",
        "core.intravilan",
        "cadastre.street",
        "cadastre.address",
        "cadastre.parcel",
        "cadastre.building",
        "urbanism.zone",
        "urbanism.restriction",
    }
)


@dataclass(frozen=True)
class TwinReport:
    table: str
    updated: int


def fill_missing_twins(conn: Connection, table: str, storage_srid: int) -> TwinReport:
    """Compute ``geom_etrs89`` for every row of ``table`` that has a geometry but no twin."""
    if table not in TWINNED_TABLES:
        raise ValueError(f"{table} has no ETRS89 twin column")
    if storage_srid != STEREO70:
        result = conn.execute(
            sa.text(
                f"UPDATE {table} SET geom_etrs89 = ST_Transform(geom, {ETRS89}) "  # noqa: S608
                "WHERE geom_etrs89 IS NULL AND geom IS NOT NULL"
            )
        )
        return TwinReport(table, result.rowcount)
    return TwinReport(table, _fill_with_transdatro(conn, table))


def _fill_with_transdatro(conn: Connection, table: str) -> int:
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
        f"SELECT id, ST_AsBinary(geom) FROM {table} "  # noqa: S608
        "WHERE geom_etrs89 IS NULL AND geom IS NOT NULL AND id > :last "
        "ORDER BY id LIMIT :batch"
    )
    while True:
        rows = conn.execute(select, {"last": last_id, "batch": _BATCH}).fetchall()
        if not rows:
            break
        ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        geoms = shapely.from_wkb([bytes(row[1]) for row in rows])
        twins = transform_geometries(geoms, STEREO70, ETRS89)
        _write_twins(conn, table, ids, shapely.to_wkb(twins))
        updated += len(rows)
        last_id = int(ids[-1])
    return updated


def _write_twins(conn: Connection, table: str, ids: np.ndarray, wkbs: np.ndarray) -> None:
    conn.execute(sa.text("TRUNCATE _twin"))
    raw = cast(psycopg.Connection[Any], conn.connection.dbapi_connection)
    with raw.cursor() as cursor, cursor.copy("COPY _twin (id, wkb) FROM STDIN") as copy:
        for row_id, wkb in zip(ids.tolist(), wkbs.tolist(), strict=True):
            copy.write_row((row_id, wkb))
    conn.execute(
        sa.text(
            f"UPDATE {table} AS t SET geom_etrs89 = ST_SetSRID(ST_GeomFromWKB(w.wkb), {ETRS89}) "  # noqa: S608
            "FROM _twin AS w WHERE t.id = w.id"
        )
    )
