"""Deployment facts, import runs and the audit log (schema ``core``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gis_core.models.base import Base

IMPORT_STATUSES = ("running", "succeeded", "failed", "dry_run")


class Deployment(Base):
    """Facts fixed when the database was created, e.g. the storage SRID."""

    __tablename__ = "deployment"
    __table_args__ = {"schema": "core"}

    key: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    value: Mapped[str] = mapped_column(sa.Text, nullable=False)


class ImportRun(Base):
    """One import (or demo load): what came in, what happened, the full report."""

    __tablename__ = "import_run"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed', 'dry_run')", name="status"
        ),
        {"schema": "core"},
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.Text, nullable=False)
    source: Mapped[str] = mapped_column(sa.Text, nullable=False)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}", nullable=False)
    status: Mapped[str] = mapped_column(sa.Text, server_default="running", nullable=False)
    started_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    )
    finished_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}", nullable=False)
    report: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}", nullable=False)
    actor: Mapped[str | None] = mapped_column(sa.Text)


class AuditLog(Base):
    """Who changed what, when, with the row before and after."""

    __tablename__ = "audit_log"
    __table_args__ = (
        sa.CheckConstraint("action IN ('insert', 'update', 'delete')", name="action"),
        sa.Index("ix_audit_log_table_row", "table_name", "row_id"),
        {"schema": "core"},
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False, index=True
    )
    actor: Mapped[str] = mapped_column(sa.Text, nullable=False)
    action: Mapped[str] = mapped_column(sa.Text, nullable=False)
    table_name: Mapped[str] = mapped_column(sa.Text, nullable=False)
    row_id: Mapped[str] = mapped_column(sa.Text, nullable=False)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    reason: Mapped[str | None] = mapped_column(sa.Text)
