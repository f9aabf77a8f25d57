"""GML for WFS: feature members built by PostGIS, and the XML Schema of each layer.

Each feature leaves the database as finished XML text: the geometry from ``ST_AsGML``
(already in the output CRS and its axis order), the role's fields from ``xmlforest``
(which escapes values and drops NULLs). Python only adds the envelope and streams.
GML 3.2 (WFS 2.0) and GML 3.1.1 (WFS 1.1.0) differ in the namespace, the member
element and the ``gml:id`` on geometries.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from layers import queries
from layers.catalog import ETRS89, WEB_MERCATOR, WGS84, Field, LayerDefinition
from layers.spatial import CRS84_SRID, decimals, geographic_source, output_geometry
from layers.wfs_ows import CRS84_URN, srs_urn

PREFIX = "urbangis"
NAMESPACE = "https://urbangis.ro/ns/features"
WFS20 = "http://www.opengis.net/wfs/2.0"
WFS11 = "http://www.opengis.net/wfs"
GML32 = "http://www.opengis.net/gml/3.2"
GML31 = "http://www.opengis.net/gml"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
GEOMETRY_ELEMENT = "geom"
# Feature expressions kept per (layer, fields, CRS, flavour): built once, not per
# request (layers and fields hash by identity; every value in them is from the catalog).
EXPRESSIONS = 512
# ST_AsGML options: 1 long CRS names, 2 Polygon rather than Surface, 4 LineString
# rather than Curve (the simple-features profile clients read).
GML_OPTIONS = 1 | 2 | 4
XSD_TYPES = {
    "string": "string",
    "integer": "long",
    "number": "double",
    "boolean": "boolean",
    "date-time": "dateTime",
    "date": "date",
}
# Multi-geometry column types: the GML element ST_AsGML writes (with GML_OPTIONS)
# and its member element.
MULTI_ELEMENTS = {
    "MultiPolygon": ("MultiSurface", "surfaceMember"),
    "MultiLineString": ("MultiCurve", "curveMember"),
    "MultiPoint": ("MultiPoint", "pointMember"),
}
GEOMETRY_PROPERTY_TYPES = {
    "Point": "PointPropertyType",
    "MultiPoint": "MultiPointPropertyType",
    "LineString": "CurvePropertyType",
    "MultiLineString": "MultiCurvePropertyType",
    "Polygon": "SurfacePropertyType",
    "MultiPolygon": "MultiSurfacePropertyType",
}


@dataclass(frozen=True)
class Encoding:
    """One GML flavour: its namespace, member element and MIME type; GML 2 (WFS
    1.0.0) names features with ``fid`` and writes every CRS x/y (east/north, lon/lat)."""

    gml: str
    wfs: str
    member: str
    mime: str
    with_ids: bool
    version: int = 3

    @property
    def id_attribute(self) -> str:
        return "fid" if self.version == 2 else "gml:id"

    @property
    def namespaces(self) -> str:
        return (
            f'xmlns:wfs="{self.wfs}" xmlns:gml="{self.gml}" '
            f'xmlns:{PREFIX}="{NAMESPACE}" xmlns:xsi="{XSI}"'
        )


GML_32 = Encoding(GML32, WFS20, "wfs:member", "application/gml+xml; version=3.2", True)
GML_311 = Encoding(GML31, WFS11, "gml:featureMember", "text/xml; subtype=gml/3.1.1", False)
GML_212 = Encoding(GML31, WFS11, "gml:featureMember", "text/xml; subtype=gml/2.1.2", False, 2)
# GML 2 property types of each geometry type (XML Schema of WFS 1.0.0).
GML2_PROPERTY_TYPES = {
    "Point": "PointPropertyType",
    "MultiPoint": "MultiPointPropertyType",
    "LineString": "LineStringPropertyType",
    "MultiLineString": "MultiLineStringPropertyType",
    "Polygon": "PolygonPropertyType",
    "MultiPolygon": "MultiPolygonPropertyType",
}


def type_name(layer: LayerDefinition) -> str:
    return f"{PREFIX}:{layer.id}"


def gml_id(layer: LayerDefinition) -> ColumnElement[str]:
    """``parcels.123``: the feature's id, also its WFS resource id."""
    return sa.func.concat(f"{layer.id}.", sa.cast(layer.id_expr, sa.Text))


