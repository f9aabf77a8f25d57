"""Acts found by cadastral number: an index on permits.act_parcel(cadastral_number).

The location check and the parcel status list the acts of the parcels they answer for
by cadastral number (the register's own key, which outlives parcel versions); without an
index each answer scanned every link of the register.

Revision ID: 0008_act_parcel_number
Revises: 0007_parcel_versions
"""

from __future__ import annotations

from alembic import op

revision = "0008_act_parcel_number"
down_revision = "0007_parcel_versions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_act_parcel_cadastral_number"),
        "act_parcel",
        ["cadastral_number"],
        schema="permits",
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_act_parcel_cadastral_number"), "act_parcel", schema="permits")
