"""Parcel indexes on sparse keys hold only the parcels that have the key.

Revision ID: 0009_parcel_sparse_keys
Revises: 0008_act_parcel_number
Create Date: 2026-11-22

``cadastre.parcel.address_id`` (set by CGXML imports only) and ``e2_identifier`` (eTerra's
id, absent from most vector files) are NULL for most parcels. Every lookup by them is an
equality (a join to the addresses, an eTerra id match), which never finds a NULL, so
an index of the non-NULL rows serves the same queries. Such an index costs nothing to
keep for a parcel without the key, and a big first import, which rebuilds the parcel
indexes after loading, no longer sorts a million NULLs for each of them.
"""

from __future__ import annotations

from alembic import op

revision = "0009_parcel_sparse_keys"
down_revision = "0008_act_parcel_number"
branch_labels = None
depends_on = None

SPARSE = ("address_id", "e2_identifier")


def upgrade() -> None:
    for column in SPARSE:
        op.drop_index(f"ix_parcel_{column}", "parcel", schema="cadastre")
        op.create_index(
            f"ix_parcel_{column}",
            "parcel",
            [column],
            schema="cadastre",
            postgresql_where=f"{column} IS NOT NULL",
        )


def downgrade() -> None:
    for column in SPARSE:
        op.drop_index(f"ix_parcel_{column}", "parcel", schema="cadastre")
        op.create_index(f"ix_parcel_{column}", "parcel", [column], schema="cadastre")
