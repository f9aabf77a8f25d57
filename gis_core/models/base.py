"""Declarative base, naming convention and the column groups tables share."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

# Geometries of the ETRS89 twin columns: computed at write time with TransDatRO so that
# geographic output (GeoJSON, tiles, the web map) agrees with Stereo 70 to the centimetre.
ETRS89_SRID = 4258


class Base(DeclarativeBase):
    metadata = metadata


def storage_geometry(geometry_type: str, *, nullable: bool = True) -> Mapped[object]:
    """A geometry column in the deployment's storage SRID (typmod set by the migration)."""
    return mapped_column(Geometry(geometry_type, srid=-1, spatial_index=False), nullable=nullable)


def etrs89_geometry(geometry_type: str) -> Mapped[object]:
    """The ETRS89 twin of a storage geometry."""
    return mapped_column(
        Geometry(geometry_type, srid=ETRS89_SRID, spatial_index=False), nullable=True
    )


class Versioned:
    """Rows that are never overwritten: a re-import closes a version and adds a new one.

    ``valid_from``/``valid_to`` bound the time the row described reality in the
    platform's records; ``valid_to`` NULL marks the current version.
    """

    valid_from: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    )
    valid_to: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    import_run_id: Mapped[int | None] = mapped_column(
        sa.BigInteger, sa.ForeignKey("core.import_run.id"), index=True
    )
