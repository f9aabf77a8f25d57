"""OGC Filter Encoding (FES 2.0 and Filter 1.1) → SQLAlchemy expressions.

The XML is parsed by a hardened lxml parser (no DTD, no entities, no network, bounded
size) and handed to pygeofilter's FES parser; the resulting AST is normalised here
(namespace prefixes dropped from property names, ``PropertyIsLike`` wildcards turned
into SQL ``LIKE`` syntax, GML literals moved to one CRS in authority axis order) and
compiled by the same evaluator as CQL2, so a FES filter obeys exactly the catalog
rules of OGC API Features: only the fields the role may query, values as bound
parameters. Resource identifiers are resolved here into id conditions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import shapely
import sqlalchemy as sa
from lxml import etree
from pygeofilter import ast, values
from pygeofilter.backends.evaluator import handle
from pygeofilter.parsers.fes.util import Element, NodeParsingError
from pygeofilter.parsers.fes.util import handle as handles_tag
from pygeofilter.parsers.fes.v11 import FES11Parser
from pygeofilter.parsers.fes.v20 import FES20Parser
from sqlalchemy.sql.elements import ColumnElement

from gis_core.errors import InvalidParameter, OutsideGridError
from layers import cql2
from layers.catalog import LayerDefinition

FES20 = "http://www.opengis.net/fes/2.0"
OGC = "http://www.opengis.net/ogc"
GML32 = "http://www.opengis.net/gml/3.2"
GML = "http://www.opengis.net/gml"
MAX_FILTER_BYTES = 1_000_000
GML_ELEMENTS = frozenset(
    {
        "Envelope",
        "Box",
        "lowerCorner",
        "upperCorner",
        "Point",
        "LineString",
        "Polygon",
        "LinearRing",
        "MultiPoint",
        "MultiCurve",
        "MultiSurface",
        "MultiLineString",
        "MultiPolygon",
        "MultiGeometry",
        "pos",
        "posList",
        "coordinates",
        "coord",
        "exterior",
        "interior",
        "outerBoundaryIs",
        "innerBoundaryIs",
        "pointMember",
        "pointMembers",
        "curveMember",
        "curveMembers",
        "surfaceMember",
        "surfaceMembers",
        "lineStringMember",
        "polygonMember",
        "geometryMember",
        "TimeInstant",
        "TimePeriod",
        "timePosition",
        "beginPosition",
        "endPosition",
    }
)
# Names clients use for the geometry property (MapServer's ``msGeometry`` included, so
# requests written for a MapServer deployment keep working).
GEOMETRY_ALIASES = frozenset({"geom", "geometry", "the_geom", "msgeometry", "shape"})
DISTANCE_UNITS = {
    "m": 1.0,
    "metre": 1.0,
    "meter": 1.0,
    "metres": 1.0,
    "meters": 1.0,
    "urn:ogc:def:uom:epsg::9001": 1.0,
    "km": 1000.0,
    "kilometre": 1000.0,
    "kilometer": 1000.0,
}
SAFE_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)
SridOf = Callable[[str], tuple[int, bool]]
ResolveIds = Callable[[tuple[str, ...]], ColumnElement[bool]]
# GML's own feature properties. We never write gml:name, gml:description or
# gml:identifier, so for a filter they are absent (NULL) on every feature; gml:boundedBy
# is the envelope of the geometry, present exactly when the geometry is.
ABSENT_GML_PROPERTIES = frozenset({"gml:name", "gml:description", "gml:identifier"})
BOUNDED_BY = "gml:boundedby"


class FilterError(InvalidParameter):
    """A filter that cannot be parsed or evaluated (``InvalidParameterValue``/filter)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, locator="filter")


@dataclass(frozen=True)
class ResourceIds:
    """A filter made only of resource identifiers (``typeName.id``)."""

    ids: tuple[str, ...]


@dataclass
class ResourceIdNode(ast.Predicate):
    """A resource identifier inside a logical operator (``<Not><ResourceId/></Not>``)."""

    ids: tuple[str, ...]

    def get_sub_nodes(self) -> list[ast.AstType]:
        return []


@dataclass
class IsNil(ast.Predicate):
    """FES 2.0 ``PropertyIsNil``: is the property present with ``xsi:nil="true"``?"""

    lhs: ast.AstType

    def get_sub_nodes(self) -> list[ast.AstType]:
        return [self.lhs]


def _bbox(lhs_and_rhs: tuple[Any, ...]) -> ast.GeometryIntersects:
    """``BBOX`` as ``Intersects`` (pygeofilter writes ``NOT Disjoint``, which no
    spatial index can serve); a missing property is the geometry (see ``_normalise``)."""
    if len(lhs_and_rhs) == 2:
        return ast.GeometryIntersects(lhs_and_rhs[0], lhs_and_rhs[1])
    return ast.GeometryIntersects(None, lhs_and_rhs[0])


