"""Schema migrations: ``urbangis db upgrade`` and ``urbangis db current``.

The storage SRID is fixed by the first migration and recorded in ``core.deployment``;
later runs refuse settings that disagree, because every geometry column carries it.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from gis_core.db import ensure_extensions
from gis_core.errors import DatabaseError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE_SCHEMA = "core"


def alembic_config(conn: Connection, storage_srid: int) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    config.attributes["storage_srid"] = storage_srid
    return config


def upgrade(engine: Engine, storage_srid: int, revision: str = "head") -> str | None:
    """Bring the schema to ``revision`` in one transaction; returns the new revision."""
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('urbangis-migrate'))"))
        ensure_extensions(conn)
        conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {VERSION_TABLE_SCHEMA}"))
        check_storage_srid(conn, storage_srid)
        command.upgrade(alembic_config(conn, storage_srid), revision)
        return current_revision(conn)


def downgrade(engine: Engine, storage_srid: int, revision: str) -> str | None:
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn, storage_srid), revision)
        return current_revision(conn)


def current_revision(conn: Connection) -> str | None:
    context = MigrationContext.configure(conn, opts={"version_table_schema": VERSION_TABLE_SCHEMA})
    return context.get_current_revision()


def head_revision() -> str | None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def recorded_storage_srid(conn: Connection) -> int | None:
    """The SRID the database was created with, or None before the first migration."""
    exists = conn.execute(sa.text("SELECT to_regclass('core.deployment')")).scalar()
    if exists is None:
        return None
    value = conn.execute(
        sa.text("SELECT value FROM core.deployment WHERE key = 'storage_srid'")
    ).scalar()
    return int(value) if value is not None else None


def check_storage_srid(conn: Connection, storage_srid: int) -> None:
    recorded = recorded_storage_srid(conn)
    if recorded is not None and recorded != storage_srid:
        raise DatabaseError(
            f"URBANGIS_STORAGE_SRID is {storage_srid} but this database stores geometries in "
            f"EPSG:{recorded}; set it back to {recorded} or use another database"
        )
