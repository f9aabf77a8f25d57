"""WMS 1.3.0 and 1.1.1 over the layer catalog, as framework-free functions.

GetMap renders with Mapnik (``layers.render``); GetFeatureInfo reuses the feature
queries of OGC API Features (the same role fields and rows, GeoJSON built by PostGIS);
GetLegendGraphic draws the style's own rules. Errors are answered the way the request
asked: a service exception XML of its version, the message drawn in an image, or a
blank image.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import orjson
from sqlalchemy.engine import Connection

from gis_core.errors import NotFound, UrbanGisError
from layers import queries, render, styles, wfs_gml, wms_capabilities
from layers.catalog import LayerDefinition
from layers.features import Answer, request_connection
from layers.roles import layer_for, visible_layers
from layers.spatial import CRS84_SRID, north_first, query_box
from layers.wfs_ows import Kvp, OwsError, OwsService, as_ows_error, invalid, srs_and_order

VERSIONS = ("1.3.0", "1.1.1")
SE_XML_111 = "application/vnd.ogc.se_xml"
XML_130 = "text/xml"
INFO_FORMATS = {
    "application/json": "json",
    "application/geo+json": "json",
    "text/html": "html",
    "application/vnd.ogc.gml": "gml",
    "application/gml+xml; version=3.2": "gml",
    "application/gml+xml": "gml",
    "text/xml": "gml",
}
MAX_FEATURE_COUNT = 50
# Features within this many pixels of the clicked one are reported.
CLICK_TOLERANCE = 3
LEGEND_WIDTH = 240
LEGEND_ROW = 22
RASTER_REFRESH_SECONDS = 30.0


@dataclass
class WmsState:
    """Per-process WMS state: the renderer and the raster list (re-read now and then)."""

    renderer: render.Renderer
    data_dir: Path | None = None
    rasters: list[render.RasterSource] = field(default_factory=list)
    rasters_read_at: float = float("-inf")

    def raster_list(self, conn: Connection) -> list[render.RasterSource]:
        now = time.monotonic()
        if now - self.rasters_read_at > RASTER_REFRESH_SECONDS:
            self.rasters = render.raster_sources(conn, self.data_dir)
            self.rasters_read_at = now
        return self.rasters

    def current_rasters(self, service: OwsService) -> list[render.RasterSource]:
        """The raster list, opening a connection only when it is due for a re-read."""
        if time.monotonic() - self.rasters_read_at <= RASTER_REFRESH_SECONDS:
            return self.rasters
        with request_connection(service.data) as conn:
            return self.raster_list(conn)


Operation = Callable[[OwsService, WmsState, str, Kvp, str], Answer]


def handle(
    service: OwsService, wms_state: WmsState, role: str, params: Iterable[tuple[str, str]]
) -> Answer:
    """One KVP request; errors become an exception in the format the request asked for."""
    kvp = Kvp.parse(params)
    version = (
        "1.1.1" if (kvp.text("version") or kvp.text("wmtver") or "").startswith("1.1") else "1.3.0"
    )
    try:
        name = kvp.text("service")
        if name is not None and name.upper() != "WMS":
            raise invalid(f"service {name!r} is not WMS", "service")
        request = kvp.text("request")
        if request is None:
            raise OwsError("MissingParameterValue", "the request parameter is missing", "request")
        operation = OPERATIONS.get(request.lower())
        if operation is None:
            raise OwsError("OperationNotSupported", f"{request!r} is not supported", "request")
        if request.lower() in ("getcapabilities", "capabilities"):
            version = _negotiate(kvp.text("version"))
        elif kvp.text("version") not in VERSIONS and request.lower() != "getlegendgraphic":
            raise invalid(
                f"version {kvp.text('version')!r} is not supported: 1.3.0, 1.1.1", "version"
            )
        return operation(service, wms_state, role, kvp, version)
    except UrbanGisError as exc:
        return exception_answer(as_ows_error(exc), kvp, version)


def _negotiate(asked: str | None) -> str:
    """The highest version not above the asked one (1.3.0 when none is asked)."""
    if asked is None or asked >= "1.3.0":
        return "1.3.0"
    return "1.1.1"


# -- exceptions ---------------------------------------------------------------------
def exception_xml(error: OwsError, version: str) -> bytes:
    code = f' code="{escape(error.ogc_code)}"' if error.ogc_code else ""
    locator = f' locator="{escape(error.locator)}"' if error.locator else ""
    body = f"<ServiceException{code}{locator}>{escape(error.message)}</ServiceException>"
    if version == "1.1.1":
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            "<!DOCTYPE ServiceExceptionReport SYSTEM "
            '"http://schemas.opengis.net/wms/1.1.1/exception_1_1_1.dtd">'
            f'<ServiceExceptionReport version="1.1.1">{body}</ServiceExceptionReport>'
        ).encode()
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<ServiceExceptionReport version="1.3.0" xmlns="http://www.opengis.net/ogc" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:schemaLocation="http://www.opengis.net/ogc '
        'http://schemas.opengis.net/wms/1.3.0/exceptions_1_3_0.xsd">'
        f"{body}</ServiceExceptionReport>"
    ).encode()


def exception_answer(error: OwsError, kvp: Kvp, version: str) -> Answer:
    """XML, INIMAGE or BLANK, as ``EXCEPTIONS`` asks (images only for GetMap)."""
    mode = (kvp.text("exceptions") or "").lower()
    is_map = (kvp.text("request") or "").lower() in ("getmap", "map")
    if is_map and mode.endswith(("inimage", "blank")):
        try:
            width, height = _size(kvp, 4096)
            fmt = _format(kvp)
            transparent = (kvp.text("transparent") or "").upper() == "TRUE"
            if mode.endswith("blank"):
                image = render.blank_image(width, height, fmt, transparent, _bgcolor(kvp))
            else:
                image = render.message_image(error.message, width, height, fmt, transparent)
            return Answer(media_type=fmt, body=[image])
        except UrbanGisError:
            pass  # the image parameters themselves are wrong: answer in XML
    media = SE_XML_111 if version == "1.1.1" else XML_130
    status = 200 if version == "1.1.1" or error.http_status < 500 else error.http_status
    return Answer(status=status, media_type=media, body=[exception_xml(error, version)])


# -- parameters ---------------------------------------------------------------------
def _size(kvp: Kvp, max_size: int) -> tuple[int, int]:
    values = []
    for name in ("width", "height"):
        text = kvp.require(name)
        try:
            value = int(text)
        except ValueError:
            raise invalid(f"{name} must be an integer, got {text!r}", name) from None
        if not 1 <= value <= max_size:
            raise invalid(f"{name} must be between 1 and {max_size}", name)
        values.append(value)
    return values[0], values[1]


def _format(kvp: Kvp) -> str:
    text = kvp.require("format")
    value = " ".join(text.lower().replace(";", "; ").split())
    if value not in render.FORMATS:
        raise OwsError("InvalidFormat", f"format {text!r} is not supported", "format")
    return value


def _bgcolor(kvp: Kvp) -> str:
    text = kvp.text("bgcolor")
    if text is None:
        return "#ffffff"
    value = text.lower().removeprefix("0x").removeprefix("#")
    if len(value) != 6 or any(c not in "0123456789abcdef" for c in value):
        raise invalid(f"bgcolor {text!r} is not 0xRRGGBB", "bgcolor")
    return "#" + value


def offered_srids(service: OwsService, role: str) -> tuple[int, ...]:
    found: dict[int, None] = {}
    for layer in visible_layers(service.catalog, role):
        found.update(dict.fromkeys(layer.srids))
    return tuple(found)


def _crs(kvp: Kvp, version: str, offered: Sequence[int]) -> int:
    name = "crs" if version == "1.3.0" else "srs"
    text = kvp.text(name) or kvp.text("srs" if name == "crs" else "crs")
    code = "InvalidCRS" if version == "1.3.0" else "InvalidSRS"
    if text is None:
        raise OwsError("MissingParameterValue", f"the {name} parameter is missing", name)
    try:
        srid, _ = srs_and_order(text, name)
    except OwsError:
        raise OwsError(code, f"{name.upper()} {text!r} is not known", name) from None
    if srid != CRS84_SRID and srid not in offered:
        raise OwsError(code, f"{name.upper()} {text!r} is not offered", name)
    return srid


def _bbox(kvp: Kvp, version: str, srid: int) -> tuple[float, float, float, float]:
    """The box as x/y (east/north); WMS 1.3.0 gives it in the CRS's own axis order."""
    text = kvp.require("bbox")
    parts = text.split(",")
    if len(parts) != 4:
        raise invalid("BBOX needs 4 comma-separated numbers", "bbox")
    try:
        a, b, c, d = (float(p) for p in parts)
    except ValueError:
        raise invalid("BBOX values must be numbers", "bbox") from None
    if version == "1.3.0" and srid != CRS84_SRID and north_first(srid):
        a, b, c, d = b, a, d, c
    if not (a < c and b < d):
        raise invalid("the BBOX minimum must be below its maximum", "bbox")
    return (a, b, c, d)


