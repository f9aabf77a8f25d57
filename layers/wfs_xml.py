"""The XML (POST) encoding of WFS 2.0.0 and 1.1.0 requests, read into KVP parameters.

A POST body such as ``<wfs:GetFeature><wfs:Query typeNames="parcels"><fes:Filter>…``
says nothing the KVP encoding cannot say: each ``Query`` becomes one entry of the
parenthesised per-query lists (``TYPENAMES=(a)(b)``, ``FILTER=(…)(…)``,
``PROPERTYNAME``, ``SORTBY``), the attributes of the request become the global
parameters. So a POST request then takes exactly the path of the same GET request:
the same checks, the same FES parser for the filters, and its ``next`` links are
ordinary GET URLs any client can follow.

The document is read by the hardened parser of ``layers.fes`` (no DTD, no entities,
no network, bounded size); a document type declaration is refused outright.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from layers import fes
from layers.wfs_ows import Kvp, OwsError, invalid

WFS20 = "http://www.opengis.net/wfs/2.0"
WFS11 = "http://www.opengis.net/wfs"
OWS_NAMESPACES = ("http://www.opengis.net/ows/1.1", "http://www.opengis.net/ows")
MAX_REQUEST_BYTES = 2_000_000
# A query without a filter among queries with one: KVP's FILTER list needs an entry
# for every query, so it gets a filter true for every feature of any layer (we never
# write gml:name, so it is absent, i.e. null, everywhere).
MATCH_ALL = {
    "2": (
        f'<fes:Filter xmlns:fes="{fes.FES20}"><fes:PropertyIsNull>'
        "<fes:ValueReference>gml:name</fes:ValueReference></fes:PropertyIsNull></fes:Filter>"
    ),
    "1": (
        f'<ogc:Filter xmlns:ogc="{fes.OGC}"><ogc:PropertyIsNull>'
        "<ogc:PropertyName>gml:name</ogc:PropertyName></ogc:PropertyIsNull></ogc:Filter>"
    ),
}
# Global attributes of the request elements and the KVP parameter each one is.
ATTRIBUTES = {
    "service": "SERVICE",
    "version": "VERSION",
    "outputFormat": "OUTPUTFORMAT",
    "count": "COUNT",
    "maxFeatures": "MAXFEATURES",
    "startIndex": "STARTINDEX",
    "resultType": "RESULTTYPE",
    "valueReference": "VALUEREFERENCE",
    "updateSequence": "UPDATESEQUENCE",
}
GET_FEATURE_BY_ID = "urn:ogc:def:query:OGC-WFS::GetFeatureById"


@dataclass(frozen=True)
class XmlRequest:
    """An XML request as its operation name and equivalent KVP parameters."""

    operation: str
    version: str
    kvp: Kvp


def parse_document(body: bytes) -> etree._Element:
    """The request document; anything unsafe or not well-formed is a clear 400."""
    if len(body) > MAX_REQUEST_BYTES:
        raise invalid(f"the request document is larger than {MAX_REQUEST_BYTES} bytes", "body")
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise invalid("document type declarations are not allowed in a request", "body")
    try:
        root = etree.fromstring(body.strip(), fes.SAFE_PARSER)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise invalid(f"the request is not well-formed XML: {exc}", "body") from None
    if root is None:
        raise invalid("the request document is empty", "body")
    if root.getroottree().docinfo.doctype:
        raise invalid("document type declarations are not allowed in a request", "body")
    return root


def read(body: bytes) -> XmlRequest:
    """The operation of a POSTed WFS document and its parameters in KVP form."""
    root = parse_document(body)
    qname = etree.QName(root)
    if qname.namespace not in (WFS20, WFS11):
        raise invalid(f"{qname.localname} is not a WFS request element", "request")
    operation = qname.localname
    default_version = "2.0.0" if qname.namespace == WFS20 else "1.1.0"
    version = (root.get("version") or "").strip()
    values: dict[str, str] = {"request": operation}
    for attribute, name in ATTRIBUTES.items():
        value = root.get(attribute)
        if value is not None:
            values[name.lower()] = value
    if not version and (operation != "GetCapabilities" or qname.namespace == WFS11):
        values["version"] = default_version
    readers = {
        "GetCapabilities": _capabilities,
        "DescribeFeatureType": _describe_feature_type,
        "GetFeature": _queries,
        "GetPropertyValue": _queries,
        "DescribeStoredQueries": _stored_query_ids,
    }
    reader = readers.get(operation)
    if reader is not None:
        reader(root, values)
    return XmlRequest(operation, values.get("version") or default_version, Kvp(values))


# -- one reader per operation ---------------------------------------------------------
def _capabilities(root: etree._Element, values: dict[str, str]) -> None:
    versions = [_text(e) for e in _children(root, "AcceptVersions", "Version")]
    if versions:
        values["acceptversions"] = ",".join(versions)
    sections = [_text(e) for e in _children(root, "Sections", "Section")]
    if sections:
        values["sections"] = ",".join(sections)


def _describe_feature_type(root: etree._Element, values: dict[str, str]) -> None:
    names = [_text(e) for e in root if _local(e) == "TypeName"]
    if names:
        values["typenames"] = ",".join(names)


def _stored_query_ids(root: etree._Element, values: dict[str, str]) -> None:
    ids = [_text(e) for e in root if _local(e) == "StoredQueryId"]
    if ids:
        values["storedquery_id"] = ",".join(ids)


def _queries(root: etree._Element, values: dict[str, str]) -> None:
    """``Query`` elements as per-query KVP lists; ``StoredQuery`` as STOREDQUERY_ID."""
    queries = [e for e in root if _local(e) == "Query"]
    stored = [e for e in root if _local(e) == "StoredQuery"]
    if queries and stored:
        raise invalid("a request holds either Query or StoredQuery elements", "StoredQuery")
    if stored:
        _stored_queries(stored, values)
        return
    if not queries:
        raise OwsError("MissingParameterValue", "the request holds no Query", "Query")
    names, filters, properties, sorts, srs_names = [], [], [], [], []
    for query in queries:
        type_names = query.get("typeNames") or query.get("typeName")
        if not type_names or not type_names.strip():
            raise OwsError("MissingParameterValue", "a Query has no typeNames", "typeNames")
        if len(type_names.split()) > 1 or "," in type_names:
            raise invalid("joins (several type names in one Query) are not supported", "typeNames")
        names.append(type_names.strip())
        srs_names.append((query.get("srsName") or "").strip())
        found = [e for e in query if _local(e) == "Filter"]
        if len(found) > 1:
            raise invalid("a Query holds at most one Filter", "filter")
        filters.append(_filter_text(found[0]) if found else None)
        properties.append([_text(e) for e in query if _local(e) == "PropertyName"])
        sorts.append(_sort_text(query))
    _per_query(values, "typenames", names)
    if any(f is not None for f in filters):
        match_all = MATCH_ALL["1" if values.get("version", "").startswith("1.") else "2"]
        _per_query(values, "filter", [f or match_all for f in filters])
    if any(properties):
        _per_query(values, "propertyname", [",".join(p) if p else "*" for p in properties])
    if any(sorts):
        if len(set(sorts)) == 1:
            values["sortby"] = sorts[0]
        elif all(sorts):
            _per_query(values, "sortby", sorts)
        else:
            raise invalid("SortBy must be given for every Query or for none", "sortBy")
    chosen = {s for s in srs_names if s}
    if len(chosen) > 1:
        raise invalid("all queries of a request must use the same srsName", "srsName")
    if chosen:
        values["srsname"] = chosen.pop()


def _stored_queries(stored: list[etree._Element], values: dict[str, str]) -> None:
    """GetFeatureById calls: one gives the bare feature; several, their features as
    one collection (the KVP ``RESOURCEID`` list)."""
    ids: list[str] = []
    for element in stored:
        ident = (element.get("id") or "").strip()
        if not ident:
            raise OwsError("MissingParameterValue", "StoredQuery has no id attribute", "id")
        parameters: dict[str, str] = {}
        for parameter in element:
            if _local(parameter) != "Parameter":
                continue
            name = (parameter.get("name") or "").strip()
            if not name:
                raise invalid("a Parameter of StoredQuery has no name attribute", "Parameter")
            parameters[name.lower()] = _text(parameter)
        if len(stored) == 1:
            values["storedquery_id"] = ident
            values.update(parameters)
            return
        if ident != GET_FEATURE_BY_ID:
            raise invalid(f"stored query {ident!r} does not exist", "storedQuery_id")
        if "id" not in parameters:
            raise OwsError("MissingParameterValue", "the ID parameter is missing", "id")
        ids.append(parameters["id"])
    values["resourceid"] = ",".join(ids)


# -- helpers --------------------------------------------------------------------------
def _per_query(values: dict[str, str], name: str, items: list[str]) -> None:
    """One value, or KVP's parenthesised list of one entry per query."""
    values[name] = items[0] if len(items) == 1 else "".join(f"({item})" for item in items)


