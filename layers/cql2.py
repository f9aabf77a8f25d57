"""CQL2 filters (text and JSON) → SQLAlchemy expressions, through pygeofilter's AST.

pygeofilter parses; this module walks the tree and builds SQLAlchemy Core expressions
whose identifiers come only from the catalog fields the caller's role may query and
whose values are bound parameters. Geometry literals are moved into the storage CRS
(``filter-crs``, official Stereo 70 path) so spatial predicates use the GiST index.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import lark
import orjson
import shapely
import sqlalchemy as sa
from pygeofilter import ast, values
from pygeofilter.backends.evaluator import Evaluator, handle
from pygeofilter.parsers.cql2_json import parse as parse_json
from pygeofilter.parsers.cql2_json.parser import walk_cql_json
from pygeofilter.parsers.cql2_text import parser as text_parser
from shapely.geometry.base import BaseGeometry
from sqlalchemy.sql.elements import ColumnElement

from gis_core.errors import InvalidParameter, OutsideGridError
from layers.catalog import Field, LayerDefinition
from layers.roles import visible_fields
from layers.spatial import CRS84_SRID, geometry_to_storage

_WKT_KEYWORD = re.compile(
    r"\b(point|linestring|polygon|multipoint|multilinestring|multipolygon|"
    r"geometrycollection|bbox|interval|timestamp|date)\s*\(",
    re.IGNORECASE,
)
LANGUAGES = ("cql2-text", "cql2-json")
GEOMETRY_NAMES = ("geom", "geometry")
SQL_TYPES: dict[str, Any] = {
    "string": sa.Text(),
    "integer": sa.BigInteger(),
    "number": sa.Float(),
    "boolean": sa.Boolean(),
    "date-time": sa.DateTime(timezone=True),
    "date": sa.Date(),
}
# Spatial predicates for which the part of a literal outside the layer's extent cannot
# change the answer, so the literal may be clipped to the extent before transforming.
CLIPPABLE = frozenset({"INTERSECTS", "WITHIN", "DISJOINT"})
SPATIAL_FUNCTIONS: dict[str, Callable[..., ColumnElement[bool]]] = {
    "INTERSECTS": sa.func.ST_Intersects,
    "DISJOINT": sa.func.ST_Disjoint,
    "CONTAINS": sa.func.ST_Contains,
    "WITHIN": sa.func.ST_Within,
    "TOUCHES": sa.func.ST_Touches,
    "CROSSES": sa.func.ST_Crosses,
    "OVERLAPS": sa.func.ST_Overlaps,
    "EQUALS": sa.func.ST_Equals,
}


# What pygeofilter 0.4's CQL2 text grammar lacks, added to it with Lark's ``%extend``:
# the integer division ``div`` and the remainder ``%`` of CQL2's arithmetic class,
# ``T_DISJOINT`` of its temporal functions, and a boolean expression (``true``, a
# boolean property) standing alone as a condition, as in ``true OR x = 1`` (CQL2
# booleanExpression). The only grammar ambiguity this adds, ``( expression )`` versus
# ``( condition )`` at ``)``, is resolved as a parenthesised expression, which is then
# read as a condition: both readings mean the same.
_GRAMMAR_EXTENSIONS = r"""
%extend product: product "div"i atom -> integer_division
               | product "%" atom -> remainder