def _map_layers(
    service: OwsService,
    role: str,
    kvp: Kvp,
    rasters: Sequence[render.RasterSource],
) -> tuple[render.MapLayer, ...]:
    names = [n.strip() for n in kvp.require("layers").split(",") if n.strip()]
    style_text = kvp.get("styles") or ""
    style_names = [s.strip() for s in style_text.split(",")] if style_text.strip() else []
    if style_names and len(style_names) != len(names):
        raise OwsError(
            "StyleNotDefined", "STYLES must name one style per layer (or be empty)", "styles"
        )
    by_raster = {r.name: r for r in rasters}
    chosen = []
    for index, name in enumerate(names):
        wanted = style_names[index] if style_names else ""
        raster = by_raster.get(name)
        if raster is not None:
            if wanted not in ("", "default"):
                raise OwsError("StyleNotDefined", f"style {wanted!r} of {name!r}", "styles")
            chosen.append(render.MapLayer(name, "default", raster=raster))
            continue
        layer = _layer(service, role, name)
        style = styles.find_style(layer, wanted)
        if style is None:
            raise OwsError("StyleNotDefined", f"layer {name!r} has no style {wanted!r}", "styles")
        chosen.append(render.MapLayer(name, style.name, layer=layer))
    return tuple(chosen)


