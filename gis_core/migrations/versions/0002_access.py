"""Access: staff users, API keys, and per-table data versions for cache invalidation.

Revision ID: 0002_access
Revises: 0001_spatial_core
Create Date: 2026-11-21

Every published table gets a statement-level trigger that bumps its row in
``core.data_version``; the layer catalog and the tile cache read that counter.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_access"
down_revision = "0001_spatial_core"
branch_labels = None
depends_on = None

ROLE_CHECK = "role IN ('public', 'portal', 'clerk', 'planner', 'admin')"
VERSIONED_TABLES = (
    "core.admin_unit",
    "core.intravilan",
    "cadastre.address",
    "cadastre.parcel",
    "cadastre.building",
    "urbanism.plan",
    "urbanism.regulation",
    "urbanism.zone",
    "urbanism.restriction",
    "protected.parcel_owner",
    "protected.person",
)


def upgrade() -> None:
    op.create_table(
        "staff_user",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("login", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("full_name", sa.Text(), nullable=True),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(ROLE_CHECK, name=op.f("ck_staff_user_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_user")),
        sa.UniqueConstraint("login", name=op.f("uq_staff_user_login")),
        schema="core",
    )
    op.create_table(
        "api_key",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.Column("secret_sha256", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("rate_limit_per_minute", sa.Integer(), server_default="600", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(ROLE_CHECK, name=op.f("ck_api_key_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_key")),
        sa.UniqueConstraint("key_id", name=op.f("uq_api_key_key_id")),
        schema="core",
    )
    op.create_table(
        "data_version",
        sa.Column("table_name", sa.Text(), nullable=False),
        sa.Column("version", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column(
            "changed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("table_name", name=op.f("pk_data_version")),
        schema="core",
    )
    op.execute(
        """
        CREATE FUNCTION core.bump_data_version() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO core.data_version (table_name, version, changed_at)
            VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, 1, now())
            ON CONFLICT (table_name) DO UPDATE
                SET version = core.data_version.version + 1, changed_at = now();
            RETURN NULL;
        END
        $$
        """
    )
    for qualified in VERSIONED_TABLES:
        table = qualified.split(".")[1]
        op.execute(
            f"CREATE TRIGGER tr_{table}_data_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
            f"ON {qualified} FOR EACH STATEMENT EXECUTE FUNCTION core.bump_data_version()"
        )
        op.execute(
            sa.text(
                "INSERT INTO core.data_version (table_name, version) VALUES (:t, 0)"
            ).bindparams(t=qualified)
        )


def downgrade() -> None:
    for qualified in VERSIONED_TABLES:
        table = qualified.split(".")[1]
        op.execute(f"DROP TRIGGER IF EXISTS tr_{table}_data_version ON {qualified}")
    op.execute("DROP FUNCTION IF EXISTS core.bump_data_version()")
    for table in ("data_version", "api_key", "staff_user"):
        op.drop_table(table, schema="core")