def geometry_gml(layer: LayerDefinition, srid: int, encoding: Encoding) -> ColumnElement[str]:
    """The geometry as GML in ``srid`` (axis order of that CRS), or NULL.

    GML 3.2 wants a gml:id on every geometry, unique in the document: the geometry
    gets ``parcels.12.g``, the members of a multi-geometry ``parcels.12.g.1``, ``.2``…
    (``ST_AsGML`` would repeat the parent's id on each member).
    """
    if encoding.version == 2:
        flat = sa.func.ST_SetSRID(xy_geometry(layer, srid), 4326 if srid == CRS84_SRID else srid)
        gml2: ColumnElement[str] = sa.func.ST_AsGML(2, flat, decimals(srid), 0)
        return gml2
    expr = output_geometry(layer, srid)
    expr = sa.func.ST_SetSRID(expr, 4326 if srid == CRS84_SRID else srid)
    if not encoding.with_ids:
        text: ColumnElement[str] = sa.func.ST_AsGML(3, expr, decimals(srid), GML_OPTIONS, "gml")
    else:
        text = _identified_gml(layer, expr, srid)
    if srid == CRS84_SRID:
        text = sa.func.replace(text, '"urn:ogc:def:crs:EPSG::4326"', f'"{CRS84_URN}"')
    return text


def _identified_gml(
    layer: LayerDefinition, expr: ColumnElement[Any], srid: int
) -> ColumnElement[str]:
    """``ST_AsGML`` with unique gml:ids. A one-member multi-geometry (most parcels)
    is written as its wrapper around the member's own GML; other multi-geometries
    get their members' repeated ids renumbered in order."""
    ident = sa.func.concat(gml_id(layer), ".g")
    written: ColumnElement[str] = sa.func.ST_AsGML(
        3, expr, decimals(srid), GML_OPTIONS, "gml", ident
    )
    if layer.geometry_type in ("Point", "LineString", "Polygon"):
        return written  # one id, on the geometry itself
    renumbered = _renumbered_ids(written, ident)
    wrapper = MULTI_ELEMENTS.get(layer.geometry_type)
    if wrapper is None:
        return renumbered
    collection, member = wrapper
    single = sa.func.concat(
        f'<gml:{collection} srsName="{srs_urn(srid)}" gml:id="',
        ident,
        f'"><gml:{member}>',
        sa.func.ST_AsGML(
            3,
            sa.func.ST_SetSRID(sa.func.ST_GeometryN(expr, 1), 0),
            decimals(srid),
            GML_OPTIONS,
            "gml",
            sa.func.concat(ident, ".1"),
        ),
        f"</gml:{member}></gml:{collection}>",
    )
    return sa.case((sa.func.ST_NumGeometries(expr) == 1, single), else_=renumbered)


def _renumbered_ids(text: ColumnElement[str], ident: ColumnElement[str]) -> ColumnElement[str]:
    """The text with the 2nd, 3rd… ``gml:id="<ident>"`` made ``<ident>.1``, ``.2``…"""
    needle = sa.func.concat('gml:id="', ident, '"')
    parts = (
        sa.func.unnest(sa.func.string_to_array(text, needle))
        .table_valued("piece", with_ordinality="position")
        .render_derived()
    )
    position = parts.c.position
    numbered = sa.case(
        (position == 1, parts.c.piece),
        (position == 2, sa.func.concat(needle, parts.c.piece)),
        else_=sa.func.concat(
            'gml:id="', ident, ".", sa.cast(position - 2, sa.Text), '"', parts.c.piece
        ),
    )
    return (
        sa.select(sa.func.string_agg(numbered, aggregate_order_by(sa.literal(""), position)))
        .select_from(parts)
        .scalar_subquery()
    )


def xy_geometry(layer: LayerDefinition, srid: int) -> ColumnElement[object]:
    """The geometry in ``srid`` with x/y (east/north, lon/lat) axes, as GeoJSON wants:
    geographic output from the TransDatRO twin, as everywhere else."""
    if srid == layer.storage_srid:
        return layer.geom
    if srid in (CRS84_SRID, WGS84, ETRS89):
        return geographic_source(layer)
    if srid == WEB_MERCATOR:
        return sa.func.ST_Transform(geographic_source(layer), WEB_MERCATOR)
    source = layer.etrs89 if layer.etrs89 is not None else layer.geom
    return sa.func.ST_Transform(source, srid)


@lru_cache(maxsize=EXPRESSIONS)
def geojson_text(
    layer: LayerDefinition, fields: tuple[Field, ...], srid: int
) -> ColumnElement[str]:
    """One GeoJSON Feature as text (x/y axes whatever the CRS, RFC 7946 style), with
    the WFS resource id (``parcels.12``) as its id."""
    geometry = sa.func.ST_AsGeoJSON(xy_geometry(layer, srid), decimals(srid), 0)
    return sa.func.concat(
        '{"type":"Feature","id":"',
        gml_id(layer),
        '","geometry":',
        sa.func.coalesce(geometry, "null"),
        ',"properties":',
        queries.properties_json(fields),
        "}",
    )


def fields_xml(fields: tuple[Field, ...]) -> ColumnElement[str]:
    """The fields as ``<urbangis:name>value</urbangis:name>``, NULLs left out."""
    if not fields:
        return sa.literal("")
    forest = sa.func.xmlforest(*[Named(f.expr, f"{PREFIX}:{f.name}") for f in fields])
    return sa.func.coalesce(sa.cast(forest, sa.Text), "")