class _Fes20(FES20Parser):
    """pygeofilter's FES 2.0 parser plus ``PropertyIsNil`` and nested ``ResourceId``."""

    @handles_tag("BBOX")
    def geometry_bbox(self, node: Element, *args: Any) -> ast.GeometryIntersects:
        return _bbox(args)

    @handles_tag("PropertyIsNil")
    def property_is_nil(self, node: Element, lhs: Any) -> IsNil:
        return IsNil(lhs)

    @handles_tag("ResourceId", subiter=False)
    def resource_id(self, node: Element) -> ResourceIdNode:
        return ResourceIdNode((_id_of(node),))


class _Fes11(FES11Parser):
    """pygeofilter's Filter 1.1 parser plus nested ``FeatureId``/``GmlObjectId``."""

    @handles_tag("BBOX")
    def geometry_bbox(self, node: Element, *args: Any) -> ast.GeometryIntersects:
        return _bbox(args)

    @handles_tag("FeatureId", "GmlObjectId", subiter=False)
    def resource_id(self, node: Element) -> ResourceIdNode:
        return ResourceIdNode((_id_of(node),))


def _with_inherited_handlers(parser: type[Any], base: type[Any]) -> None:
    """pygeofilter's parser metaclass only reads the direct base's own handlers: start
    from the base's complete map (logic, comparisons, spatial operators, GML) and add
    the handlers the subclass itself defines."""
    own = {
        f"{{{base.namespace}}}{tag}": value
        for value in vars(parser).values()
        for tag in getattr(value, "handles_tags", ())
    }
    parser.tag_map = {**base.tag_map, **own}
    parser.namespace_map = dict(base.namespace_map)


_with_inherited_handlers(_Fes20, FES20Parser)
_with_inherited_handlers(_Fes11, FES11Parser)


def parse_xml(text: str) -> etree._Element:
    """The filter document, parsed without DTDs, entities or network access."""
    if len(text.encode()) > MAX_FILTER_BYTES:
        raise FilterError(f"the filter is larger than {MAX_FILTER_BYTES} bytes")
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise FilterError("document type declarations are not allowed in a filter")
    try:
        root = etree.fromstring(text.strip().encode(), SAFE_PARSER)
    except etree.XMLSyntaxError as exc:
        if "prefix" not in str(exc).lower():
            raise FilterError(f"the filter is not well-formed XML: {exc}") from None
        root = _with_usual_prefixes(text)
    if root is None:
        raise FilterError("the filter is empty")
    return root


def _with_usual_prefixes(text: str) -> etree._Element:
    """Filters pasted into a URL often use ``fes:``/``gml:`` without declaring them
    (MapServer accepts that): read them with the usual namespaces declared around."""
    wrapped = f'<w xmlns:fes="{FES20}" xmlns:ogc="{OGC}" xmlns:gml="{GML32}">{text.strip()}</w>'
    try:
        outer = etree.fromstring(wrapped.encode(), SAFE_PARSER)
    except etree.XMLSyntaxError as exc:
        raise FilterError(f"the filter is not well-formed XML: {exc}") from None
    children = list(outer)
    if len(children) != 1:
        raise FilterError("the filter must be one XML element")
    return children[0]


@dataclass(frozen=True, eq=False)
class ParsedFilter:
    """A filter's AST and the ``srsName`` its geometry literals declared."""

    tree: ast.Node
    srs_names: frozenset[str]


def parse_filter(text: str, version: str) -> ParsedFilter | ResourceIds:
    """A FES document as a pygeofilter AST, or the resource ids it names.

    ``srsName`` attributes are read here and removed before pygeofilter sees the
    geometries, so every literal keeps the axis order it was written in (pygml would
    swap some geometries and not envelopes); ``compile_filter`` applies the CRS.
    """
    root = parse_xml(text)
    namespace = FES20 if version.startswith("2") else OGC
    _adopt_namespace(root, namespace)
    if etree.QName(root).localname != "Filter":
        raise FilterError("the filter's root element must be Filter")
    children = list(root)
    if not children:
        raise FilterError("the filter is empty")
    if all(_is_id(child) for child in children):
        return ResourceIds(tuple(_id_of(child) for child in children))
    if any(_is_id(child) for child in children) or len(children) > 1:
        raise FilterError("a filter holds one predicate, or only resource identifiers")
    _boxes_as_envelopes(root)
    names = set()
    for element in root.iter():
        name = element.attrib.pop("srsName", None)
        if name:
            names.add(name.strip())
    parser = _Fes20() if etree.QName(root).namespace == FES20 else _Fes11()
    try:
        return ParsedFilter(parser.parse(root), frozenset(names))
    except NodeParsingError as exc:
        raise FilterError(f"unsupported filter element: {exc}") from None
    except (KeyError, ValueError, TypeError, IndexError, AttributeError) as exc:
        raise FilterError(f"invalid filter: {exc}") from None


