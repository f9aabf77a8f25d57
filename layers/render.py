"""Map images with Mapnik, straight from PostGIS, built once per process.

For each role and each source geometry (the storage column, or the ETRS89 twin for
geographic and Web Mercator maps, so Stereo 70 data reaches the web through the
official TransDatRO transformation) a template ``mapnik.Map`` is loaded once: its
PostGIS datasources read a sub-select with exactly the role's row filter and the
current versions, and only the public fields the styles label. Requests then get a
light working map (per thread, cached by layers/styles/CRS) that shares those
datasources: no SQL is compiled and no connection is opened per request; Mapnik adds
the bbox condition itself, which PostgreSQL pushes down to the GiST index.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import URL, Connection

from gis_core.errors import InvalidParameter
from layers import queries, styles
from layers.catalog import ETRS89, LayerDefinition
from layers.roles import visible_fields
from layers.spatial import CRS84_SRID

_isal_zlib: Any
try:  # ISA-L's deflate: the fast path of png_bytes (zlib is the fallback)
    from isal import isal_zlib as _isal_zlib
except ImportError:  # pragma: no cover - a platform without isal wheels
    _isal_zlib = None

# Working maps kept per thread (each holds only references to shared datasources).
WORKING_MAPS = 64
# Mapnik encoder options per WMS format; ``png32`` (RGBA, or RGB when opaque) is
# written by ``png_bytes`` instead. zlib level 1 costs a tenth of the default's time
# for about 15 % more bytes.
FORMATS = {
    "image/png": "png32",
    "image/png; mode=32bit": "png32",
    "image/png; mode=24bit": "png24",
    "image/png; mode=8bit": "png8:m=h:z=1",
    "image/png8": "png8:m=h:z=1",
    "image/jpeg": "jpeg85",
}
JPEG = "image/jpeg"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class RasterSource:
    """A registered raster (an orthophoto COG), the CRS of its pixels, its CRS84 extent."""

    name: str
    title: str
    path: str
    srid: int
    extent: tuple[float, float, float, float] | None = None


@dataclass(frozen=True)
class MapLayer:
    """One requested layer with its style; ``raster`` set for raster layers."""

    name: str
    style: str
    layer: LayerDefinition | None = None
    raster: RasterSource | None = None


@dataclass(frozen=True)
class MapRequest:
    """A checked GetMap: the box is x/y (east/north) in the map CRS."""

    role: str
    layers: tuple[MapLayer, ...]
    srid: int
    bbox: tuple[float, float, float, float]
    width: int
    height: int
    format: str
    transparent: bool
    bgcolor: str = "#ffffff"


# Variables the Mapnik wheel sets at import for its bundled libraries; its PROJ carries
# its own database, while these would point GDAL/PROJ users in the same process
# (rasterio, pyproj) at the wheel's nearly empty data folders. (ICU_DATA stays: Mapnik
# reads it lazily and nothing else here uses it.)
_WHEEL_ENV = ("PROJ_LIB", "PROJ_DATA", "GDAL_DATA")


_IMPORT_LOCK = threading.Lock()
_MAPNIK: list[Any] = []


def _mapnik() -> Any:
    """Import Mapnik on first use (a process that never renders never loads it), leaving
    the process environment as it was. Threads of one worker wait for the one import
    (a module still initialising must never be handed out)."""
    if _MAPNIK:
        return _MAPNIK[0]
    with _IMPORT_LOCK:
        if not _MAPNIK:
            before = {key: os.environ.get(key) for key in _WHEEL_ENV}
            import mapnik

            for key, value in before.items():
                if value is None:
                    os.environ.pop(key, None)
            _MAPNIK.append(mapnik)
    return _MAPNIK[0]


def map_srs(srid: int) -> str:
    return "epsg:4326" if srid == CRS84_SRID else f"epsg:{srid}"


def encode(image: Any, fmt: str, *, opaque: bool = False) -> bytes:
    """The image in a WMS format (PNG 32/24-bit, PNG 8-bit palette, JPEG); ``opaque``
    images (no TRANSPARENT) are written without an alpha channel."""
    mapnik_format = FORMATS.get(fmt)
    if mapnik_format is None:
        raise InvalidParameter(f"format {fmt!r} is not supported", locator="format")
    if mapnik_format in ("png32", "png24"):
        return png_bytes(image, alpha=mapnik_format == "png32" and not opaque)
    if opaque and mapnik_format.startswith("png") and ":t=" not in mapnik_format:
        mapnik_format += ":t=0"
    data: bytes = image.to_string(mapnik_format)
    return data


def png_bytes(image: Any, *, alpha: bool) -> bytes:
    """A true-colour PNG of a Mapnik RGBA image, written here rather than by libpng.

    A map image is flat colours, for which PNG's per-row filters buy little: rows go
    unfiltered (filter byte 0) into one deflate stream, by ISA-L when installed
    (several times faster than zlib at its fastest level, similar size), else by
    zlib level 1. This takes a 1024×768 map from about 18 ms of CPU to about 4 ms.
    """
    if image.premultiplied():
        image.demultiply()
    width, height = image.width(), image.height()
    pixels = np.frombuffer(image.to_string(), np.uint8).reshape(height, width, 4)
    channels = 4 if alpha else 3
    rows = np.empty((height, width * channels + 1), np.uint8)
    rows[:, 0] = 0
    rows[:, 1:].reshape(height, width, channels)[...] = pixels[..., :channels]
    header = struct.pack(">IIBBBBB", width, height, 8, 6 if alpha else 2, 0, 0, 0)
    return b"".join(
        (
            PNG_SIGNATURE,
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", _deflate(rows)),
            _png_chunk(b"IEND", b""),
        )
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _deflate(rows: np.ndarray[Any, Any]) -> bytes:
    if _isal_zlib is not None:
        return bytes(_isal_zlib.compress(rows.data, 2))
    return zlib.compress(rows.data, 1)


def raster_sources(conn: Connection, data_dir: Path | None = None) -> list[RasterSource]:
    """The current rasters of ``core.raster_layer`` (none before the table exists);
    relative paths are read from the data folder, missing files are left out."""
    exists = conn.execute(sa.text("SELECT to_regclass('core.raster_layer')")).scalar()
    if exists is None:
        return []
    rows = conn.execute(
        sa.text(
            "SELECT name, title, path, srid, ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) "
            "FROM (SELECT *, ST_Transform(extent, 4326) AS b FROM core.raster_layer "
            "WHERE valid_to IS NULL) AS r ORDER BY name"
        )
    )
    found = []
    for name, title, path, srid, *box in rows:
        file = Path(str(path))
        if not file.is_absolute() and data_dir is not None:
            file = data_dir / file
        if not file.exists():
            continue
        extent = (float(box[0]), float(box[1]), float(box[2]), float(box[3])) if box[0] else None
        found.append(RasterSource(str(name), str(title or name), str(file), int(srid), extent))
    return found


class Renderer:
    """Per-process Mapnik state: templates per (role, geometry source), working maps."""

    def __init__(self, url: URL, storage_srid: int, pool_size: int, timeout_ms: int) -> None:
        self.url = url
        self.storage_srid = storage_srid
        self.pool_size = pool_size
        self._templates: dict[tuple[str, str, tuple[str, ...]], Any] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        self._pid = os.getpid()
        # Mapnik's PostGIS plugin connects through libpq, which reads PGOPTIONS: its
        # queries run under the same statement timeout as the rest of the platform.
        os.environ.setdefault("PGOPTIONS", f"-c statement_timeout={timeout_ms}")

    # -- templates -------------------------------------------------------------------
    def source(self, srid: int) -> str:
        """``storage`` when the map is in the storage CRS, else ``etrs89`` (the twin)."""
        return "storage" if srid == self.storage_srid else "etrs89"

    def template(
        self,
        role: str,
        source: str,
        layers: Sequence[LayerDefinition],
        rasters: Sequence[RasterSource],
    ) -> Any:
        """The role's template map for ``source``, loaded once per process."""
        self._after_fork()
        key = (role, source, tuple(sorted([*(x.id for x in layers), *(r.name for r in rasters)])))
        found = self._templates.get(key)
        if found is not None:
            return found
        with self._lock:
            found = self._templates.get(key)
            if found is None:
                mapnik = _mapnik()
                found = mapnik.Map(256, 256, map_srs(self.storage_srid))
                xml = self._template_xml(role, source, layers, rasters)
                mapnik.load_map_from_string(found, xml)
                self._templates[key] = found
        return found

    def _after_fork(self) -> None:
        """Forked workers must not share the parent's Mapnik connections."""
        if self._pid != os.getpid():
            self._templates = {}
            self._local = threading.local()
            self._pid = os.getpid()

    def _template_xml(
        self,
        role: str,
        source: str,
        layers: Sequence[LayerDefinition],
        rasters: Sequence[RasterSource],
    ) -> str:
        parts = [f'<Map srs="{map_srs(self.storage_srid)}">']
        for layer in layers:
            for style in styles.styles_for(layer):
                parts.append(styles.style_xml(styles.style_name(layer.id, style), style))
        for raster in rasters:
            parts.append(
                f"<Style name={quoteattr(raster.name + ':default')}><Rule>"
                '<RasterSymbolizer scaling="bilinear"/></Rule></Style>'
            )
        for layer in layers:
            parts.append(self._layer_xml(layer, role, source))
        for raster in rasters:
            parts.append(
                f"<Layer name={quoteattr(raster.name)} srs={quoteattr(map_srs(raster.srid))}>"
                f"<StyleName>{escape(raster.name)}:default</StyleName><Datasource>"
                '<Parameter name="type">gdal</Parameter>'
                f'<Parameter name="file">{escape(raster.path)}</Parameter>'
                "</Datasource></Layer>"
            )
        parts.append("</Map>")
        return "".join(parts)

    def _layer_xml(self, layer: LayerDefinition, role: str, source: str) -> str:
        use_twin = source == "etrs89" and layer.etrs89 is not None
        srid = ETRS89 if use_twin else layer.storage_srid
        layer_srs = "epsg:4326" if use_twin else map_srs(layer.storage_srid)
        extent = "-180,-90,180,90" if use_twin else "-20000000,-20000000,20000000,20000000"
        params = {
            "type": "postgis",
            **self._connection(),
            "table": layer_sql(layer, role, use_twin),
            "geometry_field": "geom",
            "key_field": "id",
            "srid": str(srid),
            "extent": extent,
            "estimate_extent": "false",
            "persist_connection": "true",
            "max_size": str(self.pool_size),
            "simplify_geometries": "true",
        }
        body = "".join(
            f"<Parameter name={quoteattr(k)}>{escape(v)}</Parameter>" for k, v in params.items()
        )
        names = "".join(
            f"<StyleName>{escape(styles.style_name(layer.id, s))}</StyleName>"
            for s in styles.styles_for(layer)[:1]
        )
        return (
            f"<Layer name={quoteattr(layer.id)} srs={quoteattr(layer_srs)}>{names}"
            f"<Datasource>{body}</Datasource></Layer>"
        )

    def _connection(self) -> dict[str, str]:
        url = self.url
        params = {"dbname": str(url.database or "")}
        host = url.host or url.query.get("host")
        port = url.port or url.query.get("port")
        if host:
            params["host"] = str(host if isinstance(host, str) else host[0])
        if port:
            params["port"] = str(port if isinstance(port, str | int) else port[0])
        if url.username:
            params["user"] = url.username
        if url.password:
            params["password"] = str(url.password)
        return params

    # -- rendering -------------------------------------------------------------------
    def working_map(
        self,
        request: MapRequest,
        rasters: Sequence[RasterSource],
        layers: Sequence[LayerDefinition],
    ) -> Any:
        """A map with just the requested layers and styles, cached for this thread."""
        self._after_fork()
        source = self.source(request.srid)
        key = (
            request.role,
            source,
            request.srid,
            tuple((item.name, item.style) for item in request.layers),
        )
        cache: OrderedDict[Any, Any] | None = getattr(self._local, "maps", None)
        if cache is None:
            cache = OrderedDict()
            self._local.maps = cache
        found = cache.get(key)
        if found is not None:
            cache.move_to_end(key)
            return found
        mapnik = _mapnik()
        template = self.template(request.role, source, layers, rasters)
        by_name = {layer.name: layer for layer in template.layers}
        working = mapnik.Map(request.width, request.height, map_srs(request.srid))
        working.aspect_fix_mode = mapnik.aspect_fix_mode.RESPECT
        appended: set[str] = set()
        for item in request.layers:
            original = by_name[item.name]
            style = f"{item.name}:{item.style}"
            if style not in appended:
                working.append_style(style, template.find_style(style))
                appended.add(style)
            layer = mapnik.Layer(item.name, original.srs)
            layer.datasource = original.datasource
            layer.styles.append(style)
            working.layers.append(layer)
        cache[key] = working
        while len(cache) > WORKING_MAPS:
            cache.popitem(last=False)
        return working

    def render(
        self,
        request: MapRequest,
        rasters: Sequence[RasterSource],
        layers: Sequence[LayerDefinition],
    ) -> bytes:
        """The map image in the requested format."""
        mapnik = _mapnik()
        working = self.working_map(request, rasters, layers)
        working.resize(request.width, request.height)
        working.zoom_to_box(mapnik.Box2d(*request.bbox))
        working.background = _background(mapnik, request)
        image = mapnik.Image(request.width, request.height)
        mapnik.render(working, image)
        return encode(image, request.format, opaque=not request.transparent)


