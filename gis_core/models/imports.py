"""The raster layer registry filled by ``urbangis import raster`` (schema ``core``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gis_core.models.base import Base, storage_geometry


class RasterLayer(Base):
    """One version of a published raster: its Cloud-Optimized GeoTIFF and grid.

    ``valid_to`` NULL marks the current file of a layer name; older files are kept so
    maps "as of" a date can still be drawn.
    """

    __tablename__ = "raster_layer"
    __table_args__ = {"schema": "core"}

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text, nullable=False)
    title: Mapped[str | None] = mapped_column(sa.Text)
    path: Mapped[str] = mapped_column(sa.Text, nullable=False)
    source: Mapped[str] = mapped_column(sa.Text, nullable=False)
    source_sha256: Mapped[str] = mapped_column(sa.Text, nullable=False)
    srid: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    width: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    height: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    band_count: Mapped[int] = mapped_column(sa.SmallInteger, nullable=False)
    data_type: Mapped[str] = mapped_column(sa.Text, nullable=False)
    resolution: Mapped[list[float]] = mapped_column(ARRAY(sa.Float), nullable=False)
    nodata: Mapped[float | None] = mapped_column(sa.Float)
    overviews: Mapped[list[int]] = mapped_column(ARRAY(sa.Integer), server_default="{}")
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, server_default="{}")
    extent: Mapped[object] = storage_geometry("POLYGON", nullable=False)
    valid_from: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    )
    valid_to: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    import_run_id: Mapped[int | None] = mapped_column(
        sa.BigInteger, sa.ForeignKey("core.import_run.id")
    )