def _layer(service: OwsService, role: str, name: str) -> LayerDefinition:
    try:
        return layer_for(service.catalog, name, role)
    except NotFound:
        raise OwsError("LayerNotDefined", f"layer {name!r} is not defined", "layers") from None


# -- operations ---------------------------------------------------------------------
def get_capabilities(
    service: OwsService, wms_state: WmsState, role: str, kvp: Kvp, version: str
) -> Answer:
    layers = visible_layers(service.catalog, role)
    with request_connection(service.data) as conn:
        extents = [(layer, service.catalog.state(conn, layer).extent) for layer in layers]
        rasters = wms_state.raster_list(conn)
    body = wms_capabilities.document(service, extents, rasters, version)
    media = "application/vnd.ogc.wms_xml" if version == "1.1.1" else "text/xml"
    return Answer(media_type=media, body=[body])


def get_map(service: OwsService, wms_state: WmsState, role: str, kvp: Kvp, version: str) -> Answer:
    width, height = _size(kvp, service.max_size)
    fmt = _format(kvp)
    rasters = wms_state.current_rasters(service)
    srid = _crs(kvp, version, offered_srids(service, role))
    map_layers = _map_layers(service, role, kvp, rasters)
    request = render.MapRequest(
        role=role,
        layers=map_layers,
        srid=srid,
        bbox=_bbox(kvp, version, srid),
        width=width,
        height=height,
        format=fmt,
        transparent=(kvp.text("transparent") or "FALSE").upper() == "TRUE",
        bgcolor=_bgcolor(kvp),
    )
    layers = visible_layers(service.catalog, role)
    image = wms_state.renderer.render(request, rasters, layers)
    return Answer(media_type=fmt, body=[image])


def get_feature_info(
    service: OwsService, wms_state: WmsState, role: str, kvp: Kvp, version: str
) -> Answer:
    width, height = _size(kvp, service.max_size)
    srid = _crs(kvp, version, offered_srids(service, role))
    minx, miny, maxx, maxy = _bbox(kvp, version, srid)
    i, j = _pixel(kvp, version, width, height)
    info = (kvp.text("info_format") or "text/html").lower()
    kind = INFO_FORMATS.get(" ".join(info.split()))
    if kind is None:
        raise OwsError("InvalidFormat", f"INFO_FORMAT {info!r} is not supported", "info_format")
    count = _feature_count(kvp)
    with request_connection(service.data) as conn:
        rasters = {r.name for r in wms_state.raster_list(conn)}
        names = [n.strip() for n in kvp.require("query_layers").split(",") if n.strip()]
        layers = []
        for name in names:
            if name in rasters:
                raise OwsError(
                    "LayerNotQueryable", f"layer {name!r} is not queryable", "query_layers"
                )
            layers.append(_layer(service, role, name))
        x_res = (maxx - minx) / width
        y_res = (maxy - miny) / height
        x = minx + (i + 0.5) * x_res
        y = maxy - (j + 0.5) * y_res
        half_x, half_y = CLICK_TOLERANCE * x_res, CLICK_TOLERANCE * y_res
        box_xy = (x - half_x, y - half_y, x + half_x, y + half_y)
        results = []
        for layer in layers:
            state = service.catalog.state(conn, layer)
            values = box_xy
            if srid != CRS84_SRID and north_first(srid):
                values = (box_xy[1], box_xy[0], box_xy[3], box_xy[2])
            box = query_box(values, srid, layer, state.extent)
            out_srid = CRS84_SRID if kind == "json" or kind == "html" else srid
            query = queries.FeatureQuery(
                layer=layer, role=role, out_srid=out_srid, box=box, limit=count
            )
            if kind == "gml":
                encoding = wfs_gml.GML_32
                text = wfs_gml.feature_xml(layer, query.output_fields, out_srid, encoding)
                rows = conn.execute(wfs_gml.member_statement(query, text)).scalars().all()
            else:
                rows = queries.fetch_page(conn, query)
            results.append((layer, list(rows)[:count]))
    return _info_answer(kind, results)


