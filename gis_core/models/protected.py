"""Personal data (schema ``protected``): readable only by the clerk and admin roles.

Nothing public (API answers, tiles, map images, exports) may read these tables; the
layer catalog never lists them.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from gis_core.models.base import Base

SCHEMA = {"schema": "protected"}


class Person(Base):
    """A natural or legal person: owner, applicant."""

    __tablename__ = "person"
    __table_args__ = (
        sa.CheckConstraint("kind IN ('natural', 'legal')", name="kind"),
        SCHEMA,
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.Text, server_default="natural", nullable=False)
    name: Mapped[str] = mapped_column(sa.Text, nullable=False)
    national_id: Mapped[str | None] = mapped_column(sa.Text)  # CNP or CUI
    id_document: Mapped[str | None] = mapped_column(sa.Text)
    phone: Mapped[str | None] = mapped_column(sa.Text)
    email: Mapped[str | None] = mapped_column(sa.Text)
    address_text: Mapped[str | None] = mapped_column(sa.Text)
    import_run_id: Mapped[int | None] = mapped_column(sa.ForeignKey("core.import_run.id"))
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    )


class ParcelOwner(Base):
    """An owner registration on an imobil (from CGXML, only with ``--with-persons``)."""

    __tablename__ = "parcel_owner"
    __table_args__ = SCHEMA

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    parcel_id: Mapped[int] = mapped_column(
        sa.ForeignKey("cadastre.parcel.id", ondelete="CASCADE"), nullable=False, index=True
    )
    person_id: Mapped[int] = mapped_column(
        sa.ForeignKey("protected.person.id", ondelete="CASCADE"), nullable=False, index=True
    )
    share: Mapped[str | None] = mapped_column(sa.Text)
    right_kind: Mapped[str | None] = mapped_column(sa.Text)