%extend predicate: expression -> truth
%extend _binary_temporal_predicate_func: "T_DISJOINT"i
"""


@dataclass
class IntegerDivision(ast.Expression):
    """CQL2 ``div``: the quotient truncated toward zero (as PostgreSQL's ``div``)."""

    lhs: ast.ScalarAstType
    rhs: ast.ScalarAstType

    def get_sub_nodes(self) -> list[ast.AstType]:
        return [self.lhs, self.rhs]


@dataclass
class Remainder(ast.Expression):
    """CQL2 ``%``: the remainder, with the sign of the dividend (as PostgreSQL's ``mod``)."""

    lhs: ast.ScalarAstType
    rhs: ast.ScalarAstType

    def get_sub_nodes(self) -> list[ast.AstType]:
        return [self.lhs, self.rhs]


@dataclass
class Truth(ast.Predicate):
    """A boolean expression used as a condition: a literal or a boolean property."""

    operand: ast.AstType

    def get_sub_nodes(self) -> list[ast.AstType]:
        return [self.operand]


@lark.v_args(meta=False, inline=True)
class _TextTransformer(text_parser.CQLTransformer):
    def integer_division(self, lhs: Any, rhs: Any) -> IntegerDivision:
        return IntegerDivision(lhs, rhs)

    def remainder(self, lhs: Any, rhs: Any) -> Remainder:
        return Remainder(lhs, rhs)

    def truth(self, operand: Any) -> Truth:
        return Truth(operand)

    def binary_temporal_predicate(self, lhs: Any, op: Any, rhs: Any) -> ast.Node:
        """``T_DISJOINT``, which pygeofilter does not map, is not ``T_INTERSECTS``."""
        if str(op).lower() == "t_disjoint":
            return ast.Not(ast.TimeOverlaps(lhs, rhs))
        return super().binary_temporal_predicate(lhs, op, rhs)


@cache
def _text_parser() -> lark.Lark:
    """pygeofilter's own CQL2 text grammar plus ``_GRAMMAR_EXTENSIONS`` (built once)."""
    module_dir = Path(text_parser.__file__).parent
    grammar = (module_dir / "grammar.lark").read_text(encoding="utf-8")
    quiet = logging.getLogger("lark")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # pygeofilter turns Lark's debug log on at import
    try:
        return lark.Lark(
            grammar + _GRAMMAR_EXTENSIONS,
            parser="lalr",
            maybe_placeholders=False,
            transformer=_TextTransformer(),
            import_paths=[str(module_dir.parent)],
        )
    finally:
        quiet.setLevel(level)


def parse_text(text: str) -> ast.Node:
    tree: ast.Node = _text_parser().parse(text)
    return tree


def sql_type(field: Field) -> Any:
    """The SQL type a value compared with ``field`` is cast to (its format first:
    ``date`` and ``date-time`` strings are compared as dates and instants)."""
    kind = field.format if field.format in SQL_TYPES else field.type
    return SQL_TYPES.get(kind, sa.Text())


@dataclass(frozen=True)
class FilterContext:
    """What a filter may refer to: the layer, the role's fields, the literals' CRS."""

    layer: LayerDefinition
    role: str
    filter_srid: int = CRS84_SRID
    extent: tuple[float, float, float, float] | None = None


@dataclass(frozen=True, eq=False)
class _Attr:
    field: Field | None  # None: the geometry

    def sql(self, layer: LayerDefinition) -> ColumnElement[Any]:
        return layer.geom if self.field is None else self.field.expr


@dataclass(frozen=True)
class _Geom:
    geom: BaseGeometry


def parse_filter(text: str, lang: str | None) -> ast.Node:
    """Parse ``text`` in ``lang`` (default cql2-text); syntax errors become a 400."""
    language = lang or "cql2-text"
    if language not in LANGUAGES:
        raise InvalidParameter(
            f"filter-lang {language!r} is not supported: use cql2-text or cql2-json",
            locator="filter-lang",
        )
    stripped = _upper_wkt_keywords(text.strip()) if language == "cql2-text" else text.strip()
    try:
        if language == "cql2-json":
            tree = parse_json(_standard_json(orjson.loads(stripped)))
            return Truth(tree) if isinstance(tree, bool) else tree
        return parse_text(stripped)
    except Exception as exc:  # lark, orjson and pygeofilter all raise their own types
        raise InvalidParameter(
            f"invalid {language} filter: {str(exc).splitlines()[0]}", locator="filter"
        ) from None


def _upper_wkt_keywords(text: str) -> str:
    """pygeofilter's grammar knows ``POINT(`` but not ``point(``: upper-case geometry
    keywords outside string literals (CQL2 keywords are case-insensitive)."""
    parts = text.split("'")
    for index in range(0, len(parts), 2):
        parts[index] = _WKT_KEYWORD.sub(lambda m: m.group(1).upper() + "(", parts[index])
    return "'".join(parts)


def _standard_json(node: Any) -> Any:
    """Adapt CQL2-JSON 1.0 to what pygeofilter 0.4 reads: ``between`` with three args
    (it expects ``[x, [low, high]]``), ``{"bbox": [...]}`` (it swaps the axes), which
    becomes the equivalent GeoJSON polygon, and the ``div`` and ``%`` operators it does
    not know, which become finished AST nodes (pygeofilter passes those through)."""
    if isinstance(node, list):
        return [_standard_json(item) for item in node]
    if not isinstance(node, dict):
        return node
    if node.get("op") == "t_disjoint":
        return {"op": "not", "args": [{**node, "op": "t_intersects"}]}
    integer_ops = {"div": IntegerDivision, "%": Remainder}
    if node.get("op") in integer_ops and isinstance(node.get("args"), list):
        args = node["args"]
        if len(args) != 2:
            raise ValueError(f"{node['op']!r} takes two arguments")
        lhs, rhs = (walk_cql_json(_standard_json(arg)) for arg in args)
        return integer_ops[node["op"]](lhs, rhs)
    if "bbox" in node and isinstance(node["bbox"], list) and len(node["bbox"]) in (4, 6):
        box = [float(v) for v in node["bbox"]]
        if len(box) == 6:
            box = [box[0], box[1], box[3], box[4]]
        return shapely.geometry.mapping(shapely.box(box[0], box[1], box[2], box[3]))
    adapted = {key: _standard_json(value) for key, value in node.items()}
    args = adapted.get("args")
    if adapted.get("op") == "between" and isinstance(args, list) and len(args) == 3:
        adapted["args"] = [args[0], [args[1], args[2]]]
    return adapted


def to_sql(tree: ast.Node, context: FilterContext) -> ColumnElement[bool]:
    """The filter as a boolean SQLAlchemy expression over the layer's source."""
    try:
        result = _SqlEvaluator(context).evaluate(tree)
    except (InvalidParameter, OutsideGridError):
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise InvalidParameter(f"unsupported filter: {exc}", locator="filter") from None
    if isinstance(result, bool):
        return sa.true() if result else sa.false()
    if not isinstance(result, ColumnElement):
        raise InvalidParameter("the filter is not a condition", locator="filter")
    return result


def compile_filter(text: str, lang: str | None, context: FilterContext) -> ColumnElement[bool]:
    return to_sql(parse_filter(text, lang), context)


class _SqlEvaluator(Evaluator):
    """pygeofilter AST → SQLAlchemy Core; every identifier is looked up in the catalog."""

    def __init__(self, context: FilterContext) -> None:
        self.context = context
        self.fields = {f.name: f for f in visible_fields(context.layer, context.role)}

    # -- leaves -------------------------------------------------------------------------
    @handle(ast.Attribute)
    def attribute(self, node: ast.Attribute) -> _Attr:
        name = str(node.name)
        if name in GEOMETRY_NAMES:
            return _Attr(None)
        found = self.fields.get(name)
        if found is None or not found.queryable:
            raise InvalidParameter(
                f"{name} is not a queryable of {self.context.layer.id!r}", locator="filter"
            )
        return _Attr(found)

    @handle(str, float, int, bool, datetime, date, timedelta)
    def literal(self, node: object) -> object:
        return node

    @handle(values.Interval)
    def interval(self, node: values.Interval, start: object, end: object) -> tuple[object, object]:
        return (start, end)

    @handle(values.Geometry)
    def geometry(self, node: values.Geometry) -> _Geom:
        return _Geom(shapely.geometry.shape(node.__geo_interface__))

    @handle(values.Envelope)
    def envelope(self, node: values.Envelope) -> _Geom:
        return _Geom(shapely.box(node.x1, node.y1, node.x2, node.y2))

    @handle(ast.Function)
    def function(self, node: ast.Function, *arguments: object) -> object:
        name = str(node.name).lower()
        if name == "lower" and len(arguments) == 1:
            return sa.func.lower(self._sql(arguments[0], None))
        if name == "bbox" and len(arguments) in (4, 6):
            coords = [float(str(a)) for a in arguments]
            if len(coords) == 6:
                coords = [coords[0], coords[1], coords[3], coords[4]]
            return _Geom(shapely.box(coords[0], coords[1], coords[2], coords[3]))
        raise InvalidParameter(f"unsupported function {node.name!r}", locator="filter")

    # -- logic --------------------------------------------------------------------------
    @handle(ast.Not)
    def not_(self, node: ast.Not, sub: object) -> ColumnElement[bool]:
        return sa.not_(self._condition(sub))

    @handle(ast.And)
    def and_(self, node: ast.And, lhs: object, rhs: object) -> ColumnElement[bool]:
        return sa.and_(self._condition(lhs), self._condition(rhs))

    @handle(ast.Or)
    def or_(self, node: ast.Or, lhs: object, rhs: object) -> ColumnElement[bool]:
        return sa.or_(self._condition(lhs), self._condition(rhs))

    # -- predicates ---------------------------------------------------------------------
    @handle(ast.Comparison, subclasses=True)
    def comparison(self, node: ast.Comparison, lhs: object, rhs: object) -> ColumnElement[bool]:
        left, right = self._pair(lhs, rhs)
        op = node.op.value
        operations: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
            "=": lambda a, b: a == b,
            "<>": lambda a, b: a != b,
            "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b,
            ">": lambda a, b: a > b,
            ">=": lambda a, b: a >= b,
        }
        return operations[op](left, right)

    @handle(ast.Between)
    def between(
        self, node: ast.Between, lhs: object, low: object, high: object
    ) -> ColumnElement[bool]:
        field = _field_of(lhs)
        expr = self._sql(lhs, field).between(self._sql(low, field), self._sql(high, field))
        return sa.not_(expr) if node.not_ else expr

    @handle(ast.Like)
    def like(self, node: ast.Like, lhs: object) -> ColumnElement[bool]:
        pattern = node.pattern
        if isinstance(pattern, ast.Function):
            pattern = self.evaluate(pattern)
        left = sa.cast(self._sql(lhs, None), sa.Text)
        right = self._sql(pattern, None)
        expr = left.ilike(right) if node.nocase else left.like(right)
        return sa.not_(expr) if node.not_ else expr

    @handle(ast.In)
    def in_(self, node: ast.In, lhs: object, *options: object) -> ColumnElement[bool]:
        field = _field_of(lhs)
        expr = self._sql(lhs, field).in_([self._sql(o, field) for o in options])
        return sa.not_(expr) if node.not_ else expr

    @handle(ast.IsNull)
    def is_null(self, node: ast.IsNull, lhs: object) -> ColumnElement[bool]:
        expr = self._sql(lhs, None)
        return expr.is_not(None) if node.not_ else expr.is_(None)

    @handle(ast.Arithmetic, subclasses=True)
    def arithmetic(self, node: ast.Arithmetic, lhs: object, rhs: object) -> object:
        return self._arithmetic(node.op.value, lhs, rhs)

    @handle(IntegerDivision)
    def integer_division(self, node: IntegerDivision, lhs: object, rhs: object) -> object:
        return self._arithmetic("div", lhs, rhs)

    @handle(Remainder)
    def remainder(self, node: Remainder, lhs: object, rhs: object) -> object:
        return self._arithmetic("%", lhs, rhs)

    @handle(Truth)
    def truth(self, node: Truth, operand: object) -> ColumnElement[bool]:
        """``true``, ``false`` or a boolean property as a whole condition."""
        if isinstance(operand, bool):
            return sa.true() if operand else sa.false()
        if isinstance(operand, _Attr) and operand.field is not None:
            if operand.field.type == "boolean":
                return sa.cast(operand.field.expr, sa.Boolean) == sa.true()
            raise InvalidParameter(
                f"{operand.field.name} is not a boolean, so it is not a condition",
                locator="filter",
            )
        if isinstance(operand, ColumnElement):
            return operand
        raise InvalidParameter("this expression is not a condition", locator="filter")

    @handle(ast.SpatialComparisonPredicate, subclasses=True)
    def spatial(
        self, node: ast.SpatialComparisonPredicate, lhs: object, rhs: object
    ) -> ColumnElement[bool]:
        name = node.op.name
        left, right = self._spatial_operand(lhs, name), self._spatial_operand(rhs, name)
        if left is None or right is None:
            # The literal lies beyond the layer: nothing intersects, within or equals it.
            return sa.true() if name == "DISJOINT" else sa.false()
        return SPATIAL_FUNCTIONS[name](left, right)

    @handle(ast.TemporalPredicate, subclasses=True)
    def temporal(
        self, node: ast.TemporalPredicate, lhs: object, rhs: object
    ) -> ColumnElement[bool]:
        field = _field_of(lhs) or _field_of(rhs)
        left, right = (lhs, rhs) if _field_of(lhs) else (rhs, lhs)
        instant = self._sql(left, field)
        start, end = right if isinstance(right, tuple) else (right, right)
        lo = None if start in ("..", None) else self._sql(start, field)
        hi = None if end in ("..", None) else self._sql(end, field)
        return _temporal_condition(node.op.name, instant, lo, hi)

    # -- helpers ------------------------------------------------------------------------
    def _arithmetic(self, op: str, lhs: object, rhs: object) -> object:
        """Constants are folded here; anything else becomes SQL with the same meaning:
        ``/`` divides as numbers even between integer columns (PostgreSQL would
        truncate), ``div`` truncates toward zero and ``%`` keeps the dividend's sign."""
        if op in ("/", "div", "%") and _is_number(rhs) and rhs == 0:
            raise InvalidParameter("division by zero in the filter", locator="filter")
        if _is_number(lhs) and _is_number(rhs):
            return _constant_arithmetic(op, lhs, rhs)  # type: ignore[arg-type]
        left, right = self._sql(lhs, None), self._sql(rhs, None)
        operations: dict[str, Callable[[Any, Any], Any]] = {
            "+": lambda a, b: a + b,
            "-": lambda a, b: a - b,
            "*": lambda a, b: a * b,
            "/": lambda a, b: sa.cast(a, sa.Numeric) / sa.func.nullif(sa.cast(b, sa.Numeric), 0),
            "div": lambda a, b: sa.func.div(
                sa.cast(a, sa.Numeric), sa.func.nullif(sa.cast(b, sa.Numeric), 0)
            ),
            "%": lambda a, b: sa.func.mod(
                sa.cast(a, sa.Numeric), sa.func.nullif(sa.cast(b, sa.Numeric), 0)
            ),
        }
        if op not in operations:
            raise InvalidParameter(f"unsupported operator {op!r}", locator="filter")
        return operations[op](left, right)

    def _pair(self, lhs: object, rhs: object) -> tuple[Any, Any]:
        field = _field_of(lhs) or _field_of(rhs)
        return self._sql(lhs, field), self._sql(rhs, field)

    def _sql(self, value: object, field: Field | None) -> Any:
        """A SQL operand: columns from the catalog, literals as typed bound parameters."""
        if isinstance(value, _Attr):
            if value.field is None:
                raise InvalidParameter("the geometry can only be used in spatial predicates")
            return value.field.expr
        if isinstance(value, _Geom):
            raise InvalidParameter("a geometry can only be used in spatial predicates")
        if isinstance(value, ColumnElement):
            return value
        if field is not None and field.type in SQL_TYPES:
            kind = field.format if field.format in SQL_TYPES else field.type
            return sa.cast(sa.literal(_text_if_needed(value, kind)), sql_type(field))
        return sa.literal(value)

    def _condition(self, value: object) -> ColumnElement[bool]:
        if isinstance(value, bool):
            return sa.true() if value else sa.false()
        if isinstance(value, ColumnElement):
            return value
        raise InvalidParameter("a logical operator needs conditions", locator="filter")

    def _spatial_operand(self, value: object, predicate: str) -> Any:
        if isinstance(value, _Attr):
            if value.field is not None:
                raise InvalidParameter(f"{value.field.name} is not a geometry", locator="filter")
            return self.context.layer.geom
        if isinstance(value, _Geom):
            layer = self.context.layer
            storage = geometry_to_storage(
                value.geom,
                self.context.filter_srid,
                layer,
                self.context.extent,
                clip=predicate in CLIPPABLE,
            )
            if storage is None:
                return None
            return sa.func.ST_GeomFromWKB(
                sa.literal(shapely.to_wkb(storage), sa.LargeBinary), layer.storage_srid
            )
        raise InvalidParameter("spatial predicates compare geometries", locator="filter")


