"""Imobile (parcels), their use-category sub-parcels, buildings, streets and addresses."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from gis_core.models.base import Base, Versioned, etrs89_geometry, storage_geometry

SCHEMA = {"schema": "cadastre"}


class Street(Base):
    """A named street of the UAT (the gazetteer for addresses and search)."""

    __tablename__ = "street"
    __table_args__ = (sa.UniqueConstraint("uat_siruta", "name"), SCHEMA)

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    uat_siruta: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    street_type: Mapped[str | None] = mapped_column(sa.Text)
    name: Mapped[str] = mapped_column(sa.Text, nullable=False)
    search_text: Mapped[str] = mapped_column(sa.Text, nullable=False)
    source_id: Mapped[str | None] = mapped_column(sa.Text)
    geom: Mapped[object] = storage_geometry("MULTILINESTRING")
    geom_etrs89: Mapped[object] = etrs89_geometry("MULTILINESTRING")


class Address(Base):
    """A postal address; ``search_text`` is lower-case without diacritics (ș/ş, ț/ţ alike)."""

    __tablename__ = "address"
    __table_args__ = SCHEMA

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    uat_siruta: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    locality_siruta: Mapped[int | None] = mapped_column(sa.Integer)
    street_id: Mapped[int | None] = mapped_column(sa.ForeignKey("cadastre.street.id"), index=True)
    street_type: Mapped[str | None] = mapped_column(sa.Text)
    street_name: Mapped[str | None] = mapped_column(sa.Text)
    number: Mapped[str | None] = mapped_column(sa.Text)
    block: Mapped[str | None] = mapped_column(sa.Text)
    entrance: Mapped[str | None] = mapped_column(sa.Text)
    floor: Mapped[str | None] = mapped_column(sa.Text)
    apartment: Mapped[str | None] = mapped_column(sa.Text)
    postal_code: Mapped[str | None] = mapped_column(sa.Text)
    full_text: Mapped[str] = mapped_column(sa.Text, nullable=False)
    search_text: Mapped[str] = mapped_column(sa.Text, nullable=False)
    geom: Mapped[object] = storage_geometry("POINT")
    geom_etrs89: Mapped[object] = etrs89_geometry("POINT")


class Parcel(Versioned, Base):
    """An imobil: the unit permits are issued for, keyed by its cadastral number."""

    __tablename__ = "parcel"
    # Sparse keys: their indexes hold only the parcels that have one (migration 0009).
    __table_args__ = (
        sa.Index(
            "ix_parcel_e2_identifier", "e2_identifier", postgresql_where="e2_identifier IS NOT NULL"
        ),
        sa.Index("ix_parcel_address_id", "address_id", postgresql_where="address_id IS NOT NULL"),
        SCHEMA,
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    uat_siruta: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    cadastral_number: Mapped[str] = mapped_column(sa.Text, nullable=False)
    land_book_number: Mapped[str | None] = mapped_column(sa.Text)
    e2_identifier: Mapped[str | None] = mapped_column(sa.Text)
    cad_sector: Mapped[str | None] = mapped_column(sa.Text)
    topo_number: Mapped[str | None] = mapped_column(sa.Text)
    measured_area: Mapped[Decimal | None] = mapped_column(sa.Numeric(14, 2))
    legal_area: Mapped[Decimal | None] = mapped_column(sa.Numeric(14, 2))
    use_category: Mapped[str | None] = mapped_column(sa.Text)
    intravilan: Mapped[bool | None] = mapped_column(sa.Boolean)
    address_id: Mapped[int | None] = mapped_column(sa.ForeignKey("cadastre.address.id"))
    address_text: Mapped[str | None] = mapped_column(sa.Text)
    notes: Mapped[str | None] = mapped_column(sa.Text)
    geom: Mapped[object] = storage_geometry("MULTIPOLYGON")
    geom_etrs89: Mapped[object] = etrs89_geometry("MULTIPOLYGON")


class ParcelUse(Base):
    """A use-category sub-parcel of one parcel version (CGXML ``Parcel``)."""

    __tablename__ = "parcel_use"
    __table_args__ = SCHEMA

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    parcel_id: Mapped[int] = mapped_column(
        sa.ForeignKey("cadastre.parcel.id", ondelete="CASCADE"), nullable=False, index=True
    )
    number: Mapped[int | None] = mapped_column(sa.Integer)
    use_category: Mapped[str] = mapped_column(sa.Text, nullable=False)
    measured_area: Mapped[Decimal | None] = mapped_column(sa.Numeric(14, 2))
    intravilan: Mapped[bool | None] = mapped_column(sa.Boolean)
    geom: Mapped[object] = storage_geometry("MULTIPOLYGON")


class Building(Versioned, Base):
    """A building (construcție) on an imobil, e.g. C1 of cadastral number 228603."""

    __tablename__ = "building"
    __table_args__ = SCHEMA

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    uat_siruta: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    cadastral_number: Mapped[str | None] = mapped_column(sa.Text, index=True)
    building_number: Mapped[str | None] = mapped_column(sa.Text)
    e2_identifier: Mapped[str | None] = mapped_column(sa.Text)
    footprint_area: Mapped[Decimal | None] = mapped_column(sa.Numeric(14, 2))
    floor_area: Mapped[Decimal | None] = mapped_column(sa.Numeric(14, 2))
    levels: Mapped[int | None] = mapped_column(sa.SmallInteger)
    height_m: Mapped[Decimal | None] = mapped_column(sa.Numeric(6, 2))
    destination: Mapped[str | None] = mapped_column(sa.Text)
    is_legal: Mapped[bool | None] = mapped_column(sa.Boolean)
    geom: Mapped[object] = storage_geometry("MULTIPOLYGON")
    geom_etrs89: Mapped[object] = etrs89_geometry("MULTIPOLYGON")
