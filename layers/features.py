"""OGC API – Features (Parts 1, 2 and 3) as framework-free functions.

Each endpoint takes the service, the caller's role and the query parameters and returns
an ``Answer``: a JSON document (landing page, collections, queryables, ...) that the web
layer serialises or renders as HTML, or a GeoJSON body streamed as bytes. Every
parameter is parsed and bounded before any SQL runs; errors are ``UrbanGisError``s that
carry the OGC exception code and the HTTP status.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DataError, OperationalError, ProgrammingError
from sqlalchemy.sql.elements import ColumnElement

from gis_core.errors import InvalidParameter, NotFound, UrbanGisError
from layers import cql2, queries
from layers.catalog import Catalog, Field, LayerDefinition, LayerState
from layers.roles import layer_for, visible_field, visible_fields, visible_layers
from layers.spatial import (
    CRS84_SRID,
    crs_uri,
    parse_bbox,
    parse_crs_uri,
    query_box,
)

GEOJSON = "application/geo+json"
JSON = "application/json"
SCHEMA_JSON = "application/schema+json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
HTML = "text/html"
# Pages up to this size are fetched at once; larger ones are streamed from a cursor.
STREAM_ABOVE = 2_000
# Streamed pages from this size up are built by two backends when the process is idle.
SPLIT_FROM = 2_000
CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-5/1.0/conf/sortables",
    "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/sorting",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/property-selection",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/temporal-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/arithmetic",
)
COMMON_PARAMETERS = frozenset({"f"})
ITEMS_PARAMETERS = frozenset(
    {
        "f",
        "limit",
        "offset",
        "bbox",
        "bbox-crs",
        "datetime",
        "crs",
        "filter",
        "filter-lang",
        "filter-crs",
        "sortby",
        "properties",
    }
)
GEOMETRY_FORMATS = {
    "Point": "geometry-point",
    "MultiPoint": "geometry-multipoint",
    "LineString": "geometry-linestring",
    "MultiLineString": "geometry-multilinestring",
    "Polygon": "geometry-polygon",
    "MultiPolygon": "geometry-multipolygon",
}


@dataclass(frozen=True)
class Service:
    """One deployment's OGC API: where it is published and its limits."""

    engine: Engine
    catalog: Catalog
    base_url: str
    title: str = "urbangis OGC API – Features"
    description: str = ""
    default_limit: int = 10
    max_limit: int = 10_000
    # None: the engine's own per-connection statement timeout (the settings value) holds
    timeout_ms: int | None = None


@dataclass
class Answer:
    """What an endpoint returns: a JSON document or a streamed body, plus headers."""

    status: int = 200
    media_type: str = JSON
    document: dict[str, Any] | None = None
    body: Iterable[bytes] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def content(self) -> Iterable[bytes]:
        """The bytes to send for the JSON encoding."""
        if self.body is not None:
            return self.body
        return [orjson.dumps(self.document, default=_json_default)]


Params = Sequence[tuple[str, str]]


# -- parameters -----------------------------------------------------------------------
def single_values(params: Params, allowed: frozenset[str] | None) -> dict[str, str]:
    """The query parameters as a dict; repeated or (when ``allowed``) unknown ones → 400."""
    values: dict[str, str] = {}
    for name, value in params:
        if name in values:
            raise InvalidParameter(f"parameter {name!r} is repeated", locator=name)
        if allowed is not None and name not in allowed:
            raise InvalidParameter(f"unknown query parameter: {name}", locator=name)
        values[name] = value
    return values


