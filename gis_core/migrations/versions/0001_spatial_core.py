"""The spatial core: admin units, cadastre, urbanism, personal data, runs and audit.

Revision ID: 0001_spatial_core
Revises:
Create Date: 2026-11-21

Geometry columns take the storage SRID given to the migration (``urbangis db upgrade``
passes the setting), recorded in ``core.deployment`` so later runs can check it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0001_spatial_core"
down_revision = None
branch_labels = None
depends_on = None

SCHEMAS = ("core", "cadastre", "urbanism", "protected", "staging")
ETRS89 = 4258

# Tables whose rows are versions: one current row per key, no overlapping periods.
VERSIONED_KEYS = {
    "cadastre.parcel": "uat_siruta WITH =, cadastral_number WITH =",
}
SPATIAL = (
    "core.admin_unit",
    "core.intravilan",
    "cadastre.street",
    "cadastre.address",
    "cadastre.parcel",
    "cadastre.building",
    "urbanism.zone",
    "urbanism.restriction",
)


def _srid() -> int:
    config = op.get_context().config
    return int(config.attributes.get("storage_srid", 3844)) if config else 3844


def _storage(geometry_type: str) -> Geometry:
    return Geometry(geometry_type, srid=_srid(), spatial_index=False)


def _etrs89(geometry_type: str) -> Geometry:
    return Geometry(geometry_type, srid=ETRS89, spatial_index=False)


def upgrade() -> None:
    for schema in SCHEMAS:
        op.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    for extension in ("postgis", "btree_gist", "pg_trgm"):
        op.execute(f"CREATE EXTENSION IF NOT EXISTS {extension}")
    _create_tables()
    _create_spatial_indexes()
    _create_version_rules()
    _create_search_indexes()
    op.execute(
        sa.text(
            "INSERT INTO core.deployment (key, value) VALUES ('storage_srid', :srid)"
        ).bindparams(srid=str(_srid()))
    )
    op.execute("COMMENT ON SCHEMA protected IS 'Personal data: clerk and admin roles only'")


def _create_spatial_indexes() -> None:
    plain = [*SPATIAL, "urbanism.plan", "cadastre.parcel_use"]
    for qualified in plain:
        table = qualified.split(".")[1]
        op.execute(f"CREATE INDEX ix_{table}_geom ON {qualified} USING gist (geom)")
    for qualified in SPATIAL:
        table = qualified.split(".")[1]
        op.execute(f"CREATE INDEX ix_{table}_geom_etrs89 ON {qualified} USING gist (geom_etrs89)")


def _create_version_rules() -> None:
    """Current rows are found by ``valid_to IS NULL``; periods of one key never overlap."""
    for qualified, key in VERSIONED_KEYS.items():
        table = qualified.split(".")[1]
        op.execute(
            f"ALTER TABLE {qualified} ADD CONSTRAINT ex_{table}_versions EXCLUDE USING gist "
            f"({key}, tstzrange(valid_from, valid_to) WITH &&)"
        )
    op.execute(
        "CREATE INDEX ix_parcel_number_current ON cadastre.parcel (uat_siruta, cadastral_number) "
        "WHERE valid_to IS NULL"
    )
    for qualified in (
        "cadastre.building",
        "urbanism.zone",
        "urbanism.restriction",
        "core.intravilan",
    ):
        table = qualified.split(".")[1]
        op.execute(
            f"CREATE INDEX ix_{table}_validity ON {qualified} USING gist "
            "(tstzrange(valid_from, valid_to))"
        )
    for qualified in (
        "cadastre.parcel",
        "cadastre.building",
        "urbanism.zone",
        "urbanism.restriction",
        "core.intravilan",
    ):
        table = qualified.split(".")[1]
        op.execute(
            f"ALTER TABLE {qualified} ADD CONSTRAINT ck_{table}_period "
            "CHECK (valid_to IS NULL OR valid_to >= valid_from)"
        )


def _create_search_indexes() -> None:
    """Trigram indexes for diacritic-insensitive, typo-tolerant search."""
    op.execute(
        "CREATE INDEX ix_address_search ON cadastre.address USING gin (search_text gin_trgm_ops)"
    )
    op.execute(
        "CREATE INDEX ix_street_search ON cadastre.street USING gin (search_text gin_trgm_ops)"
    )
    op.execute(
        "CREATE INDEX ix_parcel_number_pattern ON cadastre.parcel (cadastral_number text_pattern_ops)"
    )


def _create_tables() -> None:
    op.create_table(
        "street",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("uat_siruta", sa.Integer(), nullable=False),
        sa.Column("street_type", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=True),
        sa.Column("geom", _storage("MULTILINESTRING"), nullable=True),
        sa.Column("geom_etrs89", _etrs89("MULTILINESTRING"), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_street")),
        sa.UniqueConstraint("uat_siruta", "name", name=op.f("uq_street_uat_siruta_name")),
        schema="cadastre",
    )
    op.create_table(
        "admin_unit",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("siruta", sa.Integer(), nullable=False),
        sa.Column("parent_siruta", sa.Integer(), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("county_code", sa.Integer(), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("geom", _storage("MULTIPOLYGON"), nullable=True),
        sa.Column("geom_etrs89", _etrs89("MULTIPOLYGON"), nullable=True),
        sa.CheckConstraint(
            "level IN ('county', 'uat', 'locality')", name=op.f("ck_admin_unit_level")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_unit")),
        sa.UniqueConstraint("siruta", name=op.f("uq_admin_unit_siruta")),
        schema="core",
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("table_name", sa.Text(), nullable=False),
        sa.Column("row_id", sa.Text(), nullable=False),
        sa.Column("before", JSONB(), nullable=True),
        sa.Column("after", JSONB(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "action IN ('insert', 'update', 'delete')", name=op.f("ck_audit_log_action")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
        schema="core",
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"], unique=False, schema="core")
    op.create_index(
        "ix_audit_log_table_row", "audit_log", ["table_name", "row_id"], unique=False, schema="core"
    )
    op.create_table(
        "deployment",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_deployment")),
        schema="core",
    )
    op.create_table(
        "import_run",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("parameters", JSONB(), server_default="{}", nullable=False),
        sa.Column("status", sa.Text(), server_default="running", nullable=False),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("counts", JSONB(), server_default="{}", nullable=False),
        sa.Column("report", JSONB(), server_default="{}", nullable=False),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed', 'dry_run')",
            name=op.f("ck_import_run_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_run")),
        schema="core",
    )
    op.create_table(
        "address",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("uat_siruta", sa.Integer(), nullable=False),
        sa.Column("locality_siruta", sa.Integer(), nullable=True),
        sa.Column("street_id", sa.BigInteger(), nullable=True),
        sa.Column("street_type", sa.Text(), nullable=True),
        sa.Column("street_name", sa.Text(), nullable=True),
        sa.Column("number", sa.Text(), nullable=True),
        sa.Column("block", sa.Text(), nullable=True),
        sa.Column("entrance", sa.Text(), nullable=True),
        sa.Column("floor", sa.Text(), nullable=True),
        sa.Column("apartment", sa.Text(), nullable=True),
        sa.Column("postal_code", sa.Text(), nullable=True),
        sa.Column("full_text", sa.Text(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("geom", _storage("POINT"), nullable=True),
        sa.Column("geom_etrs89", _etrs89("POINT"), nullable=True),
        sa.ForeignKeyConstraint(
            ["street_id"], ["cadastre.street.id"], name=op.f("fk_address_street_id_street")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_address")),
        schema="cadastre",
    )
    op.create_index(
        op.f("ix_address_street_id"), "address", ["street_id"], unique=False, schema="cadastre"
    )
    op.create_table(
        "building",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("uat_siruta", sa.Integer(), nullable=False),
        sa.Column("cadastral_number", sa.Text(), nullable=True),
        sa.Column("building_number", sa.Text(), nullable=True),
        sa.Column("e2_identifier", sa.Text(), nullable=True),
        sa.Column("footprint_area", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("floor_area", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("levels", sa.SmallInteger(), nullable=True),
        sa.Column("height_m", sa.Numeric(precision=6, scale=2), nullable=True),
        sa.Column("destination", sa.Text(), nullable=True),
        sa.Column("is_legal", sa.Boolean(), nullable=True),
        sa.Column("geom", _storage("MULTIPOLYGON"), nullable=True),
        sa.Column("geom_etrs89", _etrs89("MULTIPOLYGON"), nullable=True),
        sa.Column(
            "valid_from",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("import_run_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["import_run_id"],
            ["core.import_run.id"],
            name=op.f("fk_building_import_run_id_import_run"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_building")),
        schema="cadastre",
    )
    op.create_index(
        op.f("ix_building_cadastral_number"),
        "building",
        ["cadastral_number"],
        unique=False,
        schema="cadastre",
    )
    op.create_index(
        op.f("ix_building_import_run_id"),
        "building",
        ["import_run_id"],
        unique=False,
        schema="cadastre",
    )
    op.create_table(
        "intravilan",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("uat_siruta", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("geom", _storage("MULTIPOLYGON"), nullable=False),
        sa.Column("geom_etrs89", _etrs89("MULTIPOLYGON"), nullable=True),
        sa.Column(
            "valid_from",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("import_run_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["import_run_id"],
            ["core.import_run.id"],
            name=op.f("fk_intravilan_import_run_id_import_run"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intravilan")),
        schema="core",
    )
    op.create_index(
        op.f("ix_intravilan_import_run_id"),
        "intravilan",
        ["import_run_id"],
        unique=False,
        schema="core",
    )
    op.create_index(
        op.f("ix_intravilan_uat_siruta"), "intravilan", ["uat_siruta"], unique=False, schema="core"
    )
    op.create_table(
        "person",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.Text(), server_default="natural", nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("national_id", sa.Text(), nullable=True),
        sa.Column("id_document", sa.Text(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("address_text", sa.Text(), nullable=True),
        sa.Column("import_run_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("kind IN ('natural', 'legal')", name=op.f("ck_person_kind")),
        sa.ForeignKeyConstraint(
            ["import_run_id"],
            ["core.import_run.id"],
            name=op.f("fk_person_import_run_id_import_run"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person")),
        schema="protected",
    )
    op.create_table(
        "plan",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("uat_siruta", sa.Integer(), nullable=False),
        sa.Column("plan_type", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("hcl_number", sa.Text(), nullable=True),
        sa.Column("hcl_date", sa.Date(), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("status", sa.Text(), server_default="approved", nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("import_run_id", sa.BigInteger(), nullable=True),
        sa.Column("geom", _storage("MULTIPOLYGON"), nullable=True),
        sa.CheckConstraint("plan_type IN ('PUG', 'PUZ', 'PUD')", name=op.f("ck_plan_plan_type")),
        sa.CheckConstraint(
            "status IN ('draft', 'approved', 'suspended', 'annulled', 'expired')",
            name=op.f("ck_plan_status"),
        ),
        sa.CheckConstraint(
            "valid_to IS NULL OR valid_to >= valid_from", name=op.f("ck_plan_validity")
        ),
        sa.ForeignKeyConstraint(
            ["import_run_id"], ["core.import_run.id"], name=op.f("fk_plan_import_run_id_import_run")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan")),
        sa.UniqueConstraint("title", name=op.f("uq_plan_title")),
        schema="urbanism",
    )
    op.create_table(
        "parcel",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("uat_siruta", sa.Integer(), nullable=False),
        sa.Column("cadastral_number", sa.Text(), nullable=False),
        sa.Column("land_book_number", sa.Text(), nullable=True),
        sa.Column("e2_identifier", sa.Text(), nullable=True),
        sa.Column("cad_sector", sa.Text(), nullable=True),
        sa.Column("topo_number", sa.Text(), nullable=True),
        sa.Column("measured_area", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("legal_area", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("use_category", sa.Text(), nullable=True),
        sa.Column("intravilan", sa.Boolean(), nullable=True),
        sa.Column("address_id", sa.BigInteger(), nullable=True),
        sa.Column("address_text", sa.Text(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("geom", _storage("MULTIPOLYGON"), nullable=True),
        sa.Column("geom_etrs89", _etrs89("MULTIPOLYGON"), nullable=True),
        sa.Column(
            "valid_from",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("import_run_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["address_id"], ["cadastre.address.id"], name=op.f("fk_parcel_address_id_address")
        ),
        sa.ForeignKeyConstraint(
            ["import_run_id"],
            ["core.import_run.id"],
            name=op.f("fk_parcel_import_run_id_import_run"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parcel")),
        schema="cadastre",
    )
    op.create_index(
        op.f("ix_parcel_address_id"), "parcel", ["address_id"], unique=False, schema="cadastre"
    )
    op.create_index(
        op.f("ix_parcel_e2_identifier"),
        "parcel",
        ["e2_identifier"],
        unique=False,
        schema="cadastre",
    )
    op.create_index(
        op.f("ix_parcel_import_run_id"),
        "parcel",
        ["import_run_id"],
        unique=False,
        schema="cadastre",
    )
    op.create_table(
        "regulation",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("plan_id", sa.BigInteger(), nullable=False),
        sa.Column("utr_code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("function", sa.Text(), nullable=True),
        sa.Column("allowed_uses", ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("conditional_uses", ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("forbidden_uses", ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("pot_max", sa.Numeric(precision=5, scale=2), nullable=True),
        sa.Column("cut_max", sa.Numeric(precision=5, scale=2), nullable=True),
        sa.Column("height_max_m", sa.Numeric(precision=6, scale=2), nullable=True),
        sa.Column("height_regime", sa.Text(), nullable=True),
        sa.Column("min_plot_area", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("min_frontage", sa.Numeric(precision=8, scale=2), nullable=True),
        sa.Column("rules_text", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["urbanism.plan.id"],
            name=op.f("fk_regulation_plan_id_plan"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_regulation")),
        sa.UniqueConstraint("plan_id", "utr_code", name=op.f("uq_regulation_plan_id_utr_code")),
        schema="urbanism",
    )
    op.create_table(
        "restriction",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("uat_siruta", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("legal_source", sa.Text(), nullable=True),
        sa.Column("plan_id", sa.BigInteger(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("geom", _storage("MULTIPOLYGON"), nullable=False),
        sa.Column("geom_etrs89", _etrs89("MULTIPOLYGON"), nullable=True),
        sa.Column(
            "valid_from",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("import_run_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('heritage', 'protected_area', 'flood', 'easement', 'airport', 'natura2000', 'landslide', 'other')",
            name=op.f("ck_restriction_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["import_run_id"],
            ["core.import_run.id"],
            name=op.f("fk_restriction_import_run_id_import_run"),
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["urbanism.plan.id"], name=op.f("fk_restriction_plan_id_plan")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_restriction")),
        schema="urbanism",
    )
    op.create_index(
        op.f("ix_restriction_import_run_id"),
        "restriction",
        ["import_run_id"],
        unique=False,
        schema="urbanism",
    )
    op.create_table(
        "parcel_use",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("parcel_id", sa.BigInteger(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=True),
        sa.Column("use_category", sa.Text(), nullable=False),
        sa.Column("measured_area", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("intravilan", sa.Boolean(), nullable=True),
        sa.Column("geom", _storage("MULTIPOLYGON"), nullable=True),
        sa.ForeignKeyConstraint(
            ["parcel_id"],
            ["cadastre.parcel.id"],
            name=op.f("fk_parcel_use_parcel_id_parcel"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parcel_use")),
        schema="cadastre",
    )
    op.create_index(
        op.f("ix_parcel_use_parcel_id"),
        "parcel_use",
        ["parcel_id"],
        unique=False,
        schema="cadastre",
    )
    op.create_table(
        "parcel_owner",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("parcel_id", sa.BigInteger(), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("share", sa.Text(), nullable=True),
        sa.Column("right_kind", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["parcel_id"],
            ["cadastre.parcel.id"],
            name=op.f("fk_parcel_owner_parcel_id_parcel"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["protected.person.id"],
            name=op.f("fk_parcel_owner_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parcel_owner")),
        schema="protected",
    )
    op.create_index(
        op.f("ix_parcel_owner_parcel_id"),
        "parcel_owner",
        ["parcel_id"],
        unique=False,
        schema="protected",
    )
    op.create_index(
        op.f("ix_parcel_owner_person_id"),
        "parcel_owner",
        ["person_id"],
        unique=False,
        schema="protected",
    )
    op.create_table(
        "zone",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("plan_id", sa.BigInteger(), nullable=False),
        sa.Column("regulation_id", sa.BigInteger(), nullable=True),
        sa.Column("utr_code", sa.Text(), nullable=False),
        sa.Column("function", sa.Text(), nullable=True),
        sa.Column("geom", _storage("MULTIPOLYGON"), nullable=False),
        sa.Column("geom_etrs89", _etrs89("MULTIPOLYGON"), nullable=True),
        sa.Column(
            "valid_from",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("import_run_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["import_run_id"], ["core.import_run.id"], name=op.f("fk_zone_import_run_id_import_run")
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["urbanism.plan.id"], name=op.f("fk_zone_plan_id_plan"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["regulation_id"],
            ["urbanism.regulation.id"],
            name=op.f("fk_zone_regulation_id_regulation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_zone")),
        schema="urbanism",
    )
    op.create_index(
        op.f("ix_zone_import_run_id"), "zone", ["import_run_id"], unique=False, schema="urbanism"
    )
    op.create_index(op.f("ix_zone_plan_id"), "zone", ["plan_id"], unique=False, schema="urbanism")
    op.create_index(
        op.f("ix_zone_regulation_id"), "zone", ["regulation_id"], unique=False, schema="urbanism"
    )


def downgrade() -> None:
    # core keeps Alembic's version table, so its tables go one by one.
    for schema in ("staging", "protected", "urbanism", "cadastre"):
        op.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    for table in ("intravilan", "admin_unit", "audit_log", "import_run", "deployment"):
        op.execute(f"DROP TABLE IF EXISTS core.{table} CASCADE")
