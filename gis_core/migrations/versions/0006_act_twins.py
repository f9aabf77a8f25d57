"""ETRS89 twins for the acts' geometries (location, site-plan footprint, built footprint).

Revision ID: 0006_act_twins
Revises: 0005_indicators
Create Date: 2026-11-22

``permits.act`` keeps three geometries in the storage CRS: ``location`` (a point),
``footprint`` (the site plan) and ``geom`` (the proposed built footprint). Each gets an
ETRS89 (EPSG:4258) twin, written like every other twin: with the official TransDatRO
transformation when storage is Stereo 70, with PostGIS's ``ST_Transform`` otherwise.
Acts already stored get their twins here, so geographic output never falls back to a
PROJ path that is off by up to a metre.

Unlike the versioned tables, an act's geometries change in place (a clerk's edit, a
re-link). A row trigger clears the twin of every geometry an UPDATE changes without
also writing its twin, so a twin is never stale: at worst missing until the writer
fills it (``gis_core.twins.fill_missing_twins``).
"""

from __future__ import annotations

import shapely
import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0006_act_twins"
down_revision = "0005_indicators"
branch_labels = None
depends_on = None

ETRS89 = 4258
STEREO70 = 3844
# storage column -> (twin column, geometry type); the types are those of 0004.
TWINS = {
    "location": ("location_etrs89", "POINT"),
    "footprint": ("footprint_etrs89", "MULTIPOLYGON"),
    "geom": ("geom_etrs89", "MULTIPOLYGON"),
}


def _srid() -> int:
    config = op.get_context().config
    return int(config.attributes.get("storage_srid", 3844)) if config else 3844


def upgrade() -> None:
    for twin, kind in TWINS.values():
        op.add_column(
            "act",
            sa.Column(twin, Geometry(kind, srid=ETRS89, spatial_index=False), nullable=True),
            schema="permits",
        )
        op.execute(f"CREATE INDEX ix_act_{twin} ON permits.act USING gist ({twin})")
    _create_stale_twin_trigger()
    _fill_existing(_srid())


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS tr_act_stale_twins ON permits.act")
    op.execute("DROP FUNCTION IF EXISTS permits.clear_stale_act_twins()")
    for twin, _kind in TWINS.values():
        op.execute(f"DROP INDEX IF EXISTS permits.ix_act_{twin}")
        op.drop_column("act", twin, schema="permits")


def _create_stale_twin_trigger() -> None:
    checks = "\n".join(
        f"    IF NEW.{column} IS DISTINCT FROM OLD.{column} "
        f"AND NEW.{twin} IS NOT DISTINCT FROM OLD.{twin} THEN\n"
        f"        NEW.{twin} := NULL;\n"
        "    END IF;"
        for column, (twin, _kind) in TWINS.items()
    )
    op.execute(
        "CREATE FUNCTION permits.clear_stale_act_twins() RETURNS trigger "
        f"LANGUAGE plpgsql AS $$\nBEGIN\n{checks}\n    RETURN NEW;\nEND\n$$"
    )
    op.execute(
        "CREATE TRIGGER tr_act_stale_twins BEFORE UPDATE OF "
        f"{', '.join(TWINS)} ON permits.act "
        "FOR EACH ROW EXECUTE FUNCTION permits.clear_stale_act_twins()"
    )


def _fill_existing(storage_srid: int) -> None:
    bind = op.get_bind()
    for column, (twin, _kind) in TWINS.items():
        if storage_srid != STEREO70:
            bind.execute(
                sa.text(
                    f"UPDATE permits.act SET {twin} = ST_Transform({column}, {ETRS89}) "  # noqa: S608
                    f"WHERE {column} IS NOT NULL"
                )
            )
            continue
        rows = bind.execute(
            sa.text(
                f"SELECT id, ST_AsBinary({column}) FROM permits.act "  # noqa: S608
                f"WHERE {column} IS NOT NULL ORDER BY id"
            )
        ).fetchall()
        if not rows:
            continue
        from gis_core.crs.transform import transform_geometries

        geoms = shapely.from_wkb([bytes(row[1]) for row in rows])
        wkbs = shapely.to_wkb(transform_geometries(geoms, STEREO70, ETRS89))
        bind.execute(
            sa.text(
                f"UPDATE permits.act SET {twin} = ST_SetSRID(ST_GeomFromWKB(:wkb), {ETRS89}) "  # noqa: S608
                "WHERE id = :id"
            ),
            [{"id": row[0], "wkb": bytes(w)} for row, w in zip(rows, wkbs.tolist(), strict=True)],
        )
