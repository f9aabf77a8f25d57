"""The WMS capabilities documents (1.3.0 and 1.1.1).

Every catalog layer the role may see is listed (vector layers queryable, raster layers
not), with its CRSs, its geographic extent and its bounding box in each CRS (in that
CRS's axis order for 1.3.0), and its styles, each with a LegendURL.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote, urlencode
from xml.sax.saxutils import escape, quoteattr

import numpy as np
from pyproj.exceptions import CRSError

from gis_core.crs import transform_coords
from gis_core.errors import UrbanGisError
from layers import render, styles
from layers.catalog import LayerDefinition
from layers.spatial import north_first
from layers.wfs_ows import OwsService

Extent = tuple[float, float, float, float] | None
MAP_FORMATS = ("image/png", "image/png; mode=8bit", "image/jpeg")
INFO_FORMATS = ("text/html", "application/json", "application/vnd.ogc.gml")


def document(
    service: OwsService,
    layers: list[tuple[LayerDefinition, Extent]],
    rasters: Sequence[render.RasterSource],
    version: str,
) -> bytes:
    srids = tuple(dict.fromkeys(s for layer, _ in layers for s in layer.srids))
    union = _union([extent for _, extent in layers])
    children = [_layer(service, layer, extent, version) for layer, extent in layers]
    children.extend(_raster(raster, union, version) for raster in rasters)
    crs_tag = "CRS" if version == "1.3.0" else "SRS"
    root_crs = "".join(f"<{crs_tag}>EPSG:{s}</{crs_tag}>" for s in srids)
    if version == "1.3.0":
        root_crs += "<CRS>CRS:84</CRS>"
    root = (
        f"<Layer><Title>{escape(service.info.title)}</Title>{root_crs}"
        f"{_geographic(union, version)}{''.join(_boxes(union, srids, version))}"
        f"{''.join(children)}</Layer>"
    )
    if version == "1.3.0":
        return _document_130(service, root)
    return _document_111(service, root)


def _union(extents: list[Extent]) -> Extent:
    boxes = [e for e in extents if e is not None]
    if not boxes:
        return None
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def _geographic(extent: Extent, version: str) -> str:
    if extent is None:
        return ""
    w, s, e, n = extent
    if version == "1.3.0":
        return (
            f"<EX_GeographicBoundingBox><westBoundLongitude>{w:.6f}</westBoundLongitude>"
            f"<eastBoundLongitude>{e:.6f}</eastBoundLongitude>"
            f"<southBoundLatitude>{s:.6f}</southBoundLatitude>"
            f"<northBoundLatitude>{n:.6f}</northBoundLatitude></EX_GeographicBoundingBox>"
        )
    return f'<LatLonBoundingBox minx="{w:.6f}" miny="{s:.6f}" maxx="{e:.6f}" maxy="{n:.6f}"/>'


def _projected(extent: tuple[float, float, float, float], srid: int) -> tuple[float, ...]:
    """The CRS84 extent in ``srid`` (x/y), through the platform's transformations."""
    w, s, e, n = extent
    t = np.linspace(0.0, 1.0, 9)
    xs = np.concatenate([w + (e - w) * t, np.full(9, e), e - (e - w) * t, np.full(9, w)])
    ys = np.concatenate([np.full(9, s), s + (n - s) * t, np.full(9, n), n - (n - s) * t])
    px, py = transform_coords(4326, srid, xs, ys)
    return (float(px.min()), float(py.min()), float(px.max()), float(py.max()))


def _boxes(extent: Extent, srids: Sequence[int], version: str) -> list[str]:
    if extent is None:
        return []
    out = []
    for srid in srids:
        try:
            minx, miny, maxx, maxy = extent if srid in (4326, 4258) else _projected(extent, srid)
        except (UrbanGisError, ValueError, CRSError):
            continue  # a CRS whose area does not cover the extent has no box
        digits = 6 if srid in (4326, 4258) else 2
        if version == "1.3.0" and north_first(srid):
            minx, miny, maxx, maxy = miny, minx, maxy, maxx
        tag = "CRS" if version == "1.3.0" else "SRS"
        out.append(
            f'<BoundingBox {tag}="EPSG:{srid}" minx="{minx:.{digits}f}" miny="{miny:.{digits}f}" '
            f'maxx="{maxx:.{digits}f}" maxy="{maxy:.{digits}f}"/>'
        )
    return out


def _legend_url(service: OwsService, layer: str, style: str, version: str) -> str:
    params = {
        "SERVICE": "WMS",
        "VERSION": version,
        "REQUEST": "GetLegendGraphic",
        "LAYER": layer,
        "STYLE": style,
        "FORMAT": "image/png",
        "SLD_VERSION": "1.1.0",
    }
    return service.url + "?" + urlencode(params, quote_via=quote)


