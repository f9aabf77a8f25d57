"""Mapbox vector tiles in WebMercatorQuad, built by PostGIS with ``ST_AsMVT``.

Geometry comes from the ETRS89 twin (official TransDatRO) transformed to EPSG:3857;
the rows are selected by the tile's box moved into the storage CRS, so the GiST index
on ``geom`` does the work. Fields and simplification depend on the zoom; a tile that
cannot touch a layer's extent costs no query at all. The same role rules as the
feature service apply (``layers.roles``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_core.errors import InvalidParameter, NotFound
from layers.catalog import ETRS89, WEB_MERCATOR, Catalog, Field, LayerDefinition
from layers.queries import BOX_NAMES, temporal_condition
from layers.roles import layer_for, row_filter, visible_fields
from layers.spatial import CRS84_SRID, StorageBox, box_to_storage, geographic_source

MAX_ZOOM = 22
EXTENT = 4096
BUFFER = 64
# Below this zoom polygons are simplified to about half a tile pixel before encoding.
SIMPLIFY_BELOW = 14
ORIGIN = 20037508.342789244
TILE_MATRIX_SET = "WebMercatorQuad"
TILE_MATRIX_SET_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
MVT = "application/vnd.mapbox-vector-tile"
_TYPES: dict[str, Any] = {
    "tile_z": sa.Integer(),
    "tile_x": sa.Integer(),
    "tile_y": sa.Integer(),
    "tolerance": sa.Float(),
    **dict.fromkeys(BOX_NAMES, sa.Float()),
}
# Compiled tile SQL per layer definition and shape (``compiled_tile``).
_COMPILED: WeakKeyDictionary[LayerDefinition, dict[tuple[Any, ...], tuple[str, dict[str, Any]]]] = (
    WeakKeyDictionary()
)


@dataclass(frozen=True)
class TileAddress:
    z: int
    x: int
    y: int

    def bounds_3857(self) -> tuple[float, float, float, float]:
        size = 2 * ORIGIN / (1 << self.z)
        minx = -ORIGIN + self.x * size
        maxy = ORIGIN - self.y * size
        return (minx, maxy - size, minx + size, maxy)

    def bounds_lonlat(self, margin: float = 0.0) -> tuple[float, float, float, float]:
        """The tile's box in degrees, widened by ``margin`` tiles on each side."""
        minx, miny, maxx, maxy = self.bounds_3857()
        pad = (maxx - minx) * margin
        minx, miny, maxx, maxy = minx - pad, miny - pad, maxx + pad, maxy + pad
        return (
            _lon(minx),
            _lat(max(miny, -ORIGIN)),
            _lon(maxx),
            _lat(min(maxy, ORIGIN)),
        )


def _lon(x: float) -> float:
    return max(-180.0, min(180.0, x / ORIGIN * 180.0))


def _lat(y: float) -> float:
    return math.degrees(math.atan(math.sinh(y / ORIGIN * math.pi)))


def parse_tile(z: int, x: int, y: int) -> TileAddress:
    """A tile address inside WebMercatorQuad, else a 400 naming the bad part."""
    if not 0 <= z <= MAX_ZOOM:
        raise InvalidParameter(f"zoom {z} is outside 0..{MAX_ZOOM}", locator="z")
    limit = 1 << z
    if not 0 <= x < limit:
        raise InvalidParameter(f"x {x} is outside 0..{limit - 1} at zoom {z}", locator="x")
    if not 0 <= y < limit:
        raise InvalidParameter(f"y {y} is outside 0..{limit - 1} at zoom {z}", locator="y")
    return TileAddress(z, x, y)


