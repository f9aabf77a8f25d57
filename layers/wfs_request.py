"""GetFeature and GetPropertyValue parameters (KVP) → validated feature queries.

Every name the client sends (type names, properties, sort keys, filter properties) is
looked up in the catalog under the caller's role before any SQL exists; filters go
through ``layers.fes``; boxes and literals are moved into the storage CRS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from gis_core.errors import NotFound
from layers import fes, queries
from layers.catalog import Catalog, Field, LayerDefinition
from layers.roles import layer_for, visible_field, visible_fields
from layers.spatial import CRS84_SRID, StorageBox, north_first, parse_bbox, query_box
from layers.wfs_gml import GML_32, GML_212, GML_311, Encoding
from layers.wfs_ows import Kvp, OwsError, invalid, parse_srs, srs_and_order

FES_LANGUAGES = (
    "urn:ogc:def:query language:ogc-fes:filter",
    "urn:ogc:def:querylanguage:ogc-fes:filter",
)
GEOJSON_FORMATS = frozenset(
    {"application/json", "application/geo+json", "json", "geojson", "application/vnd.geo+json"}
)
GML32_FORMATS = frozenset(
    {
        "application/gml+xml; version=3.2",
        "application/gml+xml;version=3.2",
        "text/xml; subtype=gml/3.2.1",
        "text/xml; subtype=gml/3.2",
        'text/xml; subtype="gml/3.2.1"',
        "gml32",
        "application/gml+xml",
    }
)
GML311_FORMATS = frozenset(
    {"text/xml; subtype=gml/3.1.1", 'text/xml; subtype="gml/3.1.1"', "gml3", "text/xml"}
)
GML212_FORMATS = frozenset(
    {"gml2", "text/xml; subtype=gml/2.1.2", 'text/xml; subtype="gml/2.1.2"', "text/xml"}
)
GET_FEATURE_BY_ID = "urn:ogc:def:query:OGC-WFS::GetFeatureById"
_ID = re.compile(r"^([A-Za-z_][\w\-]*(?::[A-Za-z_][\w\-]*)?)\.(\d{1,18})$")


@dataclass(frozen=True, eq=False)
class TypeQuery:
    """One feature type's part of a request."""

    layer: LayerDefinition
    query: queries.FeatureQuery
    geometry: bool = True


@dataclass(frozen=True, eq=False)
class FeatureRequest:
    """A checked GetFeature/GetPropertyValue request."""

    types: tuple[TypeQuery, ...]
    start: int
    count: int
    hits: bool
    encoding: Encoding | None  # None: GeoJSON
    srid: int


def output_encoding(kvp: Kvp, version: str) -> Encoding | None:
    """The GML flavour asked for (the version's own by default), or None for GeoJSON."""
    text = kvp.text("outputFormat")
    default = GML_32 if version.startswith("2") else GML_311
    if version == "1.0.0":
        default = GML_212
    if text is None:
        return default
    value = " ".join(text.lower().split())
    if value in GEOJSON_FORMATS:
        return None
    if value in GML32_FORMATS and version.startswith("2"):
        return GML_32
    if value in GML212_FORMATS and version == "1.0.0":
        return GML_212
    if value in GML311_FORMATS and version.startswith("1.1"):
        return GML_311
    raise invalid(f"outputFormat {text!r} is not supported", "outputFormat")


def split_lists(text: str) -> list[str]:
    """``(a,b)(c)`` → ``["a,b", "c"]``; a plain ``a,b`` is one list."""
    stripped = text.strip()
    if stripped.startswith("("):
        found = re.findall(r"\(([^()]*)\)", stripped)
        if not found:
            raise invalid("unbalanced parentheses", "typeNames")
        return found
    return [stripped]


