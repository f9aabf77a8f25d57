"""WFS 2.0.0 and 1.1.0 (KVP and XML) over the layer catalog, as framework-free functions.

``handle`` takes the service, the caller's role and the query parameters and returns an
``Answer`` whose body is bytes (capabilities, schemas) or a generator streaming
features from a server-side cursor. The same catalog, role rules and query builder
as OGC API Features decide which layers, fields and rows a caller gets; any error
becomes the exception report of the version asked for.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode
from xml.sax.saxutils import quoteattr

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_core.errors import UrbanGisError
from layers import queries, wfs_capabilities, wfs_gml, wfs_request, wfs_xml
from layers.features import Answer, request_connection
from layers.roles import visible_fields, visible_layers
from layers.wfs_gml import GML_32, GML_212, GML_311, Encoding
from layers.wfs_ows import XML, Kvp, OwsError, OwsService, as_ows_error, invalid, ows_report
from layers.wfs_request import GET_FEATURE_BY_ID, FeatureRequest, TypeQuery

VERSIONS = ("2.0.0", "1.1.0", "1.0.0")
# WFS operations this read-only service does not offer (anything else is unknown).
UNSUPPORTED = frozenset(
    {
        "transaction",
        "lockfeature",
        "getfeaturewithlock",
        "getgmlobject",
        "createstoredquery",
        "dropstoredquery",
    }
)
_VERSION = re.compile(r"^\d+\.\d+(\.\d+)?$")
GEOJSON = "application/geo+json"
# Pages up to this size are read at once; larger ones are streamed from a cursor.
STREAM_ABOVE = 2_000

Operation = Callable[[OwsService, str, Kvp, str], Answer]


def handle(service: OwsService, role: str, params: Iterable[tuple[str, str]]) -> Answer:
    """One KVP request; errors become an OWS exception report."""
    return _dispatch(service, role, Kvp.parse(params))


def handle_xml(service: OwsService, role: str, body: bytes) -> Answer:
    """One request in the XML (POST) encoding: read into its KVP parameters, then
    answered exactly as the same GET request."""
    try:
        request = wfs_xml.read(body)
    except UrbanGisError as exc:
        error = as_ows_error(exc)
        return Answer(status=error.http_status, media_type=XML, body=[ows_report([error], "2.0.0")])
    return _dispatch(service, role, request.kvp)


def _dispatch(service: OwsService, role: str, kvp: Kvp) -> Answer:
    version = _requested_version(kvp)
    try:
        service_name = kvp.text("service")
        if service_name is not None and service_name.upper() != "WFS":
            raise invalid(f"service {service_name!r} is not WFS", "service")
        request = kvp.text("request")
        if request is None:
            raise OwsError("MissingParameterValue", "the request parameter is missing", "request")
        operation = OPERATIONS.get(request.lower())
        if operation is None:
            if request.lower() in UNSUPPORTED:
                raise OwsError("OperationNotSupported", f"{request} is not supported", "request")
            raise invalid(f"{request!r} is not a WFS operation", "request")
        capabilities = request.lower() == "getcapabilities"
        version = negotiate(kvp) if capabilities else _checked_version(kvp)
        return operation(service, role, kvp, version)
    except UrbanGisError as exc:
        error = as_ows_error(exc)
        return Answer(status=error.http_status, media_type=XML, body=[ows_report([error], version)])


def _requested_version(kvp: Kvp) -> str:
    """The version whose exception report an error gets."""
    text = kvp.text("version") or ""
    if text.startswith("1.0"):
        return "1.0.0"
    return "1.1.0" if text.startswith("1.") else "2.0.0"


def _checked_version(kvp: Kvp) -> str:
    text = kvp.text("version")
    if text is None:
        raise OwsError("MissingParameterValue", "the version parameter is missing", "version")
    if text not in VERSIONS:
        raise invalid(f"version {text!r} is not supported: use 2.0.0, 1.1.0 or 1.0.0", "version")
    return text


def negotiate(kvp: Kvp) -> str:
    """The capabilities version: the first acceptable one, else by the legacy VERSION."""
    accepted = kvp.text("acceptVersions")
    if accepted is not None:
        candidates = [v.strip() for v in accepted.split(",")]
        for candidate in candidates:
            if not _VERSION.match(candidate):
                raise invalid(f"{candidate!r} is not a version number", "acceptVersions")
            if candidate in VERSIONS:
                return candidate
        raise OwsError(
            "VersionNegotiationFailed",
            f"none of {accepted!r} is supported: 2.0.0, 1.1.0, 1.0.0",
            "acceptVersions",
        )
    text = kvp.text("version")
    if text is not None and not _VERSION.match(text):
        raise invalid(f"version {text!r} is not a version number", "version")
    if text is None:
        return "2.0.0"
    # The highest version not above the one asked for, else the lowest (OWS Common).
    asked = _numbers(text)
    for version in VERSIONS:
        if _numbers(version) <= asked:
            return version
    return VERSIONS[-1]


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


# -- operations ---------------------------------------------------------------------
def get_capabilities(service: OwsService, role: str, kvp: Kvp, version: str) -> Answer:
    layers = visible_layers(service.catalog, role)
    with request_connection(service.data, serial=True) as conn:
        extents = [(layer, service.catalog.state(conn, layer).extent) for layer in layers]
    sections = kvp.text("sections")
    body = wfs_capabilities.document(service, extents, version, sections)
    return Answer(media_type=XML, body=[body])


def describe_feature_type(service: OwsService, role: str, kvp: Kvp, version: str) -> Answer:
    names = wfs_request.type_names(kvp, version)
    if names:
        layers = [wfs_request.find_layer(service.catalog, role, n, "typeName") for n in names]
    else:
        layers = visible_layers(service.catalog, role)
    fmt = kvp.text("outputFormat")
    encoding = GML_32 if version.startswith("2") else GML_311
    if version == "1.0.0":
        encoding = GML_212
    if fmt is not None:
        value = " ".join(fmt.lower().split())
        if value in wfs_request.GML32_FORMATS:
            encoding = GML_32
        elif value in wfs_request.GML311_FORMATS and version != "1.0.0":
            encoding = GML_311
        elif value in wfs_request.GML212_FORMATS and version == "1.0.0":
            encoding = GML_212
        elif value != "application/xml" and value != "xmlschema":
            raise invalid(f"outputFormat {fmt!r} is not supported", "outputFormat")
    documents = [(layer, visible_fields(layer, role)) for layer in layers]
    schema = wfs_gml.schema_document(documents, encoding.gml, encoding.version)
    return Answer(media_type=encoding.mime, body=[schema])


def get_feature(service: OwsService, role: str, kvp: Kvp, version: str) -> Answer:
    stored = kvp.text("storedQuery_id")
    if stored is not None:
        return _stored_query(service, role, kvp, version, stored)
    with request_connection(service.data, serial=True) as conn:
        request = wfs_request.build(conn, service.catalog, role, kvp, version, service.max_count)
        return _features(service, conn, request, kvp, version)


def _stored_query(service: OwsService, role: str, kvp: Kvp, version: str, stored: str) -> Answer:
    if stored != GET_FEATURE_BY_ID:
        raise invalid(f"stored query {stored!r} does not exist", "storedQuery_id")
    text = kvp.text("id")
    if text is None:
        raise OwsError("MissingParameterValue", "the ID parameter is missing", "id")
    try:
        ((name, _key),) = wfs_request.parse_resource_ids(text, "id")
    except (OwsError, ValueError):
        raise OwsError("NotFound", f"feature {text!r} does not exist", "id", 404) from None
    layer = wfs_request.find_layer(service.catalog, role, name, "id")
    values = dict(kvp.items())
    values.pop("storedquery_id", None)
    values.pop("id", None)
    values.update({"typenames": layer.id, "resourceid": text})
    inner = Kvp(values)
    with request_connection(service.data, serial=True) as conn:
        request = wfs_request.build(conn, service.catalog, role, inner, version, 1)
        if request.hits or request.count == 0:
            return _features(service, conn, request, inner, version)
        type_query = request.types[0]
        query = type_query.query
        if request.encoding is None:
            statement = wfs_gml.member_statement(
                query, wfs_gml.geojson_text(layer, query.output_fields, request.srid)
            )
            media = GEOJSON
        else:
            text_expr = _member_text(type_query, request, wrap=False, namespaces=True)
            statement = wfs_gml.member_statement(query, text_expr)
            media = request.encoding.mime
        found = conn.execute(statement).scalar()
    if found is None:
        raise OwsError("NotFound", f"feature {text!r} does not exist", "id", 404)
    body = found if request.encoding is None else '<?xml version="1.0" encoding="UTF-8"?>\n' + found
    return Answer(media_type=media, body=[body.encode()])


def get_property_value(service: OwsService, role: str, kvp: Kvp, version: str) -> Answer:
    if not version.startswith("2"):
        raise OwsError(
            "OperationNotSupported", "GetPropertyValue is a WFS 2.0 operation", "request"
        )
    reference = kvp.text("valueReference")
    if reference is None:
        raise OwsError("MissingParameterValue", "valueReference is missing", "valueReference")
    values = dict(kvp.items())
    stored = kvp.text("storedQuery_id")
    if stored is not None:
        if stored != GET_FEATURE_BY_ID:
            raise invalid(f"stored query {stored!r} does not exist", "storedQuery_id")
        ident = kvp.text("id")
        if ident is None:
            raise OwsError("MissingParameterValue", "the ID parameter is missing", "id")
        values.update({"typenames": wfs_request.parse_resource_ids(ident, "id")[0][0]})
        values["resourceid"] = ident
        values.pop("storedquery_id", None)
    if kvp.text("outputFormat") is not None:
        wfs_request.output_encoding(kvp, version)
    inner = Kvp(values)
    with request_connection(service.data, serial=True) as conn:
        request = wfs_request.build(
            conn, service.catalog, role, inner, version, service.max_count, value_reference=True
        )
        if len(request.types) != 1:
            raise invalid("GetPropertyValue takes one type name", "typeNames")
        type_query = request.types[0]
        name, field = wfs_request.value_column(type_query.layer, role, reference)
        text_expr = _value_text(type_query, request, name, field)
        conditions = tuple(type_query.query.conditions)
        if field is not None:
            conditions += (field.expr.is_not(None),)
        query = _replace(type_query.query, conditions=conditions)
        return _collection(
            service,
            conn,
            FeatureRequest(
                (TypeQuery(type_query.layer, query),),
                request.start,
                request.count,
                request.hits,
                GML_32,
                request.srid,
            ),
            inner,
            version,
            lambda _t: text_expr,
            root="wfs:ValueCollection",
        )


def list_stored_queries(service: OwsService, role: str, kvp: Kvp, version: str) -> Answer:
    if not version.startswith("2"):
        raise OwsError("OperationNotSupported", "stored queries are a WFS 2.0 feature", "request")
    types = "".join(
        f"<wfs:ReturnFeatureType>{wfs_gml.type_name(layer)}</wfs:ReturnFeatureType>"
        for layer in visible_layers(service.catalog, role)
    )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<wfs:ListStoredQueriesResponse xmlns:wfs="{wfs_gml.WFS20}" '
        f'xmlns:{wfs_gml.PREFIX}="{wfs_gml.NAMESPACE}">'
        f'<wfs:StoredQuery id="{GET_FEATURE_BY_ID}"><wfs:Title>Get feature by identifier'
        f"</wfs:Title>{types}</wfs:StoredQuery></wfs:ListStoredQueriesResponse>"
    )
    return Answer(media_type=XML, body=[body.encode()])


def describe_stored_queries(service: OwsService, role: str, kvp: Kvp, version: str) -> Answer:
    if not version.startswith("2"):
        raise OwsError("OperationNotSupported", "stored queries are a WFS 2.0 feature", "request")
    asked = kvp.text("storedQuery_id")
    if asked is not None:
        for ident in (i.strip() for i in asked.split(",")):
            if ident != GET_FEATURE_BY_ID:
                raise invalid(f"stored query {ident!r} does not exist", "storedQuery_id")
    types = " ".join(wfs_gml.type_name(layer) for layer in visible_layers(service.catalog, role))
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<wfs:DescribeStoredQueriesResponse xmlns:wfs="{wfs_gml.WFS20}" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        f'xmlns:{wfs_gml.PREFIX}="{wfs_gml.NAMESPACE}">'
        f'<wfs:StoredQueryDescription id="{GET_FEATURE_BY_ID}">'
        "<wfs:Title>Get feature by identifier</wfs:Title>"
        "<wfs:Abstract>Returns the single feature whose identifier (typeName.id) is given."
        "</wfs:Abstract>"
        '<wfs:Parameter name="ID" type="xsd:string"/>'
        f'<wfs:QueryExpressionText isPrivate="true" language="urn:ogc:def:queryLanguage:'
        f'OGC-WFS::WFS_QueryExpression" returnFeatureTypes="{types}"/>'
        "</wfs:StoredQueryDescription></wfs:DescribeStoredQueriesResponse>"
    )
    return Answer(media_type=XML, body=[body.encode()])


OPERATIONS: dict[str, Operation] = {
    "getcapabilities": get_capabilities,
    "describefeaturetype": describe_feature_type,
    "getfeature": get_feature,
    "getpropertyvalue": get_property_value,
    "liststoredqueries": list_stored_queries,
    "describestoredqueries": describe_stored_queries,
}


# -- feature collections ------------------------------------------------------------
def _replace(query: queries.FeatureQuery, **changes: Any) -> queries.FeatureQuery:
    from dataclasses import replace

    return replace(query, **changes)


def _member_text(
    type_query: TypeQuery, request: FeatureRequest, *, wrap: bool = True, namespaces: bool = False
) -> sa.ColumnElement[str]:
    encoding = request.encoding or GML_32
    return wfs_gml.feature_xml(
        type_query.layer,
        type_query.query.output_fields,
        request.srid,
        encoding,
        wrap=wrap,
        namespaces=namespaces,
        geometry=type_query.geometry,
    )


def _value_text(
    type_query: TypeQuery, request: FeatureRequest, name: str, field: Any
) -> sa.ColumnElement[str]:
    layer = type_query.layer
    if name == "@gml:id":
        return sa.func.concat("<wfs:member>", wfs_gml.gml_id(layer), "</wfs:member>")
    if name == "geom":
        geometry = wfs_gml.geometry_gml(layer, request.srid, GML_32)
        return sa.func.concat(
            f"<wfs:member><{wfs_gml.PREFIX}:geom>",
            geometry,
            f"</{wfs_gml.PREFIX}:geom></wfs:member>",
        )
    return sa.func.concat("<wfs:member>", wfs_gml.fields_xml((field,)), "</wfs:member>")


def _features(
    service: OwsService, conn: Connection, request: FeatureRequest, kvp: Kvp, version: str
) -> Answer:
    if request.encoding is None:
        return _geojson(service, conn, request, kvp)

    def text_of(type_query: TypeQuery) -> sa.ColumnElement[str]:
        return _member_text(type_query, request)

    return _collection(service, conn, request, kvp, version, text_of)


def _plan(
    conn: Connection, request: FeatureRequest, catalog_estimate: Callable[[TypeQuery], float]
) -> tuple[list[queries.FeatureQuery], int, bool, int | None]:
    """The page as one query per type: (queries, returned, more, matched-or-None)."""
    start, count = request.start, request.count
    if request.hits:
        return [], 0, False, sum(_count_all(conn, t.query) for t in request.types)
    matched: int | None
    if len(request.types) == 1:
        query = _replace(request.types[0].query, offset=start, limit=count)
        window = _window(conn, query, count + 1) if count > 0 else 0
        returned = min(window, count)
        more = window > count
        if count == 0:
            matched = queries.number_matched(conn, query, catalog_estimate(request.types[0]))
        elif not more and (returned > 0 or start == 0):
            matched = start + returned
        else:
            matched = queries.number_matched(conn, query, catalog_estimate(request.types[0]))
        return ([query] if returned else []), returned, more, matched
    totals = [_count_all(conn, t.query) for t in request.types]
    planned: list[queries.FeatureQuery] = []
    skip, remaining = start, count
    for type_query, total in zip(request.types, totals, strict=True):
        if skip >= total:
            skip -= total
            continue
        take = min(total - skip, remaining)
        if take > 0:
            planned.append(_replace(type_query.query, offset=skip, limit=take))
        remaining -= take
        skip = 0
    matched = sum(totals)
    returned = count - remaining
    return planned, returned, start + returned < matched, matched


def _count_all(conn: Connection, query: queries.FeatureQuery) -> int:
    statement = (
        sa.select(sa.func.count())
        .select_from(query.layer.source)
        .where(queries.where_clause(query))
    )
    return int(conn.execute(statement).scalar_one())


def _window(conn: Connection, query: queries.FeatureQuery, limit: int) -> int:
    """How many rows the page window holds (at most ``limit``), without building them."""
    inner = (
        sa.select(sa.literal(1).label("one"))
        .select_from(query.layer.source)
        .where(queries.where_clause(query))
        .offset(query.offset)
        .limit(limit)
        .subquery()
    )
    return int(conn.execute(sa.select(sa.func.count()).select_from(inner)).scalar_one())


@dataclass
class _Page:
    """What a GetFeature page holds: the rows (small pages) or the statements to stream."""

    statements: list[Any]
    planned: list[queries.FeatureQuery]
    returned: int
    more: bool
    matched: int | None
    rows: list[str] | None


def _page(
    service: OwsService,
    conn: Connection,
    request: FeatureRequest,
    text_of: Callable[[TypeQuery], sa.ColumnElement[str]],
) -> _Page:
    """One round trip for the usual small single-type page (its look-ahead row tells
    whether more follow); a planning count first for big or multi-type pages."""
    if len(request.types) == 1 and 0 < request.count <= STREAM_ABOVE and not request.hits:
        type_query = request.types[0]
        query = _replace(type_query.query, offset=request.start, limit=request.count)
        found = list(conn.execute(wfs_gml.member_statement(query, text_of(type_query))).scalars())
        first, more = found[: request.count], len(found) > request.count
        if not more and (first or request.start == 0):
            matched: int | None = request.start + len(first)
        else:
            matched = queries.number_matched(conn, query, _estimate(service, conn, type_query))
        return _Page([], [query], len(first), more, matched, first)
    planned, returned, more, matched = _plan(conn, request, lambda t: _estimate(service, conn, t))
    by_layer = {t.layer.id: t for t in request.types}
    statements = [wfs_gml.member_statement(q, text_of(by_layer[q.layer.id])) for q in planned]
    rows: list[str] | None = None
    if returned <= STREAM_ABOVE:
        rows = [
            text
            for statement, query in zip(statements, planned, strict=True)
            for text in conn.execute(statement).scalars().all()[: query.limit]
        ]
    return _Page(statements, planned, returned, more, matched, rows)


def _collection(
    service: OwsService,
    conn: Connection,
    request: FeatureRequest,
    kvp: Kvp,
    version: str,
    text_of: Callable[[TypeQuery], sa.ColumnElement[str]],
    root: str = "wfs:FeatureCollection",
) -> Answer:
    encoding = request.encoding or GML_32
    page = _page(service, conn, request, text_of)
    head = _collection_head(
        service, request, kvp, version, encoding, page.returned, page.more, page.matched, root
    )
    tail = f"</{root}>".encode()
    if page.rows is not None:
        return Answer(media_type=encoding.mime, body=[head, "".join(page.rows).encode(), tail])
    return Answer(
        media_type=encoding.mime,
        body=_streamed(service, page.statements, page.planned, head, tail),
    )


def _estimate(service: OwsService, conn: Connection, type_query: TypeQuery) -> float:
    return service.catalog.state(conn, type_query.layer).rows_estimate


def _streamed(
    service: OwsService,
    statements: list[Any],
    planned: list[queries.FeatureQuery],
    head: bytes,
    tail: bytes,
    separator: str = "",
) -> Iterator[bytes]:
    """The members straight from server-side cursors, in batches."""
    yield head
    first = True
    with request_connection(service.data, serial=True) as conn:
        for statement, query in zip(statements, planned, strict=True):
            result = conn.execution_options(
                stream_results=True, yield_per=queries.STREAM_BATCH
            ).execute(statement)
            batch: list[str] = []
            for sent, (text,) in enumerate(result):
                if sent == query.limit:
                    break
                batch.append(text)
                if len(batch) == queries.STREAM_BATCH:
                    yield ("" if first else separator).encode() + separator.join(batch).encode()
                    first = False
                    batch = []
            if batch:
                yield ("" if first else separator).encode() + separator.join(batch).encode()
                first = False
            result.close()
    yield tail


def _collection_head(
    service: OwsService,
    request: FeatureRequest,
    kvp: Kvp,
    version: str,
    encoding: Encoding,
    returned: int,
    more: bool,
    matched: int | None,
    root: str,
) -> bytes:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    names = ",".join(t.layer.id for t in request.types)
    describe = _url(
        service,
        {
            "SERVICE": "WFS",
            "VERSION": version,
            "REQUEST": "DescribeFeatureType",
            "TYPENAMES" if version.startswith("2") else "TYPENAME": names,
        },
    )
    if version.startswith("2"):
        locations = (
            f"{wfs_gml.NAMESPACE} {describe} {wfs_gml.WFS20} "
            "http://schemas.opengis.net/wfs/2.0/wfs.xsd "
            f"{wfs_gml.GML32} http://schemas.opengis.net/gml/3.2.1/gml.xsd"
        )
        counts = (
            f'numberMatched="{matched if matched is not None else "unknown"}" '
            f'numberReturned="{returned}"'
        )
        links = ""
        if more:
            links += f" next={quoteattr(_page_url(service, kvp, request.start + request.count))}"
        if request.start > 0 and not request.hits:
            previous = max(request.start - request.count, 0)
            links += f" previous={quoteattr(_page_url(service, kvp, previous))}"
        attributes = f'timeStamp="{stamp}" {counts}{links}'
    elif version == "1.0.0":
        # WFS 1.0.0: no counts; GML 2 requires the collection's boundedBy.
        locations = (
            f"{wfs_gml.NAMESPACE} {describe} {wfs_gml.WFS11} "
            "http://schemas.opengis.net/wfs/1.0.0/WFS-basic.xsd"
        )
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<{root} {encoding.namespaces} xsi:schemaLocation={quoteattr(locations)}>"
            "<gml:boundedBy><gml:null>unknown</gml:null></gml:boundedBy>"
        ).encode()
    else:
        locations = (
            f"{wfs_gml.NAMESPACE} {describe} {wfs_gml.WFS11} "
            "http://schemas.opengis.net/wfs/1.1.0/wfs.xsd"
        )
        total = matched if request.hits and matched is not None else returned
        attributes = f'timeStamp="{stamp}" numberOfFeatures="{total}"'
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<{root} {encoding.namespaces} xsi:schemaLocation={quoteattr(locations)} {attributes}>"
    ).encode()


def _page_url(service: OwsService, kvp: Kvp, start: int) -> str:
    values = {k.upper(): v for k, v in kvp.items() if k != "startindex"}
    values["STARTINDEX"] = str(start)
    return _url(service, values)


def _url(service: OwsService, params: dict[str, str]) -> str:
    return service.url + "?" + urlencode(params, quote_via=quote, safe=",:/")


def _geojson(service: OwsService, conn: Connection, request: FeatureRequest, kvp: Kvp) -> Answer:
    def text_of(type_query: TypeQuery) -> sa.ColumnElement[str]:
        layer = type_query.layer
        return wfs_gml.geojson_text(layer, type_query.query.output_fields, request.srid)

    page = _page(service, conn, request, text_of)
    tail: dict[str, Any] = {
        "numberReturned": page.returned,
        "timeStamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if page.matched is not None:
        tail["numberMatched"] = page.matched
    if page.more:
        tail["links"] = [
            {
                "href": _page_url(service, kvp, request.start + request.count),
                "rel": "next",
                "type": GEOJSON,
            }
        ]
    footer = ("]," + orjson.dumps(tail).decode()[1:]).encode()
    head = b'{"type":"FeatureCollection","features":['
    if page.rows is not None:
        return Answer(media_type=GEOJSON, body=[head, ",".join(page.rows).encode(), footer])
    return Answer(
        media_type=GEOJSON,
        body=_streamed(service, page.statements, page.planned, head, footer, ","),
    )