def _pixel(kvp: Kvp, version: str, width: int, height: int) -> tuple[int, int]:
    names = ("i", "j") if version == "1.3.0" else ("x", "y")
    values = []
    for name, limit in zip(names, (width, height), strict=True):
        text = kvp.text(name) or kvp.text({"i": "x", "j": "y", "x": "i", "y": "j"}[name])
        if text is None:
            raise OwsError(
                "MissingParameterValue", f"the {name.upper()} parameter is missing", name
            )
        try:
            value = int(float(text))
        except ValueError:
            raise OwsError("InvalidPoint", f"{name.upper()} must be a pixel index", name) from None
        if not 0 <= value < limit:
            raise OwsError("InvalidPoint", f"{name.upper()} lies outside the map", name)
        values.append(value)
    return values[0], values[1]


def _feature_count(kvp: Kvp) -> int:
    text = kvp.text("feature_count")
    if text is None:
        return 1
    try:
        value = int(text)
    except ValueError:
        raise invalid(f"FEATURE_COUNT must be an integer, got {text!r}", "feature_count") from None
    if value < 1:
        raise invalid("FEATURE_COUNT must be at least 1", "feature_count")
    return min(value, MAX_FEATURE_COUNT)


def _info_answer(kind: str, results: list[tuple[LayerDefinition, list[str]]]) -> Answer:
    if kind == "json":
        features = [
            text[:-1] + ',"layer":' + orjson.dumps(layer.id).decode() + "}"
            for layer, rows in results
            for text in rows
        ]
        body = '{"type":"FeatureCollection","features":[' + ",".join(features) + "]}"
        return Answer(media_type="application/json", body=[body.encode()])
    if kind == "html":
        document: dict[str, Any] = {
            "layers": [
                {
                    "id": layer.id,
                    "title": layer.title,
                    "features": [orjson.loads(text) for text in rows],
                }
                for layer, rows in results
            ]
        }
        return Answer(media_type="text/html", document=document)
    head = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<wfs:FeatureCollection {wfs_gml.GML_32.namespaces} numberMatched="unknown" '
        f'numberReturned="{sum(len(rows) for _, rows in results)}" timeStamp="'
        f'{time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}">'
    )
    members = "".join(text for _, rows in results for text in rows)
    return Answer(
        media_type="application/gml+xml; version=3.2",
        body=[(head + members + "</wfs:FeatureCollection>").encode()],
    )


def get_legend_graphic(
    service: OwsService, wms_state: WmsState, role: str, kvp: Kvp, version: str
) -> Answer:
    name = kvp.require("layer")
    fmt = _format(kvp) if kvp.text("format") else "image/png"
    layer = _layer(service, role, name)
    style = styles.find_style(layer, kvp.text("style"))
    if style is None:
        raise OwsError(
            "StyleNotDefined", f"layer {name!r} has no style {kvp.text('style')!r}", "style"
        )
    width = LEGEND_WIDTH
    if kvp.text("width"):
        width, _ = _size(Kvp({"width": kvp.require("width"), "height": "1"}), 2048)
    image = render.legend_image(layer, style, fmt, width, LEGEND_ROW)
    return Answer(media_type=fmt, body=[image])


OPERATIONS: dict[str, Operation] = {
    "getcapabilities": get_capabilities,
    "capabilities": get_capabilities,
    "getmap": get_map,
    "map": get_map,
    "getfeatureinfo": get_feature_info,
    "feature_info": get_feature_info,
    "getlegendgraphic": get_legend_graphic,
}