def _background(mapnik: Any, request: MapRequest) -> Any:
    if request.transparent and request.format != JPEG:
        return mapnik.Color(0, 0, 0, 0)
    return mapnik.Color(request.bgcolor)


def layer_sql(layer: LayerDefinition, role: str, use_twin: bool) -> str:
    """The sub-select a Mapnik datasource reads: role rows, current versions, label fields.

    Compiled once per process with literal values: every value in it comes from the
    catalog (row rules, version columns), none from a request.
    """
    geom = layer.etrs89 if use_twin and layer.etrs89 is not None else layer.geom
    wanted = {name for style in styles.styles_for(layer) for name in style.fields}
    fields = [f for f in visible_fields(layer, role) if f.name in wanted]
    query = queries.FeatureQuery(layer=layer, role=role)
    statement = (
        sa.select(
            layer.id_expr.label("id"),
            geom.label("geom"),
            *[f.expr.label(f.name) for f in fields],
        )
        .select_from(layer.source)
        .where(queries.where_clause(query))
    )
    compiled = statement.compile(
        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
    )
    return f"({compiled}) AS data"


def legend_image(
    layer: LayerDefinition, style: styles.LayerStyle, fmt: str, width: int, row: int
) -> bytes:
    """One row per legend rule: a sample drawn by the rule's own symbolizers, its title."""
    mapnik = _mapnik()
    rules = styles.legend_rules(style) or style.rules[:1]
    height = row * len(rules)
    point = layer.geometry_type.endswith("Point")
    parts = ['<Map srs="epsg:3857" background-color="#ffffff00">']
    for index, rule in enumerate(rules):
        parts.append(
            f'<Style name="s{index}"><Rule>{rule.symbolizers}</Rule></Style>'
            f'<Style name="t{index}"><Rule><TextSymbolizer face-name="{styles.FONT}" size="10" '
            'fill="#222222" placement="point" horizontal-alignment="right" dx="4">'
            f"[title]</TextSymbolizer></Rule></Style>"
        )
    parts.append("</Map>")
    legend = mapnik.Map(width, height)
    mapnik.load_map_from_string(legend, "".join(parts))
    legend.srs = "epsg:3857"
    for index, rule in enumerate(rules):
        top = height - index * row
        sample = (
            f"POINT(10 {top - row / 2})"
            if point
            else f"POLYGON((3 {top - 3},{row + 3} {top - 3},{row + 3} {top - row + 3},"
            f"3 {top - row + 3},3 {top - 3}))"
        )
        shape = mapnik.MemoryDatasource()
        context = mapnik.Context()
        feature = mapnik.Feature(context, index * 2 + 1)
        feature.geometry = mapnik.Geometry.from_wkt(sample)
        shape.add_feature(feature)
        label_ds = mapnik.MemoryDatasource()
        label_context = mapnik.Context()
        label_context.push("title")
        label = mapnik.Feature(label_context, index * 2 + 2)
        label["title"] = rule.title
        label.geometry = mapnik.Geometry.from_wkt(f"POINT({row + 6} {top - row / 2})")
        label_ds.add_feature(label)
        for name, datasource in ((f"s{index}", shape), (f"t{index}", label_ds)):
            item = mapnik.Layer(name, "epsg:3857")
            item.datasource = datasource
            item.styles.append(name)
            legend.layers.append(item)
    legend.aspect_fix_mode = mapnik.aspect_fix_mode.RESPECT
    legend.zoom_to_box(mapnik.Box2d(0, 0, width, height))
    image = mapnik.Image(width, height)
    mapnik.render(legend, image)
    return encode(image, fmt)


