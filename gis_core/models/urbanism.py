"""Urban plans (PUG/PUZ/PUD), their UTR regulations, zones and restrictions."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from gis_core.models.base import Base, Versioned, etrs89_geometry, storage_geometry

SCHEMA = {"schema": "urbanism"}
PLAN_TYPES = ("PUG", "PUZ", "PUD")
PLAN_STATUSES = ("draft", "approved", "suspended", "annulled", "expired")
RESTRICTION_KINDS = (
    "heritage",
    "protected_area",
    "flood",
    "easement",
    "airport",
    "natura2000",
    "landslide",
    "other",
)


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in values)


class Plan(Base):
    """An approved (or draft) urban plan with its council decision and legal validity."""

    __tablename__ = "plan"
    __table_args__ = (
        sa.CheckConstraint(f"plan_type IN ({_in(PLAN_TYPES)})", name="plan_type"),
        sa.CheckConstraint(f"status IN ({_in(PLAN_STATUSES)})", name="status"),
        sa.CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="validity"),
        SCHEMA,
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    uat_siruta: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    plan_type: Mapped[str] = mapped_column(sa.Text, nullable=False)
    title: Mapped[str] = mapped_column(sa.Text, nullable=False, unique=True)
    hcl_number: Mapped[str | None] = mapped_column(sa.Text)
    hcl_date: Mapped[date | None] = mapped_column(sa.Date)
    valid_from: Mapped[date | None] = mapped_column(sa.Date)
    valid_to: Mapped[date | None] = mapped_column(sa.Date)
    status: Mapped[str] = mapped_column(sa.Text, server_default="approved", nullable=False)
    description: Mapped[str | None] = mapped_column(sa.Text)
    import_run_id: Mapped[int | None] = mapped_column(sa.ForeignKey("core.import_run.id"))
    geom: Mapped[object] = storage_geometry("MULTIPOLYGON")


class Regulation(Base):
    """The rules of one UTR in one plan (RLU): uses, POT, CUT, heights, plot minima."""

    __tablename__ = "regulation"
    __table_args__ = (sa.UniqueConstraint("plan_id", "utr_code"), SCHEMA)

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    plan_id: Mapped[int] = mapped_column(
        sa.ForeignKey("urbanism.plan.id", ondelete="CASCADE"), nullable=False
    )
    utr_code: Mapped[str] = mapped_column(sa.Text, nullable=False)
    name: Mapped[str | None] = mapped_column(sa.Text)
    function: Mapped[str | None] = mapped_column(sa.Text)
    allowed_uses: Mapped[list[str]] = mapped_column(ARRAY(sa.Text), server_default="{}")
    conditional_uses: Mapped[list[str]] = mapped_column(ARRAY(sa.Text), server_default="{}")
    forbidden_uses: Mapped[list[str]] = mapped_column(ARRAY(sa.Text), server_default="{}")
    pot_max: Mapped[Decimal | None] = mapped_column(sa.Numeric(5, 2))
    cut_max: Mapped[Decimal | None] = mapped_column(sa.Numeric(5, 2))
    height_max_m: Mapped[Decimal | None] = mapped_column(sa.Numeric(6, 2))
    height_regime: Mapped[str | None] = mapped_column(sa.Text)
    min_plot_area: Mapped[Decimal | None] = mapped_column(sa.Numeric(12, 2))
    min_frontage: Mapped[Decimal | None] = mapped_column(sa.Numeric(8, 2))
    rules_text: Mapped[str | None] = mapped_column(sa.Text)


class Zone(Versioned, Base):
    """A zone polygon of a plan carrying one UTR code (its rules: ``Regulation``)."""

    __tablename__ = "zone"
    __table_args__ = SCHEMA

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    plan_id: Mapped[int] = mapped_column(
        sa.ForeignKey("urbanism.plan.id", ondelete="CASCADE"), nullable=False, index=True
    )
    regulation_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("urbanism.regulation.id"), index=True
    )
    utr_code: Mapped[str] = mapped_column(sa.Text, nullable=False)
    function: Mapped[str | None] = mapped_column(sa.Text)
    geom: Mapped[object] = storage_geometry("MULTIPOLYGON", nullable=False)
    geom_etrs89: Mapped[object] = etrs89_geometry("MULTIPOLYGON")


class Restriction(Versioned, Base):
    """A legal restriction overlaying the zones (heritage, flood, easement, ...)."""

    __tablename__ = "restriction"
    __table_args__ = (
        sa.CheckConstraint(f"kind IN ({_in(RESTRICTION_KINDS)})", name="kind"),
        SCHEMA,
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    uat_siruta: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    kind: Mapped[str] = mapped_column(sa.Text, nullable=False)
    name: Mapped[str] = mapped_column(sa.Text, nullable=False)
    legal_source: Mapped[str | None] = mapped_column(sa.Text)
    plan_id: Mapped[int | None] = mapped_column(sa.ForeignKey("urbanism.plan.id"))
    description: Mapped[str | None] = mapped_column(sa.Text)
    geom: Mapped[object] = storage_geometry("MULTIPOLYGON", nullable=False)
    geom_etrs89: Mapped[object] = etrs89_geometry("MULTIPOLYGON")
