"""Permits: urbanism certificates, building and demolition permits, links to parcels.

Revision ID: 0004_permits
Revises: 0003_imports
Create Date: 2026-11-21

Schema ``permits`` (acts, links to parcels, the review queue) and the applicant table in
``protected``. Geometry columns take the storage SRID; the published tables get the
data-version trigger of 0002 so layer caches notice every edit.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004_permits"
down_revision = "0003_imports"
branch_labels = None
depends_on = None

KINDS = "kind IN ('CU', 'AC', 'AD')"
STATUSES = "status IN ('requested', 'issued', 'extended', 'expired', 'cancelled', 'completed')"
LINK_STATES = "link_state IN ('pending', 'linked', 'review', 'unmatched')"
METHODS = "method IN ('number', 'spatial', 'address', 'manual')"
VERSIONED_TABLES = ("permits.act", "permits.act_parcel", "protected.act_applicant")
GEOMETRIES = {"location": "POINT", "footprint": "MULTIPOLYGON", "geom": "MULTIPOLYGON"}


def _srid() -> int:
    config = op.get_context().config
    return int(config.attributes.get("storage_srid", 3844)) if config else 3844


def _now() -> sa.Column[Any]:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS permits")
    _create_act()
    _create_links()
    _create_queue()
    _create_applicant()
    for column in GEOMETRIES:
        op.execute(f"CREATE INDEX ix_act_{column} ON permits.act USING gist ({column})")
    for qualified in VERSIONED_TABLES:
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
    op.execute("COMMENT ON SCHEMA permits IS 'Acts: CU, AC, AD, links to parcels, review queue'")


def _create_act() -> None:
    srid = _srid()
    op.create_table(
        "act",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("uat_siruta", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("number", sa.Text(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=True),
        sa.Column("register_key", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="issued", nullable=False),
        sa.Column("requested_on", sa.Date(), nullable=True),
        sa.Column("purpose", sa.Text(), nullable=True),
        sa.Column("address_text", sa.Text(), nullable=True),
        sa.Column("cited_numbers", sa.Text(), nullable=True),
        sa.Column("land_book_text", sa.Text(), nullable=True),
        sa.Column("validity_months", sa.SmallInteger(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("extension_months", sa.SmallInteger(), nullable=True),
        sa.Column("extension_requested_on", sa.Date(), nullable=True),
        sa.Column("extended_until", sa.Date(), nullable=True),
        sa.Column("basis_act_id", sa.BigInteger(), nullable=True),
        sa.Column("proposed_footprint_area", sa.Numeric(12, 2), nullable=True),
        sa.Column("proposed_floor_area", sa.Numeric(12, 2), nullable=True),
        sa.Column("proposed_height_m", sa.Numeric(6, 2), nullable=True),
        sa.Column("proposed_levels", sa.SmallInteger(), nullable=True),
        sa.Column("link_state", sa.Text(), server_default="pending", nullable=False),
        sa.Column("source_ref", sa.Text(), nullable=True),
        sa.Column("import_run_id", sa.BigInteger(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        _now(),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        *(
            sa.Column(name, Geometry(kind, srid=srid, spatial_index=False), nullable=True)
            for name, kind in GEOMETRIES.items()
        ),
        sa.CheckConstraint(KINDS, name=op.f("ck_act_kind")),
        sa.CheckConstraint(STATUSES, name=op.f("ck_act_status")),
        sa.CheckConstraint(LINK_STATES, name=op.f("ck_act_link_state")),
        sa.CheckConstraint("version > 0", name=op.f("ck_act_version")),
        sa.ForeignKeyConstraint(
            ["basis_act_id"],
            ["permits.act.id"],
            name=op.f("fk_act_basis_act_id_act"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["import_run_id"], ["core.import_run.id"], name=op.f("fk_act_import_run_id_import_run")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_act")),
        sa.UniqueConstraint(
            "uat_siruta", "kind", "register_key", name=op.f("uq_act_uat_siruta_kind_register_key")
        ),
        schema="permits",
    )
    for column in ("issued_on", "basis_act_id", "import_run_id"):
        op.create_index(op.f(f"ix_act_{column}"), "act", [column], schema="permits")


def _create_links() -> None:
    op.create_table(
        "act_parcel",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("act_id", sa.BigInteger(), nullable=False),
        sa.Column("parcel_id", sa.BigInteger(), nullable=False),
        sa.Column("cadastral_number", sa.Text(), nullable=False),
        sa.Column("is_primary", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("confidence", sa.Numeric(3, 2), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        _now(),
        sa.CheckConstraint(METHODS, name=op.f("ck_act_parcel_method")),
        sa.CheckConstraint("confidence BETWEEN 0 AND 1", name=op.f("ck_act_parcel_confidence")),
        sa.ForeignKeyConstraint(
            ["act_id"],
            ["permits.act.id"],
            name=op.f("fk_act_parcel_act_id_act"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["parcel_id"],
            ["cadastre.parcel.id"],
            name=op.f("fk_act_parcel_parcel_id_parcel"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_act_parcel")),
        sa.UniqueConstraint("act_id", "parcel_id", name=op.f("uq_act_parcel_act_id_parcel_id")),
        schema="permits",
    )
    for column in ("act_id", "parcel_id"):
        op.create_index(op.f(f"ix_act_parcel_{column}"), "act_parcel", [column], schema="permits")


def _create_queue() -> None:
    op.create_table(
        "review_item",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("act_id", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("candidates", JSONB(), server_default="[]", nullable=False),
        sa.Column("state", sa.Text(), server_default="open", nullable=False),
        _now(),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.Text(), nullable=True),
        sa.Column("resolution", JSONB(), nullable=True),
        sa.CheckConstraint(
            "state IN ('open', 'resolved', 'dismissed')", name=op.f("ck_review_item_state")
        ),
        sa.ForeignKeyConstraint(
            ["act_id"],
            ["permits.act.id"],
            name=op.f("fk_review_item_act_id_act"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_item")),
        schema="permits",
    )
    op.create_index(op.f("ix_review_item_act_id"), "review_item", ["act_id"], schema="permits")
    op.create_index(
        "uq_review_item_open_act",
        "review_item",
        ["act_id"],
        unique=True,
        schema="permits",
        postgresql_where=sa.text("state = 'open'"),
    )


def _create_applicant() -> None:
    op.create_table(
        "act_applicant",
        sa.Column("act_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.Text(), server_default="natural", nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("national_id", sa.Text(), nullable=True),
        sa.Column("address_text", sa.Text(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.CheckConstraint("kind IN ('natural', 'legal')", name=op.f("ck_act_applicant_kind")),
        sa.ForeignKeyConstraint(
            ["act_id"],
            ["permits.act.id"],
            name=op.f("fk_act_applicant_act_id_act"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("act_id", name=op.f("pk_act_applicant")),
        schema="protected",
    )


def downgrade() -> None:
    for qualified in VERSIONED_TABLES:
        table = qualified.split(".")[1]
        op.execute(f"DROP TRIGGER IF EXISTS tr_{table}_data_version ON {qualified}")
        op.execute(
            sa.text("DELETE FROM core.data_version WHERE table_name = :t").bindparams(t=qualified)
        )
    op.drop_table("act_applicant", schema="protected")
    op.drop_table("review_item", schema="permits")
    op.drop_table("act_parcel", schema="permits")
    op.drop_table("act", schema="permits")
    op.execute("DROP SCHEMA IF EXISTS permits")