def _layer(service: OwsService, layer: LayerDefinition, extent: Extent, version: str) -> str:
    crs_tag = "CRS" if version == "1.3.0" else "SRS"
    crs = "".join(f"<{crs_tag}>EPSG:{s}</{crs_tag}>" for s in layer.srids)
    keywords = "".join(f"<Keyword>{escape(k)}</Keyword>" for k in layer.keywords)
    style_parts = []
    for style in styles.styles_for(layer):
        rows = max(len(styles.legend_rules(style)), 1)
        href = quoteattr(_legend_url(service, layer.id, style.name, version))
        style_parts.append(
            f"<Style><Name>{style.name}</Name><Title>{escape(style.title)}</Title>"
            f'<LegendURL width="240" height="{rows * 22}"><Format>image/png</Format>'
            f'<OnlineResource xmlns:xlink="http://www.w3.org/1999/xlink" xlink:type="simple" '
            f"xlink:href={href}/></LegendURL></Style>"
        )
    return (
        f'<Layer queryable="1" opaque="0"><Name>{layer.id}</Name>'
        f"<Title>{escape(layer.title)}</Title><Abstract>{escape(layer.abstract)}</Abstract>"
        f"<KeywordList>{keywords}</KeywordList>{crs}"
        f"{_geographic(extent, version)}{''.join(_boxes(extent, layer.srids, version))}"
        f"{''.join(style_parts)}</Layer>"
    )


def _raster(raster: render.RasterSource, extent: Extent, version: str) -> str:
    return (
        f'<Layer queryable="0" opaque="1"><Name>{escape(raster.name)}</Name>'
        f"<Title>{escape(raster.title)}</Title>{_geographic(raster.extent or extent, version)}"
        "<Style><Name>default</Name><Title>default</Title></Style></Layer>"
    )


def _request_section(service: OwsService, version: str) -> str:
    href = quoteattr(service.url + "?")
    dcp = (
        '<DCPType><HTTP><Get><OnlineResource xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'xlink:type="simple" xlink:href={href}/></Get></HTTP></DCPType>'
    )
    caps_format = "text/xml" if version == "1.3.0" else "application/vnd.ogc.wms_xml"
    legend_tag = "sld:GetLegendGraphic" if version == "1.3.0" else "GetLegendGraphic"

    def formats(values: Sequence[str]) -> str:
        return "".join(f"<Format>{escape(v)}</Format>" for v in values)

    return (
        f"<Request><GetCapabilities>{formats((caps_format,))}{dcp}</GetCapabilities>"
        f"<GetMap>{formats(MAP_FORMATS)}{dcp}</GetMap>"
        f"<GetFeatureInfo>{formats(INFO_FORMATS)}{dcp}</GetFeatureInfo>"
        f"<{legend_tag}>{formats(('image/png', 'image/jpeg'))}{dcp}</{legend_tag}>"
        "</Request>"
    )


def _service(service: OwsService, version: str) -> str:
    info = service.info
    keywords = "".join(f"<Keyword>{escape(k)}</Keyword>" for k in info.keywords)
    limits = (
        f"<MaxWidth>{service.max_size}</MaxWidth><MaxHeight>{service.max_size}</MaxHeight>"
        if version == "1.3.0"
        else ""
    )
    contact = (
        "<ContactInformation><ContactPersonPrimary><ContactPerson/>"
        f"<ContactOrganization>{escape(info.provider)}</ContactOrganization>"
        "</ContactPersonPrimary>"
        f"<ContactElectronicMailAddress>{escape(info.contact_email)}"
        "</ContactElectronicMailAddress></ContactInformation>"
    )
    name = "WMS" if version == "1.3.0" else "OGC:WMS"
    return (
        f"<Service><Name>{name}</Name><Title>{escape(info.title)}</Title>"
        f"<Abstract>{escape(info.abstract)}</Abstract><KeywordList>{keywords}</KeywordList>"
        '<OnlineResource xmlns:xlink="http://www.w3.org/1999/xlink" xlink:type="simple" '
        f"xlink:href={quoteattr(service.url)}/>{contact}"
        f"<Fees>{escape(info.fees)}</Fees>"
        f"<AccessConstraints>{escape(info.access_constraints)}</AccessConstraints>{limits}"
        "</Service>"
    )


def _document_130(service: OwsService, root: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<WMS_Capabilities version="1.3.0" xmlns="http://www.opengis.net/wms" '
        'xmlns:sld="http://www.opengis.net/sld" xmlns:xlink="http://www.w3.org/1999/xlink" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:schemaLocation="http://www.opengis.net/wms '
        "http://schemas.opengis.net/wms/1.3.0/capabilities_1_3_0.xsd "
        "http://www.opengis.net/sld "
        'http://schemas.opengis.net/sld/1.1.0/sld_capabilities.xsd">'
        f"{_service(service, '1.3.0')}<Capability>{_request_section(service, '1.3.0')}"
        "<Exception><Format>XML</Format><Format>INIMAGE</Format><Format>BLANK</Format>"
        f"</Exception>{root}</Capability></WMS_Capabilities>"
    ).encode()


def _document_111(service: OwsService, root: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<!DOCTYPE WMT_MS_Capabilities SYSTEM "
        '"http://schemas.opengis.net/wms/1.1.1/WMS_MS_Capabilities.dtd">\n'
        '<WMT_MS_Capabilities version="1.1.1">'
        f"{_service(service, '1.1.1')}<Capability>{_request_section(service, '1.1.1')}"
        "<Exception><Format>application/vnd.ogc.se_xml</Format>"
        "<Format>application/vnd.ogc.se_inimage</Format>"
        "<Format>application/vnd.ogc.se_blank</Format></Exception>"
        f"{root}</Capability></WMT_MS_Capabilities>"
    ).encode()