class Named(ColumnElement[Any]):
    """``expr AS "name"`` inside ``xmlforest``; the name comes from the catalog."""

    inherit_cache = True
    _traverse_internals = [
        ("expr", InternalTraversal.dp_clauseelement),
        ("name", InternalTraversal.dp_string),
    ]

    def __init__(self, expr: ColumnElement[Any], name: str) -> None:
        self.expr = expr
        self.name = name
        self.type = expr.type


@compiles(Named)
def _compile_named(element: Named, compiler: Any, **kw: Any) -> str:
    name = element.name.replace('"', "")
    return f'{compiler.process(element.expr, **kw)} AS "{name}"'


@lru_cache(maxsize=EXPRESSIONS)
def feature_xml(
    layer: LayerDefinition,
    fields: tuple[Field, ...],
    srid: int,
    encoding: Encoding,
    *,
    wrap: bool = True,
    namespaces: bool = False,
    geometry: bool = True,
) -> ColumnElement[str]:
    """One feature as GML text, wrapped in its member element unless ``wrap`` is off."""
    shape = _optional_geometry(geometry_gml(layer, srid, encoding)) if geometry else None
    open_tag = f"<{type_name(layer)}"
    if namespaces:
        open_tag += " " + encoding.namespaces
    parts: list[Any] = [
        f'{open_tag} {encoding.id_attribute}="',
        gml_id(layer),
        '">',
        sa.func.coalesce(shape, "") if shape is not None else "",
        fields_xml(fields),
        f"</{type_name(layer)}>",
    ]
    if wrap:
        parts = [f"<{encoding.member}>", *parts, f"</{encoding.member}>"]
    return sa.func.concat(*parts)


def _optional_geometry(geometry: ColumnElement[str]) -> ColumnElement[str]:
    """``<urbangis:geom>…</urbangis:geom>``, or NULL when the feature has no geometry."""
    open_tag = sa.literal(f"<{PREFIX}:{GEOMETRY_ELEMENT}>", sa.Text)
    close_tag = sa.literal(f"</{PREFIX}:{GEOMETRY_ELEMENT}>", sa.Text)
    return open_tag.op("||")(geometry).op("||")(close_tag)


def member_statement(query: queries.FeatureQuery, text: ColumnElement[str]) -> Select[Any]:
    """One row per feature (plus one look-ahead row), in a stable order; the member text
    is built only for the rows the page returns, never for those its offset skips."""
    return queries.texts_after_paging(query, text)


def schema_document(
    layers: list[tuple[LayerDefinition, tuple[Field, ...]]],
    gml_namespace: str,
    gml_version: int = 3,
) -> bytes:
    """The XML Schema of the feature types: the role's fields, the geometry first."""
    gml_location = (
        "http://schemas.opengis.net/gml/3.2.1/gml.xsd"
        if gml_namespace == GML32
        else "http://schemas.opengis.net/gml/3.1.1/base/gml.xsd"
    )
    if gml_version == 2:
        gml_location = "http://schemas.opengis.net/gml/2.1.2/feature.xsd"
    feature_base = "gml:AbstractFeature" if gml_namespace == GML32 else "gml:_Feature"
    property_types = GML2_PROPERTY_TYPES if gml_version == 2 else GEOMETRY_PROPERTY_TYPES
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:gml="{gml_namespace}" '
        f'xmlns:{PREFIX}="{NAMESPACE}" targetNamespace="{NAMESPACE}" '
        'elementFormDefault="qualified" version="1.0">',
        f'<xsd:import namespace="{gml_namespace}" schemaLocation="{gml_location}"/>',
    ]
    for layer, fields in layers:
        geometry_type = property_types.get(layer.geometry_type, "GeometryPropertyType")
        parts.append(
            f'<xsd:element name="{layer.id}" type="{PREFIX}:{layer.id}Type" '
            f'substitutionGroup="{feature_base}"/>'
            f'<xsd:complexType name="{layer.id}Type"><xsd:complexContent>'
            '<xsd:extension base="gml:AbstractFeatureType"><xsd:sequence>'
            f'<xsd:element name="{GEOMETRY_ELEMENT}" type="gml:{geometry_type}" '
            'minOccurs="0" maxOccurs="1" nillable="true"/>'
        )
        for field in fields:
            kind = "date-time" if field.format == "date-time" else field.type
            parts.append(
                f"<xsd:element name={quoteattr(field.name)} "
                f'type="xsd:{XSD_TYPES.get(kind, "string")}" minOccurs="0" maxOccurs="1" '
                'nillable="true"/>'
            )
        parts.append("</xsd:sequence></xsd:extension></xsd:complexContent></xsd:complexType>")
    parts.append("</xsd:schema>")
    return "".join(parts).encode()


def property_value_xml(name: str, value: str) -> str:
    """A simple value as the member of a ``wfs:ValueCollection``."""
    return f"<wfs:member><{PREFIX}:{name}>{escape(value)}</{PREFIX}:{name}></wfs:member>"
