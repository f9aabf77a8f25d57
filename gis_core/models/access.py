"""Who may call the platform: staff accounts and API keys (schema ``core``).

Only hashes are stored: a scrypt/pbkdf2 password hash for staff, the SHA-256 of an API
key's secret. The role column decides which layers, fields and rows a caller sees.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from gis_core.models.base import Base

ROLES = ("public", "portal", "clerk", "planner", "admin")
_ROLE_CHECK = "role IN ('public', 'portal', 'clerk', 'planner', 'admin')"


class StaffUser(Base):
    """A clerk, planner or administrator who signs in with a login and password."""

    __tablename__ = "staff_user"
    __table_args__ = (sa.CheckConstraint(_ROLE_CHECK, name="role"), {"schema": "core"})

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    login: Mapped[str] = mapped_column(sa.Text, unique=True, nullable=False)
    password_hash: Mapped[str] = mapped_column(sa.Text, nullable=False)
    full_name: Mapped[str | None] = mapped_column(sa.Text)
    role: Mapped[str] = mapped_column(sa.Text, nullable=False)
    active: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true(), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    )


class ApiKey(Base):
    """A machine client's key: ``<key_id>.<secret>``; only the secret's SHA-256 is kept."""

    __tablename__ = "api_key"
    __table_args__ = (sa.CheckConstraint(_ROLE_CHECK, name="role"), {"schema": "core"})

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    key_id: Mapped[str] = mapped_column(sa.Text, unique=True, nullable=False)
    secret_sha256: Mapped[str] = mapped_column(sa.Text, nullable=False)
    name: Mapped[str] = mapped_column(sa.Text, nullable=False)
    role: Mapped[str] = mapped_column(sa.Text, nullable=False)
    rate_limit_per_minute: Mapped[int] = mapped_column(
        sa.Integer, server_default="600", nullable=False
    )
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    )
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))


class DataVersion(Base):
    """A counter per published table, bumped by a trigger on every writing statement.

    Caches (the layer catalog's extents, vector tiles) key on it, so an import or an edit
    invalidates them at once without anyone remembering to do so.
    """

    __tablename__ = "data_version"
    __table_args__ = {"schema": "core"}

    table_name: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    version: Mapped[int] = mapped_column(sa.BigInteger, server_default="0", nullable=False)
    changed_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    )