def _adopt_namespace(root: etree._Element, namespace: str) -> None:
    """Elements written without a namespace (``<Filter>``) are read as filter elements,
    or as GML for geometry elements (``<Envelope>``, ``<lowerCorner>`` ...)."""
    gml = GML32 if namespace == FES20 else GML
    for element in root.iter():
        if isinstance(element.tag, str) and not element.tag.startswith("{"):
            target = gml if element.tag in GML_ELEMENTS else namespace
            element.tag = f"{{{target}}}{element.tag}"
    etree.cleanup_namespaces(root)


def _boxes_as_envelopes(root: etree._Element) -> None:
    """GML 2's ``gml:Box`` (``gml:coordinates`` or two ``gml:coord``) rewritten as the
    ``gml:Envelope`` pygeofilter reads, keeping its namespace and ``srsName``."""
    for box in list(root.iter(f"{{{GML}}}Box", f"{{{GML32}}}Box")):
        namespace = etree.QName(box).namespace
        corners = _box_corners(box)
        if len(corners) != 2:
            raise FilterError("a gml:Box needs exactly two corners")
        box.tag = f"{{{namespace}}}Envelope"
        for child in list(box):
            box.remove(child)
        for name, (x, y) in zip(("lowerCorner", "upperCorner"), corners, strict=True):
            etree.SubElement(box, f"{{{namespace}}}{name}").text = f"{x} {y}"


def _box_corners(box: etree._Element) -> list[tuple[str, str]]:
    corners: list[tuple[str, str]] = []
    for child in box:
        name = etree.QName(child).localname
        if name == "coordinates":
            separator, tuples = child.get("cs", ","), child.get("ts", " ")
            for pair in (child.text or "").split(tuples):
                parts = pair.strip().split(separator)
                if len(parts) >= 2:
                    corners.append((parts[0].strip(), parts[1].strip()))
        elif name == "coord":
            x = child.findtext("{*}X")
            y = child.findtext("{*}Y")
            if x is None or y is None:
                raise FilterError("a gml:coord needs gml:X and gml:Y")
            corners.append((x.strip(), y.strip()))
    return corners


def _is_id(element: etree._Element) -> bool:
    return etree.QName(element).localname in ("ResourceId", "FeatureId", "GmlObjectId")


def _id_of(element: etree._Element) -> str:
    for name in ("rid", "fid", f"{{{GML32}}}id", f"{{{GML}}}id", "id"):
        value = element.get(name)
        if value:
            return value.strip()
    raise FilterError("a resource identifier has no rid")


def compile_filter(
    parsed: ParsedFilter,
    layer: LayerDefinition,
    role: str,
    extent: tuple[float, float, float, float] | None,
    srid_of: SridOf,
    default_srid: int,
    resolve_ids: ResolveIds | None = None,
    *,
    default_swap: bool = False,
) -> ColumnElement[bool]:
    """The filter as a boolean expression; ``srid_of`` reads a GML ``srsName`` into
    (SRID code, whether the literal's x/y must be swapped into the CRS's axis order;
    ``default_swap`` for literals without ``srsName``), ``resolve_ids`` turns resource
    identifiers met inside logical operators into the condition on the layer's ids
    (without it they are refused)."""
    if len(parsed.srs_names) > 1:
        raise FilterError("all geometries of a filter must use the same srsName")
    filter_srid, swap = default_srid, default_swap
    if parsed.srs_names:
        filter_srid, swap = srid_of(next(iter(parsed.srs_names)))
    tree = _normalise(parsed.tree, swap)
    context = cql2.FilterContext(layer, role, filter_srid, extent)
    try:
        result = _FesEvaluator(context, resolve_ids).evaluate(tree)
    except (InvalidParameter, OutsideGridError):
        raise
    except NotImplementedError as exc:
        raise FilterError(f"unsupported filter operator: {exc}") from None
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise FilterError(f"unsupported filter: {exc}") from None
    if isinstance(result, bool):
        return sa.true() if result else sa.false()
    if not isinstance(result, ColumnElement):
        raise FilterError("the filter is not a condition")
    return result


