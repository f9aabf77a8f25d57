"""Spatial units, indicator inputs, runs and results (schema ``analysis``).

An indicator run records the versions of everything it read (``input_versions``), so
a report made from its results can be recomputed identically; its result rows carry
the unit geometries so each run is a self-contained layer the catalog publishes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gis_core.models.base import Base, etrs89_geometry, storage_geometry

SCHEMA = {"schema": "analysis"}
INPUT_KINDS = ("park", "school", "transit_stop", "green", "population")


def _created_at() -> Mapped[datetime]:
    return mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


class UnitSet(Base):
    """An imported boundary layer used as spatial units (neighbourhoods, districts...)."""

    __tablename__ = "unit_set"
    __table_args__ = SCHEMA

    name: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    title: Mapped[str | None] = mapped_column(sa.Text)
    source: Mapped[str] = mapped_column(sa.Text, nullable=False)
    source_sha256: Mapped[str] = mapped_column(sa.Text, nullable=False)
    key_field: Mapped[str | None] = mapped_column(sa.Text)
    name_field: Mapped[str | None] = mapped_column(sa.Text)
    feature_count: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    version: Mapped[int] = mapped_column(sa.Integer, server_default="1", nullable=False)
    created_at: Mapped[datetime] = _created_at()


class Unit(Base):
    """One polygon of a unit set, keyed by the text the source gives it."""

    __tablename__ = "unit"
    __table_args__ = (sa.UniqueConstraint("unit_set", "unit_key"), SCHEMA)

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    unit_set: Mapped[str] = mapped_column(
        sa.ForeignKey("analysis.unit_set.name", ondelete="CASCADE"), nullable=False
    )
    unit_key: Mapped[str] = mapped_column(sa.Text, nullable=False)
    name: Mapped[str | None] = mapped_column(sa.Text)
    geom: Mapped[object] = storage_geometry("MULTIPOLYGON")


class InputLayer(Base):
    """A loaded input layer (parks, schools, transit stops, green areas, population)."""

    __tablename__ = "input_layer"
    __table_args__ = SCHEMA

    name: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.Text, nullable=False)
    source: Mapped[str] = mapped_column(sa.Text, nullable=False)
    source_sha256: Mapped[str] = mapped_column(sa.Text, nullable=False)
    value_field: Mapped[str | None] = mapped_column(sa.Text)
    feature_count: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    version: Mapped[int] = mapped_column(sa.Integer, server_default="1", nullable=False)
    created_at: Mapped[datetime] = _created_at()


class InputFeature(Base):
    """A feature of an input layer; ``value`` is e.g. the residents of a population point."""

    __tablename__ = "input_feature"
    __table_args__ = SCHEMA

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    input_layer: Mapped[str] = mapped_column(
        sa.ForeignKey("analysis.input_layer.name", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str | None] = mapped_column(sa.Text)
    value: Mapped[float | None] = mapped_column(sa.Float)
    geom: Mapped[object] = storage_geometry("GEOMETRY", nullable=False)


class Population(Base):
    """Residents of one spatial unit in one year (an input table)."""

    __tablename__ = "population"
    __table_args__ = SCHEMA

    unit_set: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    unit_key: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    year: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    population: Mapped[float] = mapped_column(sa.Float, nullable=False)
    source: Mapped[str] = mapped_column(sa.Text, nullable=False)
    source_sha256: Mapped[str] = mapped_column(sa.Text, nullable=False)
    created_at: Mapped[datetime] = _created_at()


class IndicatorRun(Base):
    """One computation of one indicator on one set of units, with its inputs' versions."""

    __tablename__ = "indicator_run"
    __table_args__ = SCHEMA

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    indicator: Mapped[str] = mapped_column(sa.Text, nullable=False)
    units: Mapped[str] = mapped_column(sa.Text, nullable=False)
    layer_id: Mapped[str] = mapped_column(sa.Text, nullable=False)
    year: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    as_of: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    engine: Mapped[str] = mapped_column(sa.Text, server_default="postgis", nullable=False)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    input_versions: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    summary: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    is_current: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true())
    computed_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    )
    actor: Mapped[str | None] = mapped_column(sa.Text)


class IndicatorResult(Base):
    """The value of a run for one unit, with the unit's geometry (a choropleth feature)."""

    __tablename__ = "indicator_result"
    __table_args__ = (sa.UniqueConstraint("run_id", "unit_key"), SCHEMA)

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    run_id: Mapped[int] = mapped_column(
        sa.ForeignKey("analysis.indicator_run.id", ondelete="CASCADE"), nullable=False
    )
    unit_key: Mapped[str] = mapped_column(sa.Text, nullable=False)
    unit_name: Mapped[str | None] = mapped_column(sa.Text)
    value: Mapped[float | None] = mapped_column(sa.Float)
    numerator: Mapped[float | None] = mapped_column(sa.Float)
    denominator: Mapped[float | None] = mapped_column(sa.Float)
    objects: Mapped[int | None] = mapped_column(sa.BigInteger)
    geom: Mapped[object] = storage_geometry("MULTIPOLYGON")
    geom_etrs89: Mapped[object] = etrs89_geometry("MULTIPOLYGON")
