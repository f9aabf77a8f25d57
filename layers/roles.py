"""The one rule on who sees what: every service asks these functions, nothing else.

Roles: ``public`` (anonymous citizens), ``portal`` (the e-services portal's API key),
``clerk`` (permit clerks: personal data of applicants and owners), ``planner`` (urban
planners: draft plans), ``admin``. Items, single features, tiles, queryables and every
later service (WFS, WMS, exports) take fields and rows from here, so a rule cannot be
applied in one place and forgotten in another.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from gis_core.errors import Forbidden, InvalidParameter, NotFound
from layers.catalog import ALL_ROLES, PERSONAL_DATA_ROLES, Catalog, Field, LayerDefinition

ROLES = ("public", "portal", "clerk", "planner", "admin")


def check_role(role: str) -> str:
    """A known role name, or an error: an unknown role must never widen access."""
    if role not in ALL_ROLES:
        raise InvalidParameter(f"unknown role {role!r}", locator="role")
    return role


def may_see_layer(layer: LayerDefinition, role: str) -> bool:
    return check_role(role) in layer.roles


def visible_layers(catalog: Catalog, role: str) -> list[LayerDefinition]:
    """The layers ``role`` may list, in catalog order."""
    return [layer for layer in catalog.layers() if may_see_layer(layer, role)]


def layer_for(catalog: Catalog, layer_id: str, role: str) -> LayerDefinition:
    """The layer if ``role`` may see it; a hidden layer is reported as absent (404)."""
    layer = catalog.get(layer_id)
    if not may_see_layer(layer, role):
        raise NotFound(f"collection {layer_id!r} does not exist", locator="collectionId")
    return layer


def visible_fields(layer: LayerDefinition, role: str) -> tuple[Field, ...]:
    """The fields of ``layer`` that ``role`` may read; personal data only for its roles."""
    check_role(role)
    return tuple(
        f
        for f in layer.fields
        if role in f.roles and (not f.personal or role in PERSONAL_DATA_ROLES)
    )


def visible_field(layer: LayerDefinition, role: str, name: str, *, purpose: str) -> Field:
    """One visible field by name; hidden and unknown names get the same 400."""
    for candidate in visible_fields(layer, role):
        if candidate.name == name:
            return candidate
    raise InvalidParameter(f"{name!r} is not a {purpose} of {layer.id!r}", locator=purpose)


def row_filter(layer: LayerDefinition, role: str) -> ColumnElement[bool]:
    """The rows ``role`` may see, as a boolean SQL expression (``true`` when all)."""
    check_role(role)
    if not may_see_layer(layer, role):
        raise Forbidden(f"role {role!r} may not read {layer.id!r}")
    conditions: list[ColumnElement[bool]] = []
    if layer.base_filter is not None:
        conditions.append(layer.base_filter())
    rule = layer.row_filters.get(role)
    if rule is not None:
        conditions.append(rule())
    return sa.and_(sa.true(), *conditions)