def _normalise(node: Any, swap: bool) -> Any:
    """Rewrite the freshly parsed tree in place for the evaluator (pygeofilter's nodes
    are plain objects: walked through ``get_sub_nodes``, their attributes set)."""

    def visit(value: Any) -> None:
        if isinstance(value, ast.Attribute):
            value.name = _gml_property(str(value.name)) or property_name(str(value.name))
            return
        if isinstance(value, values.Geometry):
            if swap:
                geom = shapely.geometry.shape(value.geometry)
                flipped = shapely.transform(geom, lambda xy: xy[:, ::-1])
                value.geometry = dict(shapely.geometry.mapping(flipped))
            return
        if isinstance(value, ast.Like):
            value.pattern = like_pattern(
                str(value.pattern), value.wildcard, value.singlechar, value.escapechar
            )
            value.wildcard, value.singlechar, value.escapechar = "%", "_", "\\"
        for side in ("lhs", "rhs"):
            if (
                isinstance(value, ast.Node)
                and hasattr(value, side)
                and getattr(value, side) is None
            ):
                setattr(value, side, ast.Attribute("geom"))  # BBOX without a property
        if isinstance(value, list):
            for item in value:
                visit(item)
        elif isinstance(value, ast.Node):
            subs = value.get_sub_nodes()
            for item in subs if isinstance(subs, list) else [subs]:
                visit(item)

    visit(node)
    return node


def _gml_property(name: str) -> str | None:
    """``gml:name`` and its kind kept as such; ``gml:boundedBy`` as the geometry."""
    text = name.strip().rsplit("/", 1)[-1]
    if text.lower() == BOUNDED_BY:
        return "geom"
    return text if text in ABSENT_GML_PROPERTIES else None


def property_name(name: str) -> str:
    """``urbangis:parcels/urbangis:cadastral_number`` → ``cadastral_number``."""
    local = name.strip().rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    local = re.sub(r"\[\d+\]$", "", local)
    return "geom" if local.lower() in GEOMETRY_ALIASES else local


def like_pattern(pattern: str, wildcard: str, single: str, escape: str) -> str:
    """A FES ``PropertyIsLike`` pattern as an SQL ``LIKE`` pattern (backslash escapes)."""
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if escape and char == escape and index + 1 < len(pattern):
            index += 1
            out.append(_sql_literal(pattern[index]))
        elif char == wildcard:
            out.append("%")
        elif char == single:
            out.append("_")
        else:
            out.append(_sql_literal(char))
        index += 1
    return "".join(out)


def _sql_literal(char: str) -> str:
    return "\\" + char if char in "%_\\" else char


class _FesEvaluator(cql2._SqlEvaluator):
    """The CQL2 evaluator plus what only FES has: distance operators (metres, storage
    CRS), ``PropertyIsNil``, resource ids inside logical operators, GML's own
    properties and ``PropertyIsNull`` on the geometry."""

    def __init__(self, context: cql2.FilterContext, resolve_ids: ResolveIds | None) -> None:
        super().__init__(context)
        self.resolve_ids = resolve_ids

    @handle(ast.Attribute)
    def attribute(self, node: ast.Attribute) -> Any:
        if str(node.name) in ABSENT_GML_PROPERTIES:
            return sa.null()
        return super().attribute(node)

    @handle(ast.IsNull)
    def is_null(self, node: ast.IsNull, lhs: object) -> ColumnElement[bool]:
        if isinstance(lhs, cql2._Attr) and lhs.field is None:
            geom = self.context.layer.geom
            return geom.is_not(None) if node.not_ else geom.is_(None)
        return super().is_null(node, lhs)

    @handle(IsNil)
    def is_nil(self, node: IsNil, lhs: object) -> ColumnElement[bool]:
        """False for every feature: our GML leaves absent values out and never writes
        ``xsi:nil``. The property is still checked (an unknown one is refused)."""
        return sa.false()

    @handle(ResourceIdNode)
    def resource_ids(self, node: ResourceIdNode) -> ColumnElement[bool]:
        if self.resolve_ids is None:
            raise FilterError("resource identifiers are not allowed in this filter")
        return self.resolve_ids(node.ids)

    @handle(ast.DistanceWithin, ast.DistanceBeyond)
    def distance(
        self, node: ast.SpatialDistancePredicate, lhs: object, rhs: object
    ) -> ColumnElement[bool]:
        factor = DISTANCE_UNITS.get(str(node.units).strip().lower())
        if factor is None:
            raise FilterError(f"unsupported distance unit {node.units!r}: use m or km")
        left = self._spatial_operand(lhs, "DWITHIN")
        right = self._spatial_operand(rhs, "DWITHIN")
        within = sa.func.ST_DWithin(left, right, float(node.distance) * factor)
        return within if isinstance(node, ast.DistanceWithin) else sa.not_(within)


def resource_condition(layer: LayerDefinition, keys: list[int]) -> ColumnElement[bool]:
    """The rows with these ids (an empty list matches nothing)."""
    if not keys:
        return sa.false()
    return layer.id_expr.in_(keys)
