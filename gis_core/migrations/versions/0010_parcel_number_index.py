"""Parcels are found by cadastral number through one index, the pattern index.

Revision ID: 0010_parcel_number_index
Revises: 0009_parcel_sparse_keys
Create Date: 2026-11-22

0001 made two B-trees on the cadastral number: ``ix_parcel_number_current``
(uat_siruta, cadastral_number) of the current versions, and ``ix_parcel_number_pattern``
(cadastral_number text_pattern_ops) of all of them, which serves equality as well as
prefix search. Every lookup by number (the location check with its custom and generic
plans, the history of a missing number, map search, parcel maps and extracts, permit
linking, the import's merge and version check) was found served by the pattern index
with the current index dropped, in the same time (EXPLAIN ANALYZE on a million parcels):
a number has a handful of versions at most, filtered by UAT and ``valid_to``. The
current index cost a second insertion for every new version and ~0.6 s of every
million-parcel first import, which rebuilds the parcel indexes.

One query loses it: whether a UAT holds any current version (``importers.merge``),
asked once per import, becomes a scan that stops at the first current parcel; it reads
the whole table only when the UAT has none and the table holds other UATs' parcels.
"""

from __future__ import annotations

from alembic import op

revision = "0010_parcel_number_index"
down_revision = "0009_parcel_sparse_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS cadastre.ix_parcel_number_current")


def downgrade() -> None:
    op.execute(
        "CREATE INDEX ix_parcel_number_current ON cadastre.parcel (uat_siruta, cadastral_number) "
        "WHERE valid_to IS NULL"
    )
