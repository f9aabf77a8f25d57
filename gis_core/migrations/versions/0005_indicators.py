"""Analysis: spatial units, indicator inputs, indicator runs and their results.

Revision ID: 0005_indicators
Revises: 0004_permits
Create Date: 2026-11-21

Schema ``analysis`` holds what the strategy teams' indicators are computed on and from:
imported boundary layers used as spatial units, input layers (parks, schools, transit
stops, green areas, population points), population per unit, and every indicator run
with the versions of its inputs and one result row (value and geometry) per unit, which
the layer catalog publishes as a choropleth layer.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005_indicators"
down_revision = "0004_permits"
branch_labels = None
depends_on = None

SCHEMA = "analysis"
ETRS89 = 4258
INPUT_KINDS = "kind IN ('park', 'school', 'transit_stop', 'green', 'population')"
ENGINES = "engine IN ('postgis', 'dask')"
# Tables whose changes must invalidate the catalog's caches (indicator layers, tiles).
COUNTED = (
    "analysis.unit",
    "analysis.input_feature",
    "analysis.population",
    "analysis.indicator_run",
    "analysis.indicator_result",
)


def _srid() -> int:
    config = op.get_context().config
    return int(config.attributes.get("storage_srid", 3844)) if config else 3844


def _created_at() -> sa.Column:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    _units()
    _inputs()
    _runs()
    for table, column in (
        ("unit", "geom"),
        ("input_feature", "geom"),
        ("indicator_result", "geom"),
        ("indicator_result", "geom_etrs89"),
    ):
        op.execute(f"CREATE INDEX ix_{table}_{column} ON {SCHEMA}.{table} USING gist ({column})")
    for qualified in COUNTED:
        table = qualified.split(".")[1]
        op.execute(
            f"CREATE TRIGGER tr_{table}_data_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
            f"ON {qualified} FOR EACH STATEMENT EXECUTE FUNCTION core.bump_data_version()"
        )
        op.execute(
            sa.text(
                "INSERT INTO core.data_version (table_name, version) VALUES (:t, 0) "
                "ON CONFLICT (table_name) DO NOTHING"
            ).bindparams(t=qualified)
        )


def _units() -> None:
    op.create_table(
        "unit_set",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("source_sha256", sa.Text(), nullable=False),
        sa.Column("key_field", sa.Text(), nullable=True),
        sa.Column("name_field", sa.Text(), nullable=True),
        sa.Column("feature_count", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        _created_at(),
        sa.CheckConstraint("name ~ '^[a-z][a-z0-9_]*$'", name=op.f("ck_unit_set_name")),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_unit_set")),
        schema=SCHEMA,
    )
    op.create_table(
        "unit",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("unit_set", sa.Text(), nullable=False),
        sa.Column("unit_key", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("geom", Geometry("MULTIPOLYGON", srid=_srid(), spatial_index=False)),
        sa.ForeignKeyConstraint(
            ["unit_set"],
            [f"{SCHEMA}.unit_set.name"],
            name=op.f("fk_unit_unit_set_unit_set"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unit")),
        sa.UniqueConstraint("unit_set", "unit_key", name=op.f("uq_unit_unit_set_unit_key")),
        schema=SCHEMA,
    )


def _inputs() -> None:
    op.create_table(
        "input_layer",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("source_sha256", sa.Text(), nullable=False),
        sa.Column("value_field", sa.Text(), nullable=True),
        sa.Column("feature_count", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        _created_at(),
        sa.CheckConstraint(INPUT_KINDS, name=op.f("ck_input_layer_kind")),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_input_layer")),
        schema=SCHEMA,
    )
    op.create_table(
        "input_feature",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("input_layer", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("geom", Geometry("GEOMETRY", srid=_srid(), spatial_index=False), nullable=False),
        sa.ForeignKeyConstraint(
            ["input_layer"],
            [f"{SCHEMA}.input_layer.name"],
            name=op.f("fk_input_feature_input_layer_input_layer"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_input_feature")),
        schema=SCHEMA,
    )
    op.create_index(
        op.f("ix_input_feature_input_layer"), "input_feature", ["input_layer"], schema=SCHEMA
    )
    op.create_table(
        "population",
        sa.Column("unit_set", sa.Text(), nullable=False),
        sa.Column("unit_key", sa.Text(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("population", sa.Float(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("source_sha256", sa.Text(), nullable=False),
        _created_at(),
        sa.CheckConstraint("population >= 0", name=op.f("ck_population_population")),
        sa.PrimaryKeyConstraint("unit_set", "unit_key", "year", name=op.f("pk_population")),
        schema=SCHEMA,
    )


def _runs() -> None:
    op.create_table(
        "indicator_run",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("indicator", sa.Text(), nullable=False),
        sa.Column("units", sa.Text(), nullable=False),
        sa.Column("layer_id", sa.Text(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("engine", sa.Text(), server_default="postgis", nullable=False),
        sa.Column("parameters", JSONB(), server_default="{}", nullable=False),
        sa.Column("input_versions", JSONB(), server_default="{}", nullable=False),
        sa.Column("summary", JSONB(), server_default="{}", nullable=False),
        sa.Column("is_current", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column(
            "computed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.CheckConstraint(ENGINES, name=op.f("ck_indicator_run_engine")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_indicator_run")),
        schema=SCHEMA,
    )
    op.execute(
        "CREATE UNIQUE INDEX ix_indicator_run_current ON analysis.indicator_run (layer_id) "
        "WHERE is_current"
    )
    op.create_table(
        "indicator_result",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("unit_key", sa.Text(), nullable=False),
        sa.Column("unit_name", sa.Text(), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("numerator", sa.Float(), nullable=True),
        sa.Column("denominator", sa.Float(), nullable=True),
        sa.Column("objects", sa.BigInteger(), nullable=True),
        sa.Column("geom", Geometry("MULTIPOLYGON", srid=_srid(), spatial_index=False)),
        sa.Column("geom_etrs89", Geometry("MULTIPOLYGON", srid=ETRS89, spatial_index=False)),
        sa.ForeignKeyConstraint(
            ["run_id"],
            [f"{SCHEMA}.indicator_run.id"],
            name=op.f("fk_indicator_result_run_id_indicator_run"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_indicator_result")),
        sa.UniqueConstraint("run_id", "unit_key", name=op.f("uq_indicator_result_run_id_unit_key")),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    op.execute(
        sa.text("DELETE FROM core.data_version WHERE table_name = ANY(:t)").bindparams(
            t=list(COUNTED)
        )
    )
