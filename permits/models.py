"""Acts (CU, AC, AD), their links to parcels, the review queue and applicants.

Schema ``permits`` holds what may be published (number, date, type, purpose, status,
validity, the imobile); the applicant, a person, lives in ``protected.act_applicant``
which only the clerk and admin roles read. Tables are created by the migration
``0004_permits`` (the acts' ETRS89 twins by ``0006_act_twins``); these classes describe
them for queries and autogenerate.

``version`` is the optimistic lock: every change is ``UPDATE ... WHERE version = :seen``
and bumps it, so a clerk saving a stale copy gets a conflict instead of overwriting.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gis_core.models.base import Base, etrs89_geometry, storage_geometry

SCHEMA = "permits"
KINDS = ("CU", "AC", "AD")
STATUSES = ("requested", "issued", "extended", "expired", "cancelled", "completed")
LINK_METHODS = ("number", "spatial", "address", "manual")
LINK_STATES = ("pending", "linked", "review", "unmatched")
QUEUE_STATES = ("open", "resolved", "dismissed")


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in values)


class Act(Base):
    """An urbanism certificate or a building / demolition permit as registered."""

    __tablename__ = "act"
    __table_args__ = (
        sa.CheckConstraint(f"kind IN ({_in(KINDS)})", name="kind"),
        sa.CheckConstraint(f"status IN ({_in(STATUSES)})", name="status"),
        sa.CheckConstraint(f"link_state IN ({_in(LINK_STATES)})", name="link_state"),
        sa.CheckConstraint("version > 0", name="version"),
        sa.UniqueConstraint("uat_siruta", "kind", "register_key"),
        {"schema": SCHEMA},
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    uat_siruta: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    kind: Mapped[str] = mapped_column(sa.Text, nullable=False)
    number: Mapped[str] = mapped_column(sa.Text, nullable=False)
    issued_on: Mapped[date | None] = mapped_column(sa.Date, index=True)
    register_key: Mapped[str] = mapped_column(sa.Text, nullable=False)
    status: Mapped[str] = mapped_column(sa.Text, nullable=False, server_default="issued")
    requested_on: Mapped[date | None] = mapped_column(sa.Date)
    purpose: Mapped[str | None] = mapped_column(sa.Text)
    address_text: Mapped[str | None] = mapped_column(sa.Text)
    cited_numbers: Mapped[str | None] = mapped_column(sa.Text)
    land_book_text: Mapped[str | None] = mapped_column(sa.Text)
    validity_months: Mapped[int | None] = mapped_column(sa.SmallInteger)
    valid_until: Mapped[date | None] = mapped_column(sa.Date)
    extension_months: Mapped[int | None] = mapped_column(sa.SmallInteger)
    extension_requested_on: Mapped[date | None] = mapped_column(sa.Date)
    extended_until: Mapped[date | None] = mapped_column(sa.Date)
    basis_act_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("permits.act.id", ondelete="SET NULL"), index=True
    )
    proposed_footprint_area: Mapped[Decimal | None] = mapped_column(sa.Numeric(12, 2))
    proposed_floor_area: Mapped[Decimal | None] = mapped_column(sa.Numeric(12, 2))
    proposed_height_m: Mapped[Decimal | None] = mapped_column(sa.Numeric(6, 2))
    proposed_levels: Mapped[int | None] = mapped_column(sa.SmallInteger)
    link_state: Mapped[str] = mapped_column(sa.Text, nullable=False, server_default="pending")
    source_ref: Mapped[str | None] = mapped_column(sa.Text)
    import_run_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("core.import_run.id"), index=True
    )
    version: Mapped[int] = mapped_column(sa.Integer, nullable=False, server_default="1")
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    )
    # The site as registered: a point (register coordinates) and/or the site plan polygon.
    location: Mapped[object] = storage_geometry("POINT")
    footprint: Mapped[object] = storage_geometry("MULTIPOLYGON")
    # What the public layer draws: the footprint, else the linked parcels (set by linking).
    geom: Mapped[object] = storage_geometry("MULTIPOLYGON")
    # Their ETRS89 twins (``gis_core.twins``, migration 0006): lon/lat output reads these.
    location_etrs89: Mapped[object] = etrs89_geometry("POINT")
    footprint_etrs89: Mapped[object] = etrs89_geometry("MULTIPOLYGON")
    geom_etrs89: Mapped[object] = etrs89_geometry("MULTIPOLYGON")


class ActParcel(Base):
    """One imobil an act is about, how the link was found and how sure it is."""

    __tablename__ = "act_parcel"
    __table_args__ = (
        sa.CheckConstraint(f"method IN ({_in(LINK_METHODS)})", name="method"),
        sa.CheckConstraint("confidence BETWEEN 0 AND 1", name="confidence"),
        sa.UniqueConstraint("act_id", "parcel_id"),
        {"schema": SCHEMA},
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    act_id: Mapped[int] = mapped_column(
        sa.ForeignKey("permits.act.id", ondelete="CASCADE"), nullable=False, index=True
    )
    parcel_id: Mapped[int] = mapped_column(
        sa.ForeignKey("cadastre.parcel.id", ondelete="CASCADE"), nullable=False, index=True
    )
    cadastral_number: Mapped[str] = mapped_column(sa.Text, nullable=False, index=True)
    is_primary: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, server_default=sa.false())
    method: Mapped[str] = mapped_column(sa.Text, nullable=False)
    confidence: Mapped[Decimal] = mapped_column(sa.Numeric(3, 2), nullable=False)
    detail: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    )


class ReviewItem(Base):
    """An act the linker could not settle: a clerk picks the parcels or dismisses it."""

    __tablename__ = "review_item"
    __table_args__ = (
        sa.CheckConstraint(f"state IN ({_in(QUEUE_STATES)})", name="state"),
        sa.Index(
            "uq_review_item_open_act",
            "act_id",
            unique=True,
            postgresql_where=sa.text("state = 'open'"),
        ),
        {"schema": SCHEMA},
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    act_id: Mapped[int] = mapped_column(
        sa.ForeignKey("permits.act.id", ondelete="CASCADE"), nullable=False, index=True
    )
    reason: Mapped[str] = mapped_column(sa.Text, nullable=False)
    detail: Mapped[str] = mapped_column(sa.Text, nullable=False)
    candidates: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, nullable=False, server_default="[]"
    )
    state: Mapped[str] = mapped_column(sa.Text, nullable=False, server_default="open")
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    )
    resolved_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    resolved_by: Mapped[str | None] = mapped_column(sa.Text)
    resolution: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class ActApplicant(Base):
    """The applicant of an act: personal data, clerk and admin roles only."""

    __tablename__ = "act_applicant"
    __table_args__ = (
        sa.CheckConstraint("kind IN ('natural', 'legal')", name="kind"),
        {"schema": "protected"},
    )

    act_id: Mapped[int] = mapped_column(
        sa.ForeignKey("permits.act.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(sa.Text, nullable=False, server_default="natural")
    name: Mapped[str] = mapped_column(sa.Text, nullable=False)
    national_id: Mapped[str | None] = mapped_column(sa.Text)
    address_text: Mapped[str | None] = mapped_column(sa.Text)
    phone: Mapped[str | None] = mapped_column(sa.Text)
    email: Mapped[str | None] = mapped_column(sa.Text)