def split_filters(text: str) -> list[str]:
    """FILTER may hold one filter per type name, each in parentheses."""
    stripped = text.strip()
    if not stripped.startswith("("):
        return [stripped]
    items: list[str] = []
    depth = 0
    start = 0
    for index, char in enumerate(stripped):
        if char == "(":
            if depth == 0:
                start = index + 1
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                items.append(stripped[start:index])
            if depth < 0:
                break
    if depth != 0 or not items:
        raise invalid("the FILTER parentheses are unbalanced", "filter")
    return items


def local_name(name: str) -> str:
    return name.strip().rsplit(":", 1)[-1]


def find_layer(
    catalog: Catalog, role: str, name: str, locator: str = "typeNames"
) -> LayerDefinition:
    """A type name (any prefix) → the layer, if the role may see it."""
    try:
        return layer_for(catalog, local_name(name), role)
    except NotFound:
        raise invalid(f"feature type {name!r} does not exist", locator) from None


def type_names(kvp: Kvp, version: str) -> list[str]:
    text = kvp.text("typeNames") or kvp.text("typeName")
    if text is None:
        return []
    names: list[str] = []
    for group in split_lists(text):
        names.extend(n.strip() for n in group.split(",") if n.strip())
    return names


def parse_resource_ids(text: str, locator: str, *, lenient: bool = False) -> list[tuple[str, int]]:
    """``parcels.12,parcels.13`` → ``[("parcels", 12), ("parcels", 13)]``.

    ``lenient`` (the type names are known from elsewhere): an id that cannot be one of
    ours simply matches nothing, as an unknown id would.
    """
    ids = []
    for raw in text.split(","):
        item = raw.strip()
        match = _ID.match(item)
        if not match:
            if lenient:
                continue
            raise invalid(f"{item!r} is not a resource id (typeName.number)", locator)
        ids.append((local_name(match.group(1)), int(match.group(2))))
    return ids


def build(
    conn: Connection,
    catalog: Catalog,
    role: str,
    kvp: Kvp,
    version: str,
    max_count: int,
    *,
    value_reference: bool = False,
) -> FeatureRequest:
    """Every GetFeature parameter parsed and checked, one query per feature type."""
    names = type_names(kvp, version)
    rid_text = kvp.text("resourceId") or kvp.text("featureId")
    filter_text = kvp.text("filter") or _owslib_filter(kvp)
    bbox_text = kvp.text("bbox")
    given = [
        n for n, v in (("filter", filter_text), ("bbox", bbox_text), ("resourceId", rid_text)) if v
    ]
    if len(given) > 1:
        raise invalid(f"{' and '.join(given)} are mutually exclusive", given[1])
    language = kvp.text("filter_language")
    if language and " ".join(language.lower().split()) not in FES_LANGUAGES:
        raise invalid(f"filter language {language!r} is not supported", "filter_language")
    ids = parse_resource_ids(rid_text, "resourceId", lenient=bool(names)) if rid_text else []
    if not names and ids:
        names = list(dict.fromkeys(name for name, _ in ids))
    if not names:
        raise OwsError("MissingParameterValue", "typeNames is missing", "typeNames")
    layers = [find_layer(catalog, role, name) for name in names]
    filters = split_filters(filter_text) if filter_text else []
    if filters and len(filters) != len(layers):
        raise invalid("FILTER must hold one filter per type name", "filter")
    properties = _property_lists(kvp, len(layers))
    srid = _output_srid(kvp, layers)
    count = _count(kvp, version, max_count)
    start = _integer(kvp, "startIndex", 0)
    types = []
    for index, layer in enumerate(layers):
        state = catalog.state(conn, layer)
        conditions: list[ColumnElement[bool]] = []
        box = None
        if rid_text:
            keys = [key for name, key in ids if name == layer.id]
            if not keys and rid_text and not any(name == layer.id for name, _ in ids):
                unknown = [n for n, _ in ids if n not in {lay.id for lay in layers}]
                if unknown:
                    raise invalid(f"resource id of unknown type {unknown[0]!r}", "resourceId")
            conditions.append(fes.resource_condition(layer, keys))
        if filters:
            conditions.append(_filter(filters[index], layer, role, state.extent, version))
        if bbox_text:
            box = _bbox(bbox_text, layer, state.extent, xy=version == "1.0.0")
        fields, geometry = _fields(layer, role, properties[index] if properties else None)
        types.append(
            TypeQuery(
                layer,
                queries.FeatureQuery(
                    layer=layer,
                    role=role,
                    out_srid=srid,
                    box=box,
                    conditions=tuple(conditions),
                    sort=_sort(kvp, layer, role, index, len(layers)),
                    fields=fields,
                    limit=count,
                    offset=0,
                ),
                geometry,
            )
        )
    hits = (kvp.text("resultType") or "results").lower() == "hits"
    if (kvp.text("resultType") or "results").lower() not in ("hits", "results"):
        raise invalid("resultType must be results or hits", "resultType")
    encoding = GML_32 if value_reference else output_encoding(kvp, version)
    return FeatureRequest(tuple(types), start, count, hits, encoding, srid)