def parse_layer_list(catalog: Catalog, text: str, role: str) -> tuple[LayerDefinition, ...]:
    """``parcels`` or ``zones,parcels``: known layers the role may see, no repeats."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise NotFound("no layer named", locator="layer")
    if len(set(names)) != len(names):
        raise InvalidParameter("a layer is named twice", locator="layer")
    return tuple(layer_for(catalog, name, role) for name in names)


def tile_fields(layer: LayerDefinition, role: str, z: int) -> tuple[Field, ...]:
    """The fields a tile at ``z`` carries: those the role may see, from their zoom on."""
    return tuple(f for f in visible_fields(layer, role) if f.min_zoom <= z)


def layer_tile_statement(
    layer: LayerDefinition,
    role: str,
    tile: TileAddress,
    box: StorageBox,
    *,
    named: bool = False,
) -> sa.Select[Any]:
    """``ST_AsMVT`` of one layer's rows in the tile (current versions).

    ``box`` (the tile with its buffer) selects the rows through a GiST index: the
    ETRS89 twin's for a lon/lat box, else the storage geometry's. ``named`` puts the
    tile's values into named parameters so the SQL depends only on the layer, the role
    and the zoom (see ``compiled_tile``). Features carry the row id as their MVT id,
    unless the tile carries the layer's ``tile_key`` field, which identifies them.
    """

    def value(name: str, given: Any) -> Any:
        return sa.bindparam(name, given, type_=_TYPES[name]) if named else given

    envelope = sa.func.ST_TileEnvelope(
        value("tile_z", tile.z), value("tile_x", tile.x), value("tile_y", tile.y)
    )
    mercator: Any = sa.func.ST_Transform(geographic_source(layer), WEB_MERCATOR)
    if simplified(layer, tile.z):
        mercator = sa.func.ST_Simplify(mercator, value("tolerance", tolerance(tile.z)), True)
    fields = tile_fields(layer, role, tile.z)
    keyed = any(f.name == layer.tile_key for f in fields)
    columns = [
        *([] if keyed else [layer.id_expr.label("id")]),
        sa.func.ST_AsMVTGeom(mercator, envelope, EXTENT, BUFFER, True).label("geom"),
        *(f.expr.label(f.name) for f in fields),
    ]
    if box.bounds is None:
        raise ValueError("an empty box selects no rows: no tile statement for it")
    corners = [value(n, v) for n, v in zip(BOX_NAMES, box.bounds, strict=True)]
    twin = layer.etrs89 if box.geographic else None
    column, srid = (twin, ETRS89) if twin is not None else (layer.geom, layer.storage_srid)
    rows = (
        sa.select(*columns)
        .select_from(layer.source)
        .where(
            row_filter(layer, role),
            temporal_condition(layer, None),
            column.op("&&")(sa.func.ST_MakeEnvelope(*corners, srid)),
        )
        .subquery("q")
    )
    feature_id = () if keyed else ("id",)
    return sa.select(
        sa.func.ST_AsMVT(sa.literal_column("q"), layer.id, EXTENT, "geom", *feature_id)
    ).select_from(rows)


def simplified(layer: LayerDefinition, z: int) -> bool:
    return z < SIMPLIFY_BELOW and layer.tile_simplify and "Point" not in layer.geometry_type


def tolerance(z: int) -> float:
    """About half a tile pixel at ``z``, in Web Mercator metres."""
    return 2 * ORIGIN / (1 << z) / EXTENT / 2


def compiled_tile(
    conn: Connection, layer: LayerDefinition, role: str, tile: TileAddress, box: StorageBox
) -> tuple[str, dict[str, Any]]:
    """The layer's tile SQL and parameters; the SQL is compiled once per layer, role,
    set of fields (they follow the zoom) and box kind, per process, so a tile costs
    Python almost nothing beyond the database's own work."""
    shape = (
        role,
        tuple(f.name for f in tile_fields(layer, role, tile.z)),
        simplified(layer, tile.z),
        box.geographic,
        conn.dialect.name,
    )
    shapes = _COMPILED.setdefault(layer, {})
    found = shapes.get(shape)
    if found is None:
        statement = layer_tile_statement(layer, role, tile, box, named=True)
        compiled = statement.compile(
            dialect=conn.dialect, compile_kwargs={"render_postcompile": True}
        )
        found = (compiled.string, dict(compiled.params))
        if len(shapes) >= 256:
            shapes.clear()
        shapes[shape] = found
    sql, constants = found
    values: dict[str, Any] = {"tile_z": tile.z, "tile_x": tile.x, "tile_y": tile.y}
    values.update(zip(BOX_NAMES, box.bounds or (), strict=True))
    if simplified(layer, tile.z):
        values["tolerance"] = tolerance(tile.z)
    return sql, {**constants, **values}


def tile_box(
    layer: LayerDefinition, tile: TileAddress, extent: tuple[float, float, float, float] | None
) -> StorageBox | None:
    """The tile with its buffer as a query box, None when it cannot touch the layer
    (below the layer's first zoom, or outside its extent: no query at all).

    A Web Mercator tile is exactly a lon/lat rectangle, so layers with an ETRS89 twin
    are selected on the twin with no transformation; others get a storage-CRS box.
    """
    if tile.z < layer.tile_min_zoom or extent is None:
        return None
    lonlat = tile.bounds_lonlat(BUFFER / EXTENT)
    if layer.etrs89 is not None:
        west, south, east, north = lonlat
        if west > extent[2] or east < extent[0] or south > extent[3] or north < extent[1]:
            return None
        return StorageBox(lonlat, geographic=True)
    box = box_to_storage(lonlat, CRS84_SRID, layer, extent)
    return None if box.bounds is None else box