def parse_int(values: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """An integer parameter in [low, high]; values above ``high`` are clamped to it."""
    text = values.get(name)
    if text is None or text == "":
        return default
    try:
        number = int(text)
    except ValueError:
        raise InvalidParameter(f"{name} must be an integer, got {text!r}", locator=name) from None
    if number < low:
        raise InvalidParameter(f"{name} must be at least {low}", locator=name)
    return min(number, high)


def parse_datetime(text: str) -> queries.Interval:
    """An RFC 3339 instant or interval (``a/b``, ``../b``, ``a/..``) as UTC bounds."""
    if "/" in text:
        start_text, _, end_text = text.partition("/")
        start = _instant(start_text)
        end = _instant(end_text)
        if start is not None and end is not None and start > end:
            raise InvalidParameter("datetime interval ends before it starts", locator="datetime")
        return (start, end)
    instant = _instant(text)
    if instant is None:
        raise InvalidParameter("datetime must be an instant or an interval", locator="datetime")
    return (instant, instant)


def _instant(text: str) -> datetime | None:
    value = text.strip()
    if value in ("..", ""):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise InvalidParameter(
            f"datetime {value!r} is not RFC 3339 (e.g. 2024-03-15T00:00:00Z)", locator="datetime"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_sortby(text: str, layer: LayerDefinition, role: str) -> tuple[tuple[Field, bool], ...]:
    """``name,-other,+third``: only sortable fields the role may see."""
    keys = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        descending = item.startswith("-")
        name = item.lstrip("+-").strip()
        found = visible_field(layer, role, name, purpose="sortby")
        if not found.sortable:
            raise InvalidParameter(f"{name!r} is not a sortable item", locator="sortby")
        keys.append((found, descending))
    return tuple(keys)


def parse_properties(text: str, layer: LayerDefinition, role: str) -> tuple[Field, ...]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    return tuple(visible_field(layer, role, name, purpose="properties") for name in names)


def property_conditions(
    values: Mapping[str, str], layer: LayerDefinition, role: str
) -> tuple[ColumnElement[bool], ...]:
    """``?name=value`` filters on queryable fields (Part 1 "parameters for attributes")."""
    conditions = []
    queryable = {f.name: f for f in visible_fields(layer, role) if f.queryable}
    for name, value in values.items():
        if name in ITEMS_PARAMETERS:
            continue
        found = queryable.get(name)
        if found is None:
            raise InvalidParameter(f"unknown query parameter: {name}", locator=name)
        conditions.append(found.expr == sa.cast(sa.literal(value), cql2.sql_type(found)))
    return tuple(conditions)


# -- database access ------------------------------------------------------------------
@contextmanager
def request_connection(
    service: Service, *, single: bool = False, serial: bool = False
) -> Iterator[Connection]:
    """A read-only transaction under the request's statement timeout; SQL errors caused
    by request values (a bad cast in a filter) become 400, timeouts a clear 503.

    ``single``: the caller only runs self-contained reads (no cursor kept open), so with
    the engine's own statement timeout they run in autocommit mode, saving the BEGIN
    and COMMIT round trips of every small page.
    ``serial``: the transaction's queries run without parallel workers (set in the same
    round trip as the timeout); see ``queries.stream_page`` for why pages want that.
    """
    try:
        with service.engine.connect() as conn:
            if single and service.timeout_ms is None and not serial:
                yield conn.execution_options(isolation_level="AUTOCOMMIT")
                return
            with conn.begin():
                _set_locals(conn, service.timeout_ms, serial)
                yield conn
    except (DataError, ProgrammingError) as exc:
        raise InvalidParameter(f"the request cannot be evaluated: {_first_line(exc)}") from None
    except OperationalError as exc:
        if "statement timeout" in str(exc):
            raise _Timeout("the query took too long; narrow the bbox or the filter") from None
        raise


class _Timeout(UrbanGisError):
    http_status = 503


def _set_locals(conn: Connection, timeout_ms: int | None, serial: bool) -> None:
    """The transaction's statement timeout and parallelism, in one round trip."""
    values: dict[str, str] = {}
    if timeout_ms is not None:
        values["statement_timeout"] = str(timeout_ms)
    if serial:
        values["max_parallel_workers_per_gather"] = "0"
    if not values:
        return
    calls = ", ".join(f"set_config(:n{i}, :v{i}, true)" for i in range(len(values)))
    params = {f"n{i}": name for i, name in enumerate(values)}
    params.update({f"v{i}": value for i, value in enumerate(values.values())})
    conn.execute(sa.text(f"SELECT {calls}"), params)


def _first_line(exc: Exception) -> str:
    text = str(getattr(exc, "orig", exc)).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- links ------------------------------------------------------------------------------
def _link(href: str, rel: str, media_type: str, title: str) -> dict[str, str]:
    return {"href": href, "rel": rel, "type": media_type, "title": title}


def _url(service: Service, path: str, params: Mapping[str, str] | None = None) -> str:
    base = service.base_url.rstrip("/") + path
    if not params:
        return base
    return base + "?" + urlencode(params, quote_via=quote, safe=",:/")


def _self_links(service: Service, path: str, what: str) -> list[dict[str, str]]:
    return [
        _link(_url(service, path, {"f": "json"}), "self", JSON, f"{what} as JSON"),
        _link(_url(service, path, {"f": "html"}), "alternate", HTML, f"{what} as HTML"),
    ]


# -- endpoints ------------------------------------------------------------------------
def landing(service: Service, role: str, params: Params) -> Answer:
    single_values(params, COMMON_PARAMETERS)
    links = [
        *_self_links(service, "", "This document"),
        _link(_url(service, "/api"), "service-desc", OPENAPI, "The API definition"),
        _link(_url(service, "/api", {"f": "html"}), "service-doc", HTML, "The API documentation"),
        _link(_url(service, "/conformance"), "conformance", JSON, "Conformance classes"),
        _link(_url(service, "/collections"), "data", JSON, "The collections"),
    ]
    return Answer(
        document={"title": service.title, "description": service.description, "links": links}
    )


def conformance(service: Service, role: str, params: Params) -> Answer:
    single_values(params, COMMON_PARAMETERS)
    return Answer(document={"conformsTo": list(CONFORMANCE)})


def collections(service: Service, role: str, params: Params) -> Answer:
    single_values(params, COMMON_PARAMETERS)
    layers = visible_layers(service.catalog, role)
    with request_connection(service) as conn:
        described = [
            _collection_document(service, layer, service.catalog.state(conn, layer))
            for layer in layers
        ]
    return Answer(
        document={
            "links": _self_links(service, "/collections", "The collections"),
            "collections": described,
            "crs": [crs_uri(CRS84_SRID)],
        }
    )


def collection(service: Service, role: str, collection_id: str, params: Params) -> Answer:
    single_values(params, COMMON_PARAMETERS)
    layer = layer_for(service.catalog, collection_id, role)
    with request_connection(service) as conn:
        state = service.catalog.state(conn, layer)
    return Answer(document=_collection_document(service, layer, state))


def _collection_document(
    service: Service, layer: LayerDefinition, state: LayerState
) -> dict[str, Any]:
    path = f"/collections/{layer.id}"
    extent: dict[str, Any] = {}
    if state.extent is not None:
        extent["spatial"] = {"bbox": [list(state.extent)], "crs": crs_uri(CRS84_SRID)}
    if state.interval is not None:
        extent["temporal"] = {
            "interval": [list(state.interval)],
            "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
        }
    links = [
        *_self_links(service, path, "This collection"),
        _link(_url(service, path + "/items", {"f": "json"}), "items", GEOJSON, "Items as GeoJSON"),
        _link(_url(service, path + "/items", {"f": "html"}), "items", HTML, "Items as HTML"),
        _link(
            _url(service, path + "/queryables"),
            "http://www.opengis.net/def/rel/ogc/1.0/queryables",
            SCHEMA_JSON,
            "Queryables",
        ),
    ]
    return {
        "id": layer.id,
        "title": layer.title,
        "description": layer.abstract,
        "keywords": list(layer.keywords),
        "itemType": "feature",
        "extent": extent,
        "crs": [crs_uri(CRS84_SRID), *(crs_uri(s) for s in layer.srids)],
        "storageCrs": crs_uri(layer.storage_srid),
        "links": links,
    }


def queryables(service: Service, role: str, collection_id: str, params: Params) -> Answer:
    single_values(params, COMMON_PARAMETERS)
    layer = layer_for(service.catalog, collection_id, role)
    properties: dict[str, Any] = {
        "geom": {
            "title": "geom",
            "description": "The geometry of the collection.",
            "format": GEOMETRY_FORMATS.get(layer.geometry_type, "geometry-any"),
            "x-ogc-role": "primary-geometry",
        }
    }
    for item in visible_fields(layer, role):
        if not item.queryable:
            continue
        schema: dict[str, Any] = {"title": item.title or item.name, "type": item.type}
        if item.format:
            schema["format"] = item.format
        properties[item.name] = schema
    document = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": _url(service, f"/collections/{layer.id}/queryables"),
        "type": "object",
        "title": layer.title,
        "description": layer.abstract,
        "properties": properties,
        "additionalProperties": False,
    }
    return Answer(media_type=SCHEMA_JSON, document=document)


def item(
    service: Service, role: str, collection_id: str, feature_id: str, params: Params
) -> Answer:
    values = single_values(params, frozenset({"f", "crs"}))
    layer = layer_for(service.catalog, collection_id, role)
    srid = _output_srid(values, layer)
    key = _feature_key(feature_id)
    with request_connection(service, single=True) as conn:
        text = conn.execute(queries.item_statement(layer, role, srid, key)).scalar()
    if text is None:
        raise NotFound(
            f"feature {feature_id!r} not found in {collection_id!r}", locator="featureId"
        )
    path = f"/collections/{layer.id}/items/{feature_id}"
    links = [
        _link(_url(service, path, {"f": "json"}), "self", GEOJSON, "This feature as GeoJSON"),
        _link(_url(service, path, {"f": "html"}), "alternate", HTML, "This feature as HTML"),
        _link(_url(service, f"/collections/{layer.id}"), "collection", JSON, "The collection"),
    ]
    body = text[:-1] + ',"links":' + orjson.dumps(links).decode() + "}"
    return Answer(
        media_type=GEOJSON, body=[body.encode()], headers={"Content-Crs": f"<{crs_uri(srid)}>"}
    )


def _feature_key(feature_id: str) -> int:
    """Feature ids are the tables' bigint keys; anything else cannot exist."""
    if not feature_id.isdigit() or len(feature_id) > 18:
        raise NotFound(f"feature {feature_id!r} not found", locator="featureId")
    return int(feature_id)


def _output_srid(values: Mapping[str, str], layer: LayerDefinition) -> int:
    text = values.get("crs")
    if text is None:
        return CRS84_SRID
    return parse_crs_uri(text, layer.srids, parameter="crs")


def items(service: Service, role: str, collection_id: str, params: Params) -> Answer:
    """A page of features; ``numberMatched`` only when it is cheap and exact."""
    layer = layer_for(service.catalog, collection_id, role)
    values = single_values(params, None)
    limit = parse_int(values, "limit", service.default_limit, 1, service.max_limit)
    offset = parse_int(values, "offset", 0, 0, 10**9)
    srid = _output_srid(values, layer)
    with request_connection(service, single=True) as conn:
        state = service.catalog.state(conn, layer)
        query = build_query(values, layer, role, state, srid, limit, offset)
        if limit > STREAM_ABOVE:
            matched = (
                queries.number_matched(conn, query, state.rows_estimate)
                if query.offset == 0
                else None
            )
            body: Iterable[bytes] = _streamed_collection(service, query, values, matched)
        else:
            rows = queries.fetch_page(conn, query, serial=True)
            matched = _matched(conn, query, len(rows), state.rows_estimate)
            body = [_collection_bytes(service, query, values, rows, matched)]
    return Answer(media_type=GEOJSON, body=body, headers=_items_headers(srid, matched))


def _items_headers(srid: int, matched: int | None) -> dict[str, str]:
    headers = {"Content-Crs": f"<{crs_uri(srid)}>"}
    if matched is not None:
        headers["OGC-NumberMatched"] = str(matched)
    return headers


def build_query(
    values: Mapping[str, str],
    layer: LayerDefinition,
    role: str,
    state: LayerState,
    srid: int,
    limit: int,
    offset: int,
) -> queries.FeatureQuery:
    """Every items parameter, parsed and checked against the catalog and the role."""
    box = None
    if values.get("bbox"):
        bbox_srid = CRS84_SRID
        if "bbox-crs" in values:
            bbox_srid = parse_crs_uri(values["bbox-crs"], layer.srids, parameter="bbox-crs")
        box = query_box(parse_bbox(values["bbox"]), bbox_srid, layer, state.extent)
    elif "bbox-crs" in values:
        parse_crs_uri(values["bbox-crs"], layer.srids, parameter="bbox-crs")
    at = parse_datetime(values["datetime"]) if values.get("datetime") else None
    conditions = list(property_conditions(values, layer, role))
    if values.get("filter") is not None:
        conditions.append(_filter_condition(values, layer, role, state))
    return queries.FeatureQuery(
        layer=layer,
        role=role,
        out_srid=srid,
        box=box,
        at=at,
        conditions=tuple(conditions),
        sort=parse_sortby(values["sortby"], layer, role) if values.get("sortby") else (),
        fields=parse_properties(values["properties"], layer, role)
        if "properties" in values
        else None,
        limit=limit,
        offset=offset,
    )


def _filter_condition(
    values: Mapping[str, str], layer: LayerDefinition, role: str, state: LayerState
) -> ColumnElement[bool]:
    filter_srid = CRS84_SRID
    if "filter-crs" in values:
        filter_srid = parse_crs_uri(values["filter-crs"], layer.srids, parameter="filter-crs")
    context = cql2.FilterContext(layer, role, filter_srid, state.extent)
    return cql2.compile_filter(values["filter"], values.get("filter-lang"), context)


def _matched(
    conn: Connection, query: queries.FeatureQuery, fetched: int, rows_estimate: float
) -> int | None:
    """Exact and free when this page is the last one; else counted only on small tables."""
    if fetched <= query.limit and (fetched > 0 or query.offset == 0):
        return query.offset + fetched
    return queries.number_matched(conn, query, rows_estimate)


def _collection_bytes(
    service: Service,
    query: queries.FeatureQuery,
    values: Mapping[str, str],
    rows: list[str],
    matched: int | None,
) -> bytes:
    more = len(rows) > query.limit
    shown = rows[: query.limit]
    head = '{"type":"FeatureCollection","features":['
    return (
        head + ",".join(shown) + _footer(service, query, values, len(shown), more, matched)
    ).encode()


def _streamed_collection(
    service: Service,
    query: queries.FeatureQuery,
    values: Mapping[str, str],
    matched: int | None,
) -> Iterator[bytes]:
    """The page as chunks straight from a server-side cursor (big pages)."""
    yield b'{"type":"FeatureCollection","features":['
    count = 0
    more = False
    with request_connection(service) as conn, _spare_connection(service, query) as spare:
        for batch in queries.stream_page(conn, query, spare):
            room = query.limit - count
            if len(batch) > room:  # the look-ahead row: there is a next page
                more = True
                batch = batch[:room]
            if batch:
                yield (b"," if count else b"") + b",".join(batch)
                count += len(batch)
            if more:
                break
    if not more and (count > 0 or query.offset == 0):
        matched = query.offset + count  # the last page: exact and free, as in ``_matched``
    yield _footer(service, query, values, count, more, matched).encode()


@contextmanager
def _spare_connection(service: Service, query: queries.FeatureQuery) -> Iterator[Connection | None]:
    """A second connection for a big page while the process serves no other big page,
    so the page can be built by two backends at once (``queries.stream_page``); None
    when the process is busy: then every request keeps to one backend, and the CPU
    that splitting costs (each half filters and sorts the rows) goes to the others.
    Never more connections than the pool's size; not with a service timeout, which is
    set by a query before the page's (the halves must share a snapshot first)."""
    with _BIG_PAGES.lock:
        _BIG_PAGES.active += 1
        alone = _BIG_PAGES.active == 1
    try:
        pool = service.engine.pool
        if (
            not alone
            or query.limit < SPLIT_FROM
            or query.conditions  # compiled per request, streamed by SQLAlchemy
            or service.timeout_ms is not None  # set by a query, which takes a snapshot
            or service.engine.dialect.driver != "psycopg"
            or not isinstance(pool, sa.pool.QueuePool)
            or pool.checkedout() >= pool.size()
        ):
            yield None
            return
        with service.engine.connect() as spare:
            yield spare
    finally:
        with _BIG_PAGES.lock:
            _BIG_PAGES.active -= 1


@dataclass
class _Activity:
    """Big pages being streamed by this process now."""

    active: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


_BIG_PAGES = _Activity()


def _footer(
    service: Service,
    query: queries.FeatureQuery,
    values: Mapping[str, str],
    returned: int,
    more: bool,
    matched: int | None,
) -> str:
    path = f"/collections/{query.layer.id}/items"
    kept = {k: v for k, v in values.items() if k not in ("f", "offset", "limit")}
    kept["limit"] = str(query.limit)

    def page(offset: int, fmt: str) -> str:
        return _url(service, path, {**kept, "offset": str(offset), "f": fmt})

    links = [
        _link(page(query.offset, "json"), "self", GEOJSON, "This page as GeoJSON"),
        _link(page(query.offset, "html"), "alternate", HTML, "This page as HTML"),
        _link(_url(service, f"/collections/{query.layer.id}"), "collection", JSON, "Collection"),
    ]
    if more:
        links.append(_link(page(query.offset + query.limit, "json"), "next", GEOJSON, "Next page"))
    if query.offset > 0:
        previous = max(query.offset - query.limit, 0)
        links.append(_link(page(previous, "json"), "prev", GEOJSON, "Previous page"))
    tail: dict[str, Any] = {
        "numberReturned": returned,
        "timeStamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "links": links,
    }
    if matched is not None:
        tail["numberMatched"] = matched
    return "]," + orjson.dumps(tail).decode()[1:]


def api_document(service: Service, role: str, params: Params) -> Answer:
    """The OpenAPI 3.0 description of the endpoints the role can see."""
    single_values(params, COMMON_PARAMETERS)
    paths: dict[str, Any] = {
        "/": _operation("Landing page", "getLandingPage"),
        "/conformance": _operation("Conformance classes", "getConformance"),
        "/collections": _operation("Collections", "getCollections"),
    }
    for layer in visible_layers(service.catalog, role):
        base = f"/collections/{layer.id}"
        paths[base] = _operation(f"{layer.title}", f"describe_{layer.id}")
        paths[base + "/queryables"] = _operation("Queryables", f"queryables_{layer.id}")
        paths[base + "/items"] = _operation(
            f"Features of {layer.title}", f"items_{layer.id}", _items_parameters(service)
        )
        paths[base + "/items/{featureId}"] = _operation(
            "One feature", f"item_{layer.id}", [_path_parameter("featureId")]
        )
    document = {
        "openapi": "3.0.3",
        "info": {"title": service.title, "version": "1.0.0", "description": service.description},
        "servers": [{"url": service.base_url}],
        "paths": paths,
    }
    return Answer(media_type=OPENAPI, document=document)


def _operation(
    summary: str, operation_id: str, parameters: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "operationId": operation_id,
            "parameters": [_query_parameter("f", {"type": "string", "enum": ["json", "html"]})]
            + (parameters or []),
            "responses": {"200": {"description": "OK"}, "400": {"description": "Bad request"}},
        }
    }


def _query_parameter(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def _path_parameter(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _items_parameters(service: Service) -> list[dict[str, Any]]:
    text = {"type": "string"}
    return [
        _query_parameter(
            "limit",
            {
                "type": "integer",
                "minimum": 1,
                "maximum": service.max_limit,
                "default": service.default_limit,
            },
        ),
        _query_parameter("offset", {"type": "integer", "minimum": 0, "default": 0}),
        _query_parameter("bbox", {"type": "array", "items": {"type": "number"}}),
        *(
            _query_parameter(name, text)
            for name in (
                "bbox-crs",
                "crs",
                "datetime",
                "filter",
                "filter-lang",
                "filter-crs",
                "sortby",
                "properties",
            )
        ),
    ]


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
