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
from pygeofilter.parsers.fes.util import NodeParsingError
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
_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)
SridOf = Callable[[str], tuple[int, bool]]


class FilterError(InvalidParameter):
    """A filter that cannot be parsed or evaluated (``InvalidParameterValue``/filter)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, locator="filter")


@dataclass(frozen=True)
class ResourceIds:
    """A filter made only of resource identifiers (``typeName.id``)."""

    ids: tuple[str, ...]


def parse_xml(text: str) -> etree._Element:
    """The filter document, parsed without DTDs, entities or network access."""
    if len(text.encode()) > MAX_FILTER_BYTES:
        raise FilterError(f"the filter is larger than {MAX_FILTER_BYTES} bytes")
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise FilterError("document type declarations are not allowed in a filter")
    try:
        root = etree.fromstring(text.strip().encode(), _PARSER)
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
        outer = etree.fromstring(wrapped.encode(), _PARSER)
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
    names = set()
    for element in root.iter():
        name = element.attrib.pop("srsName", None)
        if name:
            names.add(name.strip())
    parser = FES20Parser() if etree.QName(root).namespace == FES20 else FES11Parser()
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
) -> ColumnElement[bool]:
    """The filter as a boolean expression; ``srid_of`` reads a GML ``srsName`` into
    (SRID code, whether the literal's x/y must be swapped into the CRS's axis order)."""
    if len(parsed.srs_names) > 1:
        raise FilterError("all geometries of a filter must use the same srsName")
    filter_srid, swap = default_srid, False
    if parsed.srs_names:
        filter_srid, swap = srid_of(next(iter(parsed.srs_names)))
    tree = _normalise(parsed.tree, swap)
    context = cql2.FilterContext(layer, role, filter_srid, extent)
    try:
        result = _FesEvaluator(context).evaluate(tree)
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
            value.name = property_name(str(value.name))
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
    """The CQL2 evaluator plus the distance operators FES has (metres, storage CRS)."""

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