def _owslib_filter(kvp: Kvp) -> str | None:
    """OWSLib's ``getfeature(filter=...)`` sends the FES document as ``QUERY`` over GET:
    read it as the filter so that client works unchanged."""
    text = kvp.text("query")
    return text if text is not None and text.lstrip().startswith("<") else None


def _integer(kvp: Kvp, name: str, default: int) -> int:
    text = kvp.text(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise invalid(f"{name} must be a non-negative integer, got {text!r}", name) from None
    if value < 0:
        raise invalid(f"{name} must be a non-negative integer, got {text!r}", name)
    return value


def _count(kvp: Kvp, version: str, max_count: int) -> int:
    name = "count" if kvp.text("count") is not None else "maxFeatures"
    return min(_integer(kvp, name, max_count), max_count)


def _output_srid(kvp: Kvp, layers: list[LayerDefinition]) -> int:
    text = kvp.text("srsName")
    if text is None:
        return layers[0].storage_srid
    offered = set(layers[0].srids)
    for layer in layers[1:]:
        offered &= set(layer.srids)
    return parse_srs(text, sorted(offered), "srsName")


def _property_lists(kvp: Kvp, types: int) -> list[list[str]] | None:
    text = kvp.text("propertyName")
    if text is None:
        return None
    groups = split_lists(text)
    if len(groups) == 1 and types > 1:
        groups = groups * types
    if len(groups) != types:
        raise invalid("PROPERTYNAME must hold one list per type name", "propertyName")
    return [[name.strip() for name in group.split(",") if name.strip()] for group in groups]


def _fields(
    layer: LayerDefinition, role: str, names: list[str] | None
) -> tuple[tuple[Field, ...], bool]:
    """The selected fields (all visible ones by default) and whether the geometry stays."""
    if names is None or names == ["*"]:
        return visible_fields(layer, role), True
    chosen: list[Field] = []
    geometry = False
    for raw in names:
        name = fes.property_name(raw)
        if name == "geom":
            geometry = True
            continue
        chosen.append(visible_field(layer, role, name, purpose="propertyName"))
    return tuple(chosen), geometry


def _sort(
    kvp: Kvp, layer: LayerDefinition, role: str, index: int, types: int
) -> tuple[tuple[Field, bool], ...]:
    """The sort keys of the ``index``-th type: one list for all, or one per type
    in parentheses (``SORTBY=(a ASC)(b DESC)``)."""
    text = kvp.text("sortBy")
    if text is None:
        return ()
    if text.startswith("("):
        groups = split_lists(text)
        if len(groups) != types:
            raise invalid("SORTBY must hold one list per type name", "sortBy")
        text = groups[index]
    keys = []
    for item in text.split(","):
        parts = item.split()
        if not parts:
            continue
        if len(parts) > 2:
            raise invalid(f"invalid sort key {item!r}", "sortBy")
        direction = parts[1].upper() if len(parts) == 2 else "ASC"
        if direction not in ("ASC", "DESC", "A", "D"):
            raise invalid(f"sort order {parts[1]!r} must be ASC or DESC", "sortBy")
        found = visible_field(layer, role, fes.property_name(parts[0]), purpose="sortBy")
        if not found.sortable:
            raise invalid(f"{found.name!r} cannot be sorted on", "sortBy")
        keys.append((found, direction in ("DESC", "D")))
    return tuple(keys)


def _bbox(
    text: str,
    layer: LayerDefinition,
    extent: tuple[float, float, float, float] | None,
    *,
    xy: bool = False,
) -> StorageBox:
    """A BBOX value; ``xy``: its numbers are x/y whatever the CRS (WFS 1.0.0)."""
    parts = [p.strip() for p in text.split(",")]
    srid = layer.storage_srid
    if parts and not _is_number(parts[-1]):
        srid, named_xy = srs_and_order(parts.pop(), "bbox")
        xy = xy or named_xy
        if srid != CRS84_SRID and srid not in layer.srids:
            raise invalid(f"the bbox CRS EPSG:{srid} is not offered", "bbox")
    if len(parts) not in (4, 6):
        raise invalid("BBOX needs 4 numbers and an optional CRS", "bbox")
    values = parse_bbox(",".join(parts))
    if xy and srid != CRS84_SRID:
        values = _swap_if_north_first(values, srid)
    if values[0] > values[2] or values[1] > values[3]:
        raise invalid("the BBOX minimum corner must not exceed the maximum", "bbox")
    return query_box(values, srid, layer, extent)


def _swap_if_north_first(values: tuple[float, ...], srid: int) -> tuple[float, ...]:
    if north_first(srid):
        return (values[1], values[0], values[3], values[2])
    return values


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _filter(
    text: str,
    layer: LayerDefinition,
    role: str,
    extent: tuple[float, float, float, float] | None,
    version: str,
) -> ColumnElement[bool]:
    tree = fes.parse_filter(text, version)

    def resolve_ids(raw_ids: tuple[str, ...]) -> ColumnElement[bool]:
        keys = []
        for raw in raw_ids:
            parsed = parse_resource_ids(raw, "filter", lenient=True)
            if not parsed:
                continue  # not an id of ours: it matches nothing
            ((name, key),) = parsed
            if name != layer.id:
                raise invalid(f"resource id {raw!r} is not of type {layer.id!r}", "filter")
            keys.append(key)
        return fes.resource_condition(layer, keys)

    if isinstance(tree, fes.ResourceIds):
        return resolve_ids(tree.ids)

    # Filter 1.0 (WFS 1.0.0) writes every CRS x/y; later versions use the CRS's order
    # unless the CRS name itself says x/y.
    all_xy = version == "1.0.0"

    def srid_of(name: str) -> tuple[int, bool]:
        srid, xy = srs_and_order(name, "filter")
        parse_srs(name, layer.srids, "filter")
        return srid, (xy or all_xy) and srid != CRS84_SRID and north_first(srid)

    return fes.compile_filter(
        tree,
        layer,
        role,
        extent,
        srid_of,
        layer.storage_srid,
        resolve_ids,
        default_swap=all_xy and north_first(layer.storage_srid),
    )


def value_column(layer: LayerDefinition, role: str, reference: str) -> tuple[str, Field | None]:
    """What a GetPropertyValue ``valueReference`` names: ``@gml:id``, the geometry or a field."""
    if reference.strip() in ("@gml:id", "@id"):
        return "@gml:id", None
    name = fes.property_name(reference)
    if name == "geom":
        return "geom", None
    return name, visible_field(layer, role, name, purpose="valueReference")


def not_null(expr: ColumnElement[object]) -> ColumnElement[bool]:
    return sa.and_(expr.is_not(None))