def _filter_text(element: etree._Element) -> str:
    """The filter as a document of its own (its namespace declarations included);
    elements written in the request's WFS namespace are read as filter elements."""
    copy = etree.fromstring(etree.tostring(element), fes.SAFE_PARSER)
    for node in copy.iter():
        if isinstance(node.tag, str) and etree.QName(node).namespace in (WFS20, WFS11):
            node.tag = etree.QName(node).localname
    etree.cleanup_namespaces(copy)
    return etree.tostring(copy, encoding="unicode")


def _sort_text(query: etree._Element) -> str:
    """``fes:SortBy`` as KVP's ``name ASC,other DESC``."""
    keys = []
    for sort_by in (e for e in query if _local(e) == "SortBy"):
        for prop in (e for e in sort_by if _local(e) == "SortProperty"):
            name = next(
                (_text(e) for e in prop if _local(e) in ("ValueReference", "PropertyName")), ""
            )
            if not name:
                raise OwsError("MissingParameterValue", "a SortProperty has no name", "sortBy")
            order = next((_text(e) for e in prop if _local(e) == "SortOrder"), "ASC")
            keys.append(f"{name} {order or 'ASC'}")
    return ",".join(keys)


def _children(root: etree._Element, group: str, item: str) -> list[etree._Element]:
    """``<ows:Group><ows:Item/>…</ows:Group>`` items (OWS 1.1 or 1.0)."""
    return [
        child
        for element in root
        if _local(element) == group and etree.QName(element).namespace in OWS_NAMESPACES
        for child in element
        if _local(child) == item
    ]


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def _text(element: etree._Element) -> str:
    return (element.text or "").strip()
