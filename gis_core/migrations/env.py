"""Alembic environment: the one place that imports every package's models.

Run through ``gis_core.migrate`` (``urbangis db upgrade``), which hands over an open
connection and the storage SRID in ``config.attributes``.
"""

from __future__ import annotations

from alembic import context

from gis_core.models import metadata
from permits import models as permits_models  # noqa: F401  (registers the permits tables)

config = context.config
connection = config.attributes["connection"]

context.configure(
    connection=connection,
    target_metadata=metadata,
    include_schemas=True,
    version_table_schema="core",
    transaction_per_migration=False,
)

with context.begin_transaction():
    context.run_migrations()
