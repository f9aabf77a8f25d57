"""Importers: source ids on versioned tables and the raster layer registry.

Revision ID: 0003_imports
Revises: 0002_access
Create Date: 2026-11-21

- ``source_id`` on buildings, zones and restrictions: the id a feature has in its
  source (OSM id, gml:id, GlobalID), which is how a re-import recognises a new version
  of the same feature when the platform has no natural key for it.
- ``core.raster_layer``: every raster imported as a Cloud-Optimized GeoTIFF (orthophotos,
  scanned plans), with its file, grid and overviews, for the map services to publish.
  Versioned like the vector tables: a re-import closes the previous file's row.
- Staging itself uses temporary tables created by each import (they vanish with the
  transaction, so a killed import leaves nothing behind).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0003_imports"
down_revision = "0002_access"
branch_labels = None
depends_on = None

SOURCE_ID_TABLES = ("cadastre.building", "urbanism.zone", "urbanism.restriction")


def _srid() -> int:
    config = op.get_context().config
    return int(config.attributes.get("storage_srid", 3844)) if config else 3844


def upgrade() -> None:
    for qualified in SOURCE_ID_TABLES:
        schema, table = qualified.split(".")
        op.add_column(table, sa.Column("source_id", sa.Text(), nullable=True), schema=schema)
        op.execute(
            f"CREATE INDEX ix_{table}_source_id_current ON {qualified} (source_id) "
            "WHERE valid_to IS NULL"
        )
    op.create_table(
        "raster_layer",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("source_sha256", sa.Text(), nullable=False),
        sa.Column("srid", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("band_count", sa.SmallInteger(), nullable=False),
        sa.Column("data_type", sa.Text(), nullable=False),
        sa.Column("resolution", ARRAY(sa.Float()), nullable=False),
        sa.Column("nodata", sa.Float(), nullable=True),
        sa.Column("overviews", ARRAY(sa.Integer()), server_default="{}", nullable=False),
        sa.Column("metadata", JSONB(), server_default="{}", nullable=False),
        sa.Column("extent", Geometry("POLYGON", srid=_srid(), spatial_index=False), nullable=False),
        sa.Column(
            "valid_from",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("import_run_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "valid_to IS NULL OR valid_to >= valid_from", name=op.f("ck_raster_layer_period")
        ),
        sa.ForeignKeyConstraint(
            ["import_run_id"],
            ["core.import_run.id"],
            name=op.f("fk_raster_layer_import_run_id_import_run"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_raster_layer")),
        schema="core",
    )
    op.execute(
        "CREATE UNIQUE INDEX uq_raster_layer_name_current ON core.raster_layer (name) "
        "WHERE valid_to IS NULL"
    )
    op.execute("CREATE INDEX ix_raster_layer_extent ON core.raster_layer USING gist (extent)")
    op.execute("CREATE INDEX ix_raster_layer_import_run_id ON core.raster_layer (import_run_id)")
    op.execute(
        "CREATE TRIGGER tr_raster_layer_data_version AFTER INSERT OR UPDATE OR DELETE OR "
        "TRUNCATE ON core.raster_layer FOR EACH STATEMENT EXECUTE FUNCTION core.bump_data_version()"
    )
    op.execute(
        sa.text("INSERT INTO core.data_version (table_name, version) VALUES (:t, 0)").bindparams(
            t="core.raster_layer"
        )
    )


def downgrade() -> None:
    op.execute("DELETE FROM core.data_version WHERE table_name = 'core.raster_layer'")
    op.execute("DROP TABLE IF EXISTS core.raster_layer CASCADE")
    for qualified in SOURCE_ID_TABLES:
        schema, table = qualified.split(".")
        op.execute(f"DROP INDEX IF EXISTS {schema}.ix_{table}_source_id_current")
        op.drop_column(table, "source_id", schema=schema)
