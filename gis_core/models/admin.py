"""Administrative units (UAT, localities) and the intravilan (schema ``core``)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from gis_core.models.base import Base, Versioned, etrs89_geometry, storage_geometry


class AdminUnit(Base):
    """A UAT or locality identified by its SIRUTA code."""

    __tablename__ = "admin_unit"
    __table_args__ = (
        sa.CheckConstraint("level IN ('county', 'uat', 'locality')", name="level"),
        {"schema": "core"},
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    siruta: Mapped[int] = mapped_column(sa.Integer, unique=True, nullable=False)
    parent_siruta: Mapped[int | None] = mapped_column(sa.Integer)
    name: Mapped[str] = mapped_column(sa.Text, nullable=False)
    level: Mapped[str] = mapped_column(sa.Text, nullable=False)
    county_code: Mapped[int | None] = mapped_column(sa.Integer)
    source: Mapped[str | None] = mapped_column(sa.Text)
    geom: Mapped[object] = storage_geometry("MULTIPOLYGON")
    geom_etrs89: Mapped[object] = etrs89_geometry("MULTIPOLYGON")


class Intravilan(Versioned, Base):
    """The built-up area boundary of a UAT (building permits are, as a rule, inside it)."""

    __tablename__ = "intravilan"
    __table_args__ = {"schema": "core"}

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    uat_siruta: Mapped[int] = mapped_column(sa.Integer, nullable=False, index=True)
    name: Mapped[str | None] = mapped_column(sa.Text)
    geom: Mapped[object] = storage_geometry("MULTIPOLYGON", nullable=False)
    geom_etrs89: Mapped[object] = etrs89_geometry("MULTIPOLYGON")
