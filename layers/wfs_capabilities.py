"""The WFS capabilities documents (2.0.0 with FES 2.0, 1.1.0 with Filter 1.1).

Only the layers the caller's role may see are listed; each offers its storage CRS as
the default and Stereo 70, ETRS89, WGS84 and Web Mercator besides, with its extent
from the catalog (recomputed only when the data changed).
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from layers.catalog import LayerDefinition
from layers.wfs_gml import NAMESPACE, PREFIX, type_name
from layers.wfs_ows import OWS10, OWS11, OwsService, invalid, srs_urn

SECTIONS = (
    "ServiceIdentification",
    "ServiceProvider",
    "OperationsMetadata",
    "FeatureTypeList",
    "Filter_Capabilities",
)
OUTPUT_FORMATS_20 = ("application/gml+xml; version=3.2", "application/json")
OUTPUT_FORMATS_11 = ("text/xml; subtype=gml/3.1.1", "application/json")
COMPARISONS_20 = (
    "PropertyIsEqualTo",
    "PropertyIsNotEqualTo",
    "PropertyIsLessThan",
    "PropertyIsGreaterThan",
    "PropertyIsLessThanOrEqualTo",
    "PropertyIsGreaterThanOrEqualTo",
    "PropertyIsLike",
    "PropertyIsNull",
    "PropertyIsNil",
    "PropertyIsBetween",
)
COMPARISONS_11 = (
    "EqualTo",
    "NotEqualTo",
    "LessThan",
    "GreaterThan",
    "LessThanEqualTo",
    "GreaterThanEqualTo",
    "Like",
    "NullCheck",
    "Between",
)
SPATIAL_OPERATORS = (
    "BBOX",
    "Equals",
    "Disjoint",
    "Intersects",
    "Touches",
    "Crosses",
    "Within",
    "Contains",
    "Overlaps",
    "DWithin",
    "Beyond",
)
GEOMETRY_OPERANDS = (
    "gml:Envelope",
    "gml:Point",
    "gml:LineString",
    "gml:Polygon",
    "gml:MultiPoint",
    "gml:MultiCurve",
    "gml:MultiSurface",
)
CONFORMANCE_20 = {
    "ImplementsQuery": True,
    "ImplementsAdHocQuery": True,
    "ImplementsFunctions": False,
    "ImplementsResourceId": True,
    "ImplementsMinStandardFilter": True,
    "ImplementsStandardFilter": True,
    "ImplementsMinSpatialFilter": True,
    "ImplementsSpatialFilter": True,
    "ImplementsMinTemporalFilter": False,
    "ImplementsTemporalFilter": False,
    "ImplementsVersionNav": False,
    "ImplementsSorting": True,
    "ImplementsExtendedOperators": False,
    "ImplementsMinimumXPath": True,
    "ImplementsSchemaElementFunc": False,
}
WFS_CONSTRAINTS_20 = {
    "ImplementsBasicWFS": True,
    "ImplementsTransactionalWFS": False,
    "ImplementsLockingWFS": False,
    "KVPEncoding": True,
    "XMLEncoding": True,
    "SOAPEncoding": False,
    "ImplementsInheritance": False,
    "ImplementsRemoteResolve": False,
    "ImplementsResultPaging": True,
    "ImplementsStandardJoins": False,
    "ImplementsSpatialJoins": False,
    "ImplementsTemporalJoins": False,
    "ImplementsFeatureVersioning": False,
    "ManageStoredQueries": False,
}
Extent = tuple[float, float, float, float] | None


def document(
    service: OwsService,
    layers: list[tuple[LayerDefinition, Extent]],
    version: str,
    sections: str | None,
) -> bytes:
    if version == "1.0.0":
        return _document_10(service, layers)
    chosen = _sections(sections)
    if version.startswith("2"):
        return _document_20(service, layers, chosen)
    return _document_11(service, layers, chosen)


def _sections(text: str | None) -> frozenset[str]:
    if text is None:
        return frozenset(SECTIONS)
    names = {name.strip() for name in text.split(",") if name.strip()}
    if "All" in names:
        return frozenset(SECTIONS)
    unknown = names - set(SECTIONS)
    if unknown:
        raise invalid(f"unknown section {sorted(unknown)[0]!r}", "sections")
    return frozenset(names)


def _keywords(words: tuple[str, ...]) -> str:
    if not words:
        return ""
    inner = "".join(f"<ows:Keyword>{escape(w)}</ows:Keyword>" for w in words)
    return f"<ows:Keywords>{inner}</ows:Keywords>"


def _identification(service: OwsService, versions: tuple[str, ...]) -> str:
    info = service.info
    return (
        "<ows:ServiceIdentification>"
        f"<ows:Title>{escape(info.title)}</ows:Title>"
        f"<ows:Abstract>{escape(info.abstract)}</ows:Abstract>"
        f"{_keywords(info.keywords)}"
        "<ows:ServiceType>WFS</ows:ServiceType>"
        + "".join(f"<ows:ServiceTypeVersion>{v}</ows:ServiceTypeVersion>" for v in versions)
        + f"<ows:Fees>{escape(info.fees)}</ows:Fees>"
        f"<ows:AccessConstraints>{escape(info.access_constraints)}</ows:AccessConstraints>"
        "</ows:ServiceIdentification>"
    )


def _provider(service: OwsService) -> str:
    info = service.info
    site = (
        f"<ows:ProviderSite xlink:href={quoteattr(info.provider_site)}/>"
        if info.provider_site
        else ""
    )
    return (
        "<ows:ServiceProvider>"
        f"<ows:ProviderName>{escape(info.provider)}</ows:ProviderName>{site}"
        "<ows:ServiceContact><ows:ContactInfo><ows:Address>"
        f"<ows:ElectronicMailAddress>{escape(info.contact_email)}</ows:ElectronicMailAddress>"
        "</ows:Address></ows:ContactInfo></ows:ServiceContact>"
        "</ows:ServiceProvider>"
    )


def _operation(service: OwsService, name: str, parameters: dict[str, tuple[str, ...]]) -> str:
    href = quoteattr(service.url + "?")
    params = "".join(
        f'<ows:Parameter name="{pname}"><ows:AllowedValues>'
        + "".join(f"<ows:Value>{escape(v)}</ows:Value>" for v in allowed)
        + "</ows:AllowedValues></ows:Parameter>"
        for pname, allowed in parameters.items()
    )
    post = quoteattr(service.url)
    return (
        f'<ows:Operation name="{name}"><ows:DCP><ows:HTTP><ows:Get xlink:href={href}/>'
        f"<ows:Post xlink:href={post}/></ows:HTTP></ows:DCP>{params}</ows:Operation>"
    )


def _constraint(name: str, value: bool | int, prefix: str = "ows") -> str:
    text = ("TRUE" if value else "FALSE") if isinstance(value, bool) else str(value)
    return (
        f'<{prefix}:Constraint name="{name}"><ows:NoValues/>'
        f"<ows:DefaultValue>{text}</ows:DefaultValue></{prefix}:Constraint>"
    )


def _bbox(extent: Extent) -> str:
    if extent is None:
        return ""
    return (
        f"<ows:WGS84BoundingBox><ows:LowerCorner>{extent[0]:.6f} {extent[1]:.6f}"
        f"</ows:LowerCorner><ows:UpperCorner>{extent[2]:.6f} {extent[3]:.6f}"
        "</ows:UpperCorner></ows:WGS84BoundingBox>"
    )


def _feature_type(layer: LayerDefinition, extent: Extent, version: str) -> str:
    default_tag, other_tag = (
        ("DefaultCRS", "OtherCRS") if version == "2" else ("DefaultSRS", "OtherSRS")
    )
    others = "".join(
        f"<wfs:{other_tag}>{srs_urn(s)}</wfs:{other_tag}>"
        for s in layer.srids
        if s != layer.storage_srid
    )
    formats = OUTPUT_FORMATS_20 if version == "2" else OUTPUT_FORMATS_11
    return (
        "<wfs:FeatureType>"
        f"<wfs:Name>{type_name(layer)}</wfs:Name>"
        f"<wfs:Title>{escape(layer.title)}</wfs:Title>"
        f"<wfs:Abstract>{escape(layer.abstract)}</wfs:Abstract>"
        f"{_keywords(layer.keywords)}"
        f"<wfs:{default_tag}>{srs_urn(layer.storage_srid)}</wfs:{default_tag}>{others}"
        "<wfs:OutputFormats>"
        + "".join(f"<wfs:Format>{escape(f)}</wfs:Format>" for f in formats)
        + f"</wfs:OutputFormats>{_bbox(extent)}</wfs:FeatureType>"
    )


def _document_20(
    service: OwsService, layers: list[tuple[LayerDefinition, Extent]], sections: frozenset[str]
) -> bytes:
    names = tuple(type_name(layer) for layer, _ in layers)
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        '<wfs:WFS_Capabilities version="2.0.0" xmlns:wfs="http://www.opengis.net/wfs/2.0" '
        f'xmlns:ows="{OWS11}" xmlns:fes="http://www.opengis.net/fes/2.0" '
        'xmlns:gml="http://www.opengis.net/gml/3.2" xmlns:xlink="http://www.w3.org/1999/xlink" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xmlns:{PREFIX}="{NAMESPACE}" xsi:schemaLocation="http://www.opengis.net/wfs/2.0 '
        'http://schemas.opengis.net/wfs/2.0/wfs.xsd">',
    ]
    if "ServiceIdentification" in sections:
        parts.append(_identification(service, ("2.0.0", "1.1.0", "1.0.0")))
    if "ServiceProvider" in sections:
        parts.append(_provider(service))
    if "OperationsMetadata" in sections:
        parts.append("<ows:OperationsMetadata>")
        parts.append(
            _operation(service, "GetCapabilities", {"AcceptVersions": ("2.0.0", "1.1.0", "1.0.0")})
        )
        parts.append(
            _operation(
                service,
                "DescribeFeatureType",
                {"outputFormat": ("application/gml+xml; version=3.2",)},
            )
        )
        parts.append(
            _operation(
                service,
                "GetFeature",
                {"outputFormat": OUTPUT_FORMATS_20, "resultType": ("results", "hits")},
            )
        )
        parts.append(
            _operation(service, "GetPropertyValue", {"outputFormat": OUTPUT_FORMATS_20[:1]})
        )
        parts.append(_operation(service, "ListStoredQueries", {}))
        parts.append(_operation(service, "DescribeStoredQueries", {}))
        parts.append(
            '<ows:Parameter name="version"><ows:AllowedValues><ows:Value>2.0.0</ows:Value>'
            "<ows:Value>1.1.0</ows:Value><ows:Value>1.0.0</ows:Value></ows:AllowedValues>"
            "</ows:Parameter>"
        )
        parts.extend(_constraint(name, value) for name, value in WFS_CONSTRAINTS_20.items())
        parts.append(_constraint("CountDefault", service.max_count))
        parts.append(
            '<ows:Constraint name="QueryExpressions"><ows:AllowedValues>'
            "<ows:Value>wfs:Query</ows:Value><ows:Value>wfs:StoredQuery</ows:Value>"
            "</ows:AllowedValues></ows:Constraint>"
        )
        parts.append("</ows:OperationsMetadata>")
    if "FeatureTypeList" in sections:
        parts.append("<wfs:FeatureTypeList>")
        parts.extend(_feature_type(layer, extent, "2") for layer, extent in layers)
        parts.append("</wfs:FeatureTypeList>")
    if "Filter_Capabilities" in sections:
        parts.append(_filter_capabilities_20())
    del names
    parts.append("</wfs:WFS_Capabilities>")
    return "".join(parts).encode()


def _filter_capabilities_20() -> str:
    conformance = "".join(_constraint(name, value, "fes") for name, value in CONFORMANCE_20.items())
    comparisons = "".join(f'<fes:ComparisonOperator name="{c}"/>' for c in COMPARISONS_20)
    operands = "".join(f'<fes:GeometryOperand name="{g}"/>' for g in GEOMETRY_OPERANDS)
    spatial = "".join(f'<fes:SpatialOperator name="{s}"/>' for s in SPATIAL_OPERATORS)
    return (
        f"<fes:Filter_Capabilities><fes:Conformance>{conformance}</fes:Conformance>"
        '<fes:Id_Capabilities><fes:ResourceIdentifier name="fes:ResourceId"/>'
        "</fes:Id_Capabilities>"
        "<fes:Scalar_Capabilities><fes:LogicalOperators/>"
        f"<fes:ComparisonOperators>{comparisons}</fes:ComparisonOperators>"
        "</fes:Scalar_Capabilities>"
        f"<fes:Spatial_Capabilities><fes:GeometryOperands>{operands}</fes:GeometryOperands>"
        f"<fes:SpatialOperators>{spatial}</fes:SpatialOperators></fes:Spatial_Capabilities>"
        "</fes:Filter_Capabilities>"
    )


def _document_11(
    service: OwsService, layers: list[tuple[LayerDefinition, Extent]], sections: frozenset[str]
) -> bytes:
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        '<wfs:WFS_Capabilities version="1.1.0" xmlns:wfs="http://www.opengis.net/wfs" '
        f'xmlns:ows="{OWS10}" xmlns:ogc="http://www.opengis.net/ogc" '
        'xmlns:gml="http://www.opengis.net/gml" xmlns:xlink="http://www.w3.org/1999/xlink" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xmlns:{PREFIX}="{NAMESPACE}" xsi:schemaLocation="http://www.opengis.net/wfs '
        'http://schemas.opengis.net/wfs/1.1.0/wfs.xsd">',
    ]
    if "ServiceIdentification" in sections:
        parts.append(_identification(service, ("1.1.0",)))
    if "ServiceProvider" in sections:
        parts.append(_provider(service))
    if "OperationsMetadata" in sections:
        parts.append("<ows:OperationsMetadata>")
        parts.append(
            _operation(service, "GetCapabilities", {"AcceptVersions": ("1.1.0", "2.0.0", "1.0.0")})
        )
        parts.append(
            _operation(
                service, "DescribeFeatureType", {"outputFormat": ("text/xml; subtype=gml/3.1.1",)}
            )
        )
        parts.append(
            _operation(
                service,
                "GetFeature",
                {"outputFormat": OUTPUT_FORMATS_11, "resultType": ("results", "hits")},
            )
        )
        parts.append("</ows:OperationsMetadata>")
    if "FeatureTypeList" in sections:
        parts.append(
            "<wfs:FeatureTypeList><wfs:Operations><wfs:Operation>Query</wfs:Operation>"
            "</wfs:Operations>"
        )
        parts.extend(_feature_type(layer, extent, "1") for layer, extent in layers)
        parts.append("</wfs:FeatureTypeList>")
    if "Filter_Capabilities" in sections:
        operands = "".join(
            f"<ogc:GeometryOperand>{g}</ogc:GeometryOperand>" for g in GEOMETRY_OPERANDS
        )
        spatial = "".join(f'<ogc:SpatialOperator name="{s}"/>' for s in SPATIAL_OPERATORS)
        comparisons = "".join(
            f"<ogc:ComparisonOperator>{c}</ogc:ComparisonOperator>" for c in COMPARISONS_11
        )
        parts.append(
            "<ogc:Filter_Capabilities><ogc:Spatial_Capabilities>"
            f"<ogc:GeometryOperands>{operands}</ogc:GeometryOperands>"
            f"<ogc:SpatialOperators>{spatial}</ogc:SpatialOperators></ogc:Spatial_Capabilities>"
            "<ogc:Scalar_Capabilities><ogc:LogicalOperators/>"
            f"<ogc:ComparisonOperators>{comparisons}</ogc:ComparisonOperators>"
            "</ogc:Scalar_Capabilities>"
            "<ogc:Id_Capabilities><ogc:EID/><ogc:FID/></ogc:Id_Capabilities>"
            "</ogc:Filter_Capabilities>"
        )
    parts.append("</wfs:WFS_Capabilities>")
    return "".join(parts).encode()


SPATIAL_OPERATORS_10 = (
    "BBOX",
    "Equals",
    "Disjoint",
    "Intersect",
    "Touches",
    "Crosses",
    "Within",
    "Contains",
    "Overlaps",
    "DWithin",
    "Beyond",
)


def _dcp_10(service: OwsService) -> str:
    return (
        f"<DCPType><HTTP><Get onlineResource={quoteattr(service.url + '?')}/></HTTP></DCPType>"
        f"<DCPType><HTTP><Post onlineResource={quoteattr(service.url)}/></HTTP></DCPType>"
    )


def _document_10(service: OwsService, layers: list[tuple[LayerDefinition, Extent]]) -> bytes:
    """The WFS 1.0.0 capabilities: features in GML 2, every CRS written x/y."""
    info = service.info
    dcp = _dcp_10(service)
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        '<WFS_Capabilities version="1.0.0" xmlns="http://www.opengis.net/wfs" '
        'xmlns:ogc="http://www.opengis.net/ogc" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xmlns:{PREFIX}="{NAMESPACE}" xsi:schemaLocation="http://www.opengis.net/wfs '
        'http://schemas.opengis.net/wfs/1.0.0/WFS-capabilities.xsd">',
        "<Service><Name>WFS</Name>"
        f"<Title>{escape(info.title)}</Title><Abstract>{escape(info.abstract)}</Abstract>"
        f"<Keywords>{escape(', '.join(info.keywords))}</Keywords>"
        f"<OnlineResource>{escape(service.url)}</OnlineResource>"
        f"<Fees>{escape(info.fees)}</Fees>"
        f"<AccessConstraints>{escape(info.access_constraints)}</AccessConstraints></Service>",
        "<Capability><Request>"
        f"<GetCapabilities>{dcp}</GetCapabilities>"
        "<DescribeFeatureType><SchemaDescriptionLanguage><XMLSCHEMA/>"
        f"</SchemaDescriptionLanguage>{dcp}</DescribeFeatureType>"
        f"<GetFeature><ResultFormat><GML2/></ResultFormat>{dcp}</GetFeature>"
        "</Request></Capability>",
        "<FeatureTypeList><Operations><Query/></Operations>",
    ]
    for layer, extent in layers:
        box = ""
        if extent is not None:
            box = (
                f'<LatLongBoundingBox minx="{extent[0]:.6f}" miny="{extent[1]:.6f}" '
                f'maxx="{extent[2]:.6f}" maxy="{extent[3]:.6f}"/>'
            )
        parts.append(
            f"<FeatureType><Name>{type_name(layer)}</Name>"
            f"<Title>{escape(layer.title)}</Title><Abstract>{escape(layer.abstract)}</Abstract>"
            f"<Keywords>{escape(', '.join(layer.keywords))}</Keywords>"
            f"<SRS>EPSG:{layer.storage_srid}</SRS>{box}</FeatureType>"
        )
    spatial = "".join(f"<ogc:{name}/>" for name in SPATIAL_OPERATORS_10)
    parts.append(
        "</FeatureTypeList><ogc:Filter_Capabilities><ogc:Spatial_Capabilities>"
        f"<ogc:Spatial_Operators>{spatial}</ogc:Spatial_Operators></ogc:Spatial_Capabilities>"
        "<ogc:Scalar_Capabilities><ogc:Logical_Operators/><ogc:Comparison_Operators>"
        "<ogc:Simple_Comparisons/><ogc:Like/><ogc:Between/><ogc:NullCheck/>"
        "</ogc:Comparison_Operators></ogc:Scalar_Capabilities></ogc:Filter_Capabilities>"
        "</WFS_Capabilities>"
    )
    return "".join(parts).encode()
