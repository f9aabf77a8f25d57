"""The JSON API under ``/api/v1`` (the e-services portal, parcel pages, clerk checks).

``blueprint`` is what ``create_app`` registers. Route modules add their endpoints to it
when imported; a new module (for example the clerks' act endpoints) is listed in
``ROUTE_MODULES`` and describes its paths in ``webmap.api.openapi.SECTIONS``.
"""

from __future__ import annotations

from webmap.api import docs, location, validation
from webmap.api.base import blueprint

ROUTE_MODULES = (location, validation, docs)

__all__ = ["ROUTE_MODULES", "blueprint"]