def _field_of(value: object) -> Field | None:
    return value.field if isinstance(value, _Attr) else None


def _text_if_needed(value: object, kind: str) -> object:
    """Strings are sent as text and cast by PostgreSQL, which reports bad values as 400."""
    if kind == "string" and not isinstance(value, str):
        return str(value).lower() if isinstance(value, bool) else str(value)
    return value


def _truncated_quotient(a: float, b: float) -> float:
    """The quotient rounded toward zero, exact for integers (PostgreSQL's ``div``)."""
    if isinstance(a, int) and isinstance(b, int):
        quotient = abs(a) // abs(b)
        return quotient if (a >= 0) == (b >= 0) else -quotient
    return float(math.trunc(a / b))


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _constant_arithmetic(op: str, a: float, b: float) -> float:
    """Folded constants, with the same rules as the SQL the columns get."""
    if op in ("/", "div", "%") and b == 0:
        raise InvalidParameter("division by zero in the filter", locator="filter")
    results: dict[str, Callable[[], float]] = {
        "+": lambda: a + b,
        "-": lambda: a - b,
        "*": lambda: a * b,
        "/": lambda: a / b,
        "div": lambda: _truncated_quotient(a, b),
        "%": lambda: a - b * _truncated_quotient(a, b),
    }
    if op not in results:
        raise InvalidParameter(f"unsupported operator {op!r}", locator="filter")
    return results[op]()


def _temporal_condition(op: str, instant: Any, lo: Any, hi: Any) -> ColumnElement[bool]:
    """Instant (the field) against an instant or interval (``None`` bound = open)."""
    after_start = sa.true() if lo is None else instant >= lo
    before_end = sa.true() if hi is None else instant <= hi
    conditions: dict[str, Callable[[], ColumnElement[bool]]] = {
        "TOVERLAPS": lambda: sa.and_(after_start, before_end),
        "OVERLAPPEDBY": lambda: sa.and_(after_start, before_end),
        "TEQUALS": lambda: sa.and_(after_start, before_end),
        "DISJOINT": lambda: sa.not_(sa.and_(after_start, before_end)),
        "BEFORE": lambda: sa.false() if lo is None else instant < lo,
        "AFTER": lambda: sa.false() if hi is None else instant > hi,
        "DURING": lambda: sa.and_(
            sa.true() if lo is None else instant > lo, sa.true() if hi is None else instant < hi
        ),
    }
    if op not in conditions:
        raise InvalidParameter(f"temporal operator {op} is not supported", locator="filter")
    return conditions[op]()