def message_image(text: str, width: int, height: int, fmt: str, transparent: bool) -> bytes:
    """An image carrying an error message (WMS ``EXCEPTIONS=INIMAGE``)."""
    mapnik = _mapnik()
    xml = (
        '<Map srs="epsg:3857"><Style name="m"><Rule>'
        f'<TextSymbolizer face-name="{styles.FONT}" size="12" fill="#b00000" '
        f'halo-fill="#ffffff" halo-radius="1" placement="point" wrap-width="{max(width - 20, 40)}">'
        "[message]</TextSymbolizer></Rule></Style></Map>"
    )
    canvas = mapnik.Map(width, height)
    mapnik.load_map_from_string(canvas, xml)
    context = mapnik.Context()
    context.push("message")
    feature = mapnik.Feature(context, 1)
    feature["message"] = text
    feature.geometry = mapnik.Geometry.from_wkt(f"POINT({width / 2} {height / 2})")
    datasource = mapnik.MemoryDatasource()
    datasource.add_feature(feature)
    layer = mapnik.Layer("message", "epsg:3857")
    layer.datasource = datasource
    layer.styles.append("m")
    canvas.layers.append(layer)
    canvas.aspect_fix_mode = mapnik.aspect_fix_mode.RESPECT
    canvas.zoom_to_box(mapnik.Box2d(0, 0, width, height))
    canvas.background = mapnik.Color(255, 255, 255, 0 if transparent and fmt != JPEG else 255)
    image = mapnik.Image(width, height)
    mapnik.render(canvas, image)
    return encode(image, fmt)


def blank_image(width: int, height: int, fmt: str, transparent: bool, bgcolor: str) -> bytes:
    """An empty image (WMS ``EXCEPTIONS=BLANK``)."""
    mapnik = _mapnik()
    image = mapnik.Image(width, height)
    if not (transparent and fmt != JPEG):
        image.fill(mapnik.Color(bgcolor))
    return encode(image, fmt)
