"""The spatial model of the platform, one module per concern.

The tables are created by the Alembic migrations (``urbangis db upgrade``), never by
``create_all``; these classes describe them for queries. Geometry columns are declared
without a SRID because the storage SRID is a deployment setting fixed by the first
migration (see ``core.deployment``).
"""

from gis_core.models.access import ApiKey, DataVersion, StaffUser
from gis_core.models.admin import AdminUnit, Intravilan
from gis_core.models.base import Base, metadata
from gis_core.models.cadastre import Address, Building, Parcel, ParcelUse, Street
from gis_core.models.imports import RasterLayer
from gis_core.models.indicators import (
    IndicatorResult,
    IndicatorRun,
    InputFeature,
    InputLayer,
    Population,
    Unit,
    UnitSet,
)
from gis_core.models.protected import ParcelOwner, Person
from gis_core.models.records import AuditLog, Deployment, ImportRun
from gis_core.models.urbanism import Plan, Regulation, Restriction, Zone

__all__ = [
    "Address",
    "AdminUnit",
    "ApiKey",
    "AuditLog",
    "Base",
    "Building",
    "DataVersion",
    "Deployment",
    "ImportRun",
    "IndicatorResult",
    "IndicatorRun",
    "InputFeature",
    "InputLayer",
    "Intravilan",
    "Parcel",
    "ParcelOwner",
    "ParcelUse",
    "Person",
    "Plan",
    "Population",
    "RasterLayer",
    "Regulation",
    "Restriction",
    "StaffUser",
    "Street",
    "Unit",
    "UnitSet",
    "Zone",
    "metadata",
]
