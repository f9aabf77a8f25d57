"""Feature queries as SQLAlchemy Core: one statement per page, GeoJSON built by PostGIS.

Each feature comes back from the database as finished GeoJSON text (the geometry from
``ST_AsGeoJSON`` spliced in as text, never re-parsed), so Python only joins byte strings
and streams them. Values are bound parameters; columns come from the catalog only.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from weakref import WeakKeyDictionary

import orjson
import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Connection, CursorResult
from sqlalchemy.sql import Select, operators
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.util import find_tables
from sqlalchemy.sql.visitors import ExternallyTraversible, iterate, replacement_traverse

from layers.catalog import ETRS89, Field, LayerDefinition
from layers.roles import row_filter, visible_fields
from layers.spatial import CRS84_SRID, StorageBox, decimals, output_geometry

# Tables smaller than this (by the planner's estimate) get an exact numberMatched.
EXACT_COUNT_LIMIT = 100_000
# Rows fetched per round trip while streaming a page.
STREAM_BATCH = 1_000
# Named parameters of a reusable page statement (``compiled_page``).
BOX_NAMES = ("box_minx", "box_miny", "box_maxx", "box_maxy")
_TYPES: dict[str, Any] = {
    **dict.fromkeys(BOX_NAMES, sa.Float()),
    "at_low": sa.DateTime(timezone=True),
    "at_high": sa.DateTime(timezone=True),
    "page_limit": sa.Integer(),
    "page_offset": sa.Integer(),
}
# Arguments of one SQL function call, below PostgreSQL's limit of 100.
MAX_ARGUMENTS = 90
# Compiled page SQL per layer definition and request shape, at most this many each.
MAX_SHAPES = 256
_COMPILED: WeakKeyDictionary[LayerDefinition, dict[tuple[Any, ...], tuple[str, dict[str, Any]]]] = (
    WeakKeyDictionary()
)

Interval = tuple[datetime | None, datetime | None]


@dataclass(frozen=True, eq=False)
class FeatureQuery:
    """One validated items request: every part was checked before any SQL is built."""

    layer: LayerDefinition
    role: str
    out_srid: int = CRS84_SRID
    box: StorageBox | None = None
    at: Interval | None = None
    conditions: tuple[ColumnElement[bool], ...] = ()
    sort: tuple[tuple[Field, bool], ...] = ()
    fields: tuple[Field, ...] | None = None
    limit: int = 10
    offset: int = 0

    @property
    def output_fields(self) -> tuple[Field, ...]:
        if self.fields is not None:
            return self.fields
        return visible_fields(self.layer, self.role)

    @property
    def filtered(self) -> bool:
        return self.box is not None or self.at is not None or bool(self.conditions)


def temporal_condition(
    layer: LayerDefinition, at: Interval | None, *, named: bool = False
) -> ColumnElement[bool]:
    """Current versions without ``at``; otherwise the versions valid during ``at``."""
    if layer.temporal is None:
        return sa.true()
    start, end = (layer.main.c[name] for name in layer.temporal)
    if at is None:
        return end.is_(None)
    low, high = (_value("at_low", at[0], named), _value("at_high", at[1], named))
    began = sa.true() if at[1] is None else start <= high
    not_ended = end.is_(None) if at[0] is None else sa.or_(end.is_(None), end > low)
    return sa.and_(began, not_ended)


def _value(name: str, value: Any, named: bool) -> Any:
    """A request value: a named bound parameter in a reusable statement, else itself."""
    return sa.bindparam(name, value, type_=_TYPES.get(name)) if named else value


def where_clause(query: FeatureQuery, *, named: bool = False) -> ColumnElement[bool]:
    """Role rows, time, bbox and filters: every condition of the request.

    ``named`` puts the request's values (box, time) into named parameters, so the
    statement's SQL depends only on the request's shape (see ``compiled_page``).
    """
    layer = query.layer
    parts = [row_filter(layer, query.role), temporal_condition(layer, query.at, named=named)]
    if query.box is not None:
        if query.box.bounds is None:
            return sa.false()
        corners = [_value(n, v, named) for n, v in zip(BOX_NAMES, query.box.bounds, strict=True)]
        geographic = query.box.geographic and layer.etrs89 is not None
        column = layer.etrs89 if geographic and layer.etrs89 is not None else layer.geom
        srid = ETRS89 if geographic else layer.storage_srid
        envelope = sa.func.ST_MakeEnvelope(*corners, srid)
        # A row whose bounding box lies inside the (rectangular) box intersects it; that
        # test reads only the stored box, so most rows of a page skip the exact one
        # (15 % of PostgreSQL's time on a 5 000-feature page).
        inside = column.op("@")(envelope)
        parts.append(sa.or_(inside, sa.func.ST_Intersects(column, envelope)))
    parts.extend(query.conditions)
    return sa.and_(*parts)


def properties_json(fields: tuple[Field, ...]) -> ColumnElement[Any]:
    """The fields as one JSON object in text: ``{"name":value,...}`` in catalog order.

    Each value goes through ``to_json`` and the pieces are concatenated, which costs
    PostgreSQL about 10 % less per feature than ``json_build_object(...)::text`` and
    gives compact JSON (no blanks around the colons). The names are catalog names,
    JSON-quoted here and bound as parameters.
    """
    if not fields:
        return sa.cast(sa.literal("{}"), sa.Text)
    parts: list[ColumnElement[Any]] = []
    for i, f in enumerate(fields):
        name = orjson.dumps(f.name).decode()[1:-1]  # JSON-escaped, without its quotes
        parts.append(sa.literal_column("',\"'" if i else "'{\"'", sa.Text))
        parts.extend((sa.literal(name, sa.Text), sa.literal_column("'\":'", sa.Text)))
        parts.append(sa.func.coalesce(sa.cast(sa.func.to_json(f.expr), sa.Text), "null"))
    parts.append(sa.literal_column("'}'", sa.Text))
    return _concat(parts)


def _concat(parts: list[ColumnElement[Any]]) -> ColumnElement[Any]:
    """``concat`` of any number of parts (a PostgreSQL function takes 100 arguments)."""
    if len(parts) <= MAX_ARGUMENTS:
        return sa.func.concat(*parts)
    step = MAX_ARGUMENTS
    return _concat([sa.func.concat(*parts[i : i + step]) for i in range(0, len(parts), step)])


def feature_text(
    layer: LayerDefinition, fields: tuple[Field, ...], srid: int
) -> ColumnElement[str]:
    """One finished GeoJSON Feature as text; the geometry is spliced in, not re-parsed."""
    geometry = sa.func.ST_AsGeoJSON(output_geometry(layer, srid), decimals(srid), 0)
    return sa.func.concat(
        '{"type":"Feature","id":',
        sa.cast(sa.func.to_json(layer.id_expr), sa.Text),
        ',"geometry":',
        sa.func.coalesce(geometry, "null"),
        ',"properties":',
        properties_json(fields),
        "}",
    )


def order_by(query: FeatureQuery) -> list[ColumnElement[Any]]:
    """The requested sort keys, then the id, so pages never overlap or skip."""
    keys: list[ColumnElement[Any]] = [
        field.expr.desc() if descending else field.expr.asc() for field, descending in query.sort
    ]
    keys.append(query.layer.id_expr.asc())
    return keys


def page_statement(
    query: FeatureQuery,
    *,
    named: bool = False,
    as_bytes: bool = False,
) -> Select[Any]:
    """One GeoJSON feature per row, one row more than the limit to tell whether a next
    page exists. ``as_bytes``: each feature as UTF-8 ``bytea`` rather than text."""
    text: ColumnElement[Any] = feature_text(query.layer, query.output_fields, query.out_srid)
    return texts_after_paging(query, text, named=named, as_bytes=as_bytes)


def texts_after_paging(
    query: FeatureQuery,
    text: ColumnElement[Any],
    *,
    named: bool = False,
    as_bytes: bool = False,
) -> Select[Any]:
    """``text`` (an expression over the layer's tables) for each row of the page, plus
    one look-ahead row, in the page's order (as UTF-8 ``bytea`` with ``as_bytes``).

    The rows are chosen (filtered, sorted, limited) in a subquery that carries only the
    columns ``text`` reads, and ``text`` is built over its result: PostgreSQL would
    otherwise build it below the LIMIT, also for the rows that OFFSET skips, so page n
    of a paging client paid for n pages of features.
    """
    layer = query.layer
    keys = order_by(query)
    used = _source_columns(layer, [text])
    sort_keys = [key.element for key in keys]
    chosen = (
        sa.select(
            *(column.label(f"c{i}") for i, column in enumerate(used)),
            *(key.label(f"k{i}") for i, key in enumerate(sort_keys)),
        )
        .select_from(layer.source)
        .where(where_clause(query, named=named))
        .order_by(*keys)
        .limit(_value("page_limit", query.limit + 1, named))
        .offset(_value("page_offset", query.offset, named))
        .subquery("page")
    )
    mapping = {id(column): chosen.c[f"c{i}"] for i, column in enumerate(used)}

    def read_from_page(element: ExternallyTraversible, **_: Any) -> ExternallyTraversible | None:
        return mapping.get(id(element))

    text = replacement_traverse(text, {}, read_from_page)
    if as_bytes:
        text = sa.func.convert_to(text, sa.literal_column("'UTF8'"))
    # the subquery's order, which PostgreSQL keeps without sorting again
    outer_keys = [
        chosen.c[f"k{i}"].desc() if _descending(key) else chosen.c[f"k{i}"].asc()
        for i, key in enumerate(keys)
    ]
    return sa.select(text.label("feature")).select_from(chosen).order_by(*outer_keys)


def _descending(key: ColumnElement[Any]) -> bool:
    return getattr(key, "modifier", None) is operators.desc_op


def _source_columns(
    layer: LayerDefinition, expressions: list[ColumnElement[Any]]
) -> list[ColumnElement[Any]]:
    """The columns of the layer's tables that ``expressions`` read, in a stable order
    (also those read inside correlated subqueries, like the parcels' owners)."""
    tables = {id(table) for table in find_tables(layer.source, include_aliases=True)}
    found: dict[tuple[int, str], ColumnElement[Any]] = {}
    for expression in expressions:
        for element in iterate(expression):
            table = getattr(element, "table", None)
            if isinstance(element, sa.ColumnClause) and id(table) in tables:
                found.setdefault((id(table), element.key), element)
    return list(found.values())


def compiled_page(
    conn: Connection, query: FeatureQuery, *, as_bytes: bool = False
) -> tuple[str, dict[str, Any]] | None:
    """The page's SQL and parameters, compiled once per request shape and process.

    Building and compiling the SQLAlchemy expression of a page costs more Python time
    than PostgreSQL needs to answer a bbox page, so the common requests (no filter
    conditions) reuse SQL compiled for their shape (layer, role, CRS, fields, sort, and
    whether a box and a time are given) with the values as named parameters. The SQL
    text is then the same on every request, so psycopg prepares it on the server too.
    Requests with filter conditions are compiled each time (None).
    """
    if query.conditions:
        return None
    shape = (
        query.role,
        query.out_srid,
        tuple(f.name for f in query.output_fields),
        tuple((f.name, descending) for f, descending in query.sort),
        None if query.box is None else (query.box.bounds is None, query.box.geographic),
        None if query.at is None else (query.at[0] is None, query.at[1] is None),
        conn.dialect.name,
        as_bytes,
    )
    shapes = _COMPILED.setdefault(query.layer, {})
    found = shapes.get(shape)
    if found is None:
        compiled = page_statement(query, named=True, as_bytes=as_bytes).compile(
            dialect=conn.dialect, compile_kwargs={"render_postcompile": True}
        )
        found = (compiled.string, dict(compiled.params))
        if len(shapes) >= MAX_SHAPES:
            shapes.clear()
        shapes[shape] = found
    sql, constants = found
    values: dict[str, Any] = {"page_limit": query.limit + 1, "page_offset": query.offset}
    if query.box is not None and query.box.bounds is not None:
        values.update(zip(BOX_NAMES, query.box.bounds, strict=True))
    if query.at is not None:
        values.update({"at_low": query.at[0], "at_high": query.at[1]})
    return sql, {**constants, **values}


def _page_result(conn: Connection, query: FeatureQuery) -> CursorResult[Any]:
    compiled = compiled_page(conn, query)
    if compiled is None:
        return conn.execute(page_statement(query))
    return conn.exec_driver_sql(*compiled)


def item_statement(
    layer: LayerDefinition, role: str, srid: int, feature_id: int | str
) -> Select[Any]:
    """A single feature by id, under the same row rule as the items (any version)."""
    text = feature_text(layer, visible_fields(layer, role), srid)
    return (
        sa.select(text.label("feature"))
        .select_from(layer.source)
        .where(row_filter(layer, role), layer.id_expr == feature_id)
        .limit(1)
    )


def stream_page(
    conn: Connection, query: FeatureQuery, spare: Connection | None = None
) -> Iterator[list[bytes]]:
    """The page's features as UTF-8 GeoJSON, ``STREAM_BATCH`` at a time, from a
    server-side cursor; ``conn`` must be in a transaction, which with a ``spare`` has
    run no query yet.

    With psycopg the cursor is the driver's own, in binary mode, and each feature comes
    as ``bytea``: its bytes go to the client as PostgreSQL wrote them, never decoded
    into a Python string and encoded again, and no SQLAlchemy row is built per feature
    (this halves the Python time of a 5 000-feature page). Requests with filter
    conditions, and other drivers, take SQLAlchemy's streaming path.

    The page runs without parallel workers: the leader builds every feature of a page
    anyway (it sits above the sort), so the workers only added their start-up to the
    CPU each request costs, about 13 % of a 5 000-feature page. With a ``spare``
    connection the page is cut in two instead (see ``_split_page``).
    """
    compiled = compiled_page(conn, query, as_bytes=True)
    if compiled is None or conn.dialect.driver != "psycopg":
        conn.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")
        streaming = conn.execution_options(stream_results=True, yield_per=STREAM_BATCH)
        for rows in _page_result(streaming, query).partitions():
            yield [str(row[0]).encode() for row in rows]
        return
    sql, params = compiled
    driver = _driver(conn)
    try:
        if spare is None:
            driver.execute(SERIAL_PAGE)
            yield from _cursor_batches(driver, sql, params)
        else:
            yield from _split_page(driver, _driver(spare), sql, params)
    except psycopg.Error as exc:  # as SQLAlchemy would raise it (callers catch those)
        raise sa.exc.DBAPIError.instance(sql, params, exc, psycopg.Error) from None


# Every page runs without parallel workers (see ``stream_page``).
SERIAL_PAGE = "SET LOCAL max_parallel_workers_per_gather = 0"
# A snapshot id from ``pg_export_snapshot()``, checked before it is written into SQL.
SNAPSHOT_ID = re.compile(r"[0-9A-F]+-[0-9A-F]+(-[0-9]+)?")
_HELPERS: list[ThreadPoolExecutor] = []
_HELPERS_LOCK = threading.Lock()


def _driver(conn: Connection) -> psycopg.Connection[Any]:
    return conn.connection.driver_connection  # type: ignore[return-value]


def _cursor_batches(
    driver: psycopg.Connection[Any], sql: str, params: dict[str, Any]
) -> Iterator[list[bytes]]:
    with driver.cursor(name="urbangis_page", binary=True) as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(STREAM_BATCH):
            yield [bytes(row[0]) for row in rows]


def _split_page(
    driver: psycopg.Connection[Any],
    spare: psycopg.Connection[Any],
    sql: str,
    params: dict[str, Any],
) -> Iterator[list[bytes]]:
    """The page in two halves built at once by two backends, so one big page uses both
    cores of the machine when nothing else runs.

    Each backend filters and sorts the page's rows (the cheaper part) and builds the
    GeoJSON of its half only (the dearer part, since the features are built after the
    LIMIT and OFFSET). The spare backend imports the first one's snapshot, so the
    halves are two parts of the same page even while the table changes.
    """
    rows, offset = params["page_limit"], params["page_offset"]
    first = rows // 2
    driver.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    row = driver.execute(
        "SELECT pg_export_snapshot(), set_config('max_parallel_workers_per_gather', '0', true)"
    ).fetchone()
    snapshot = str(row[0]) if row else ""
    if not SNAPSHOT_ID.fullmatch(snapshot):
        raise RuntimeError(f"unexpected snapshot id {snapshot!r}")
    second = {**params, "page_limit": rows - first, "page_offset": offset + first}
    pending = _helpers().submit(_fetch_half, spare, snapshot, sql, second)
    try:
        yield from _cursor_batches(driver, sql, {**params, "page_limit": first})
        features = pending.result()
    finally:
        if not pending.done():  # the client went away: stop the other half
            spare.cancel_safe()
        wait([pending])
    for start in range(0, len(features), STREAM_BATCH):
        yield features[start : start + STREAM_BATCH]


def _fetch_half(
    spare: psycopg.Connection[Any], snapshot: str, sql: str, params: dict[str, Any]
) -> list[bytes]:
    """The second half of a split page, in the first half's snapshot."""
    try:
        spare.execute(
            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY; "
            f"SET TRANSACTION SNAPSHOT '{snapshot}'; {SERIAL_PAGE}"
        )
        with spare.cursor(binary=True) as cursor:
            cursor.execute(sql, params)
            return [bytes(row[0]) for row in cursor.fetchall()]
    finally:
        spare.rollback()


def _helpers() -> ThreadPoolExecutor:
    """The threads that wait for the second halves of split pages (made on first use)."""
    with _HELPERS_LOCK:
        if not _HELPERS:
            _HELPERS.append(ThreadPoolExecutor(max_workers=4, thread_name_prefix="page-half"))
        return _HELPERS[0]


def fetch_page(conn: Connection, query: FeatureQuery, *, serial: bool = False) -> list[str]:
    """The page (plus one look-ahead row) as a list, for small pages.

    ``serial`` (``conn`` in autocommit): the page runs without parallel workers, set
    in the same round trip (one simple query, an implicit transaction, with the values
    bound by the driver). PostgreSQL rates the bbox filter dear and plans a small page
    with two workers, which save it a fraction of a millisecond but take 15 ms and more
    to start on a busy machine, so a 100-feature page waited for them most of its time.
    Requests with filter conditions keep SQLAlchemy's path.
    """
    compiled = compiled_page(conn, query) if serial else None
    if compiled is None or conn.dialect.driver != "psycopg":
        return [row[0] for row in _page_result(conn, query)]
    sql, params = compiled
    try:
        with psycopg.ClientCursor(_driver(conn)) as cursor:
            cursor.execute(f"{SERIAL_PAGE}; {sql}", params)
            cursor.nextset()
            return [row[0] for row in cursor.fetchall()]
    except psycopg.Error as exc:  # as SQLAlchemy would raise it (callers catch those)
        raise sa.exc.DBAPIError.instance(sql, params, exc, psycopg.Error) from None


def number_matched(conn: Connection, query: FeatureQuery, rows_estimate: float) -> int | None:
    """The exact number of matches when it is cheap to know, else None (omitted).

    Never a full count of a big table: only tables the planner estimates below
    ``EXACT_COUNT_LIMIT`` rows (a never-analysed table reports -1) are counted;
    ``rows_estimate`` comes from the catalog, which reads it once per data change.
    """
    if rows_estimate >= EXACT_COUNT_LIMIT:
        return None
    count = sa.select(sa.func.count()).select_from(query.layer.source).where(where_clause(query))
    return int(conn.execute(count).scalar_one())