def render_tile(
    conn: Connection,
    catalog: Catalog,
    layers: tuple[LayerDefinition, ...],
    role: str,
    tile: TileAddress,
) -> bytes:
    """The tile's bytes: one MVT layer per requested layer, empty layers left out."""
    parts: list[bytes] = []
    for layer in layers:
        box = tile_box(layer, tile, catalog.state(conn, layer).extent)
        if box is None:
            continue
        data = conn.exec_driver_sql(*compiled_tile(conn, layer, role, tile, box)).scalar()
        if data:
            parts.append(bytes(data))
    return b"".join(parts)


def tile_version(conn: Connection, catalog: Catalog, layers: tuple[LayerDefinition, ...]) -> str:
    """The data version of every layer in the tile: the cache and ETag key."""
    return ".".join(catalog.version(conn, layer) for layer in layers)


# -- descriptions ---------------------------------------------------------------------
def tile_matrix_set(max_zoom: int = MAX_ZOOM) -> dict[str, Any]:
    """The OGC 2D TileMatrixSet ``WebMercatorQuad`` description."""
    matrices = []
    for z in range(max_zoom + 1):
        cell = 2 * ORIGIN / 256 / (1 << z)
        matrices.append(
            {
                "id": str(z),
                "scaleDenominator": cell / 0.00028,
                "cellSize": cell,
                "cornerOfOrigin": "topLeft",
                "pointOfOrigin": [-ORIGIN, ORIGIN],
                "tileWidth": 256,
                "tileHeight": 256,
                "matrixWidth": 1 << z,
                "matrixHeight": 1 << z,
            }
        )
    return {
        "id": TILE_MATRIX_SET,
        "title": "Google Maps Compatible for the World",
        "uri": TILE_MATRIX_SET_URI,
        "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
        "orderedAxes": ["E", "N"],
        "wellKnownScaleSet": "http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible",
        "tileMatrices": matrices,
    }


def tilejson(
    layers: tuple[LayerDefinition, ...],
    role: str,
    tiles_url: str,
    extent: tuple[float, float, float, float] | None,
) -> dict[str, Any]:
    """TileJSON 3.0.0 for one or several layers (field types per ``vector_layers``)."""
    bounds = list(extent) if extent else [-180.0, -85.0511, 180.0, 85.0511]
    center = [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2, 14]
    return {
        "tilejson": "3.0.0",
        "name": ",".join(layer.id for layer in layers),
        "description": "; ".join(layer.title for layer in layers),
        "scheme": "xyz",
        "tiles": [tiles_url],
        "minzoom": min(layer.tile_min_zoom for layer in layers),
        "maxzoom": MAX_ZOOM,
        "bounds": bounds,
        "center": center,
        "vector_layers": [
            {
                "id": layer.id,
                "description": layer.title,
                "minzoom": layer.tile_min_zoom,
                "maxzoom": MAX_ZOOM,
                "fields": {f.name: _tilejson_type(f) for f in visible_fields(layer, role)},
            }
            for layer in layers
        ],
    }


def _tilejson_type(item: Field) -> str:
    return {"integer": "Number", "number": "Number", "boolean": "Boolean"}.get(item.type, "String")


def tileset_document(
    layer: LayerDefinition,
    role: str,
    tiles_url: str,
    extent: tuple[float, float, float, float] | None,
) -> dict[str, Any]:
    """OGC API – Tiles tileset metadata of one collection's vector tiles."""
    bbox = list(extent) if extent else [-180.0, -85.0511, 180.0, 85.0511]
    return {
        "title": f"{layer.title} (vector tiles)",
        "dataType": "vector",
        "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
        "tileMatrixSetURI": TILE_MATRIX_SET_URI,
        "boundingBox": {
            "lowerLeft": bbox[:2],
            "upperRight": bbox[2:],
            "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
        },
        "layers": [
            {
                "id": layer.id,
                "dataType": "vector",
                "geometryDimension": 0 if "Point" in layer.geometry_type else 2,
                "minTileMatrix": str(layer.tile_min_zoom),
                "maxTileMatrix": str(MAX_ZOOM),
                "propertiesSchema": {
                    "type": "object",
                    "properties": {f.name: {"type": f.type} for f in visible_fields(layer, role)},
                },
            }
        ],
        "links": [
            {
                "href": tiles_url,
                "rel": "item",
                "type": MVT,
                "templated": True,
                "title": "Tiles (tileMatrix/tileRow/tileCol)",
            },
            {
                "href": TILE_MATRIX_SET_URI,
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme",
                "type": "application/json",
                "title": "WebMercatorQuad",
            },
        ],
    }
