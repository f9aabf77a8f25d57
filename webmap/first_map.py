"""A first web map of the municipality: ``/`` and ``/map``, fed by ``/map/data/<layer>``.

The page is a small Leaflet map of our own; it asks for each layer by the bounding box
in view, so the browser never receives a whole table. The GeoJSON is built by PostGIS
(``json_build_object`` over ``ST_AsGeoJSON`` of the ETRS89 twin, which carries the
official TransDatRO transformation) and passed through as bytes. Layer names, their
SQL and their public fields come from the fixed ``LAYERS`` catalogue below; the request
only chooses among them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, request
from sqlalchemy.engine import Connection

from gis_core.errors import InvalidParameter, MissingParameter, NotFound, UrbanGisError
from webmap.app import state
from webmap.map_pages import render_map_page

# Most features one layer request returns; the page asks for a smaller area beyond it.
FEATURE_LIMIT = 5_000
# Parcels are drawn from this zoom level on (about a neighbourhood on screen).
PARCELS_MIN_ZOOM = 15
# Coordinates in degrees to 7 decimals: about a centimetre, like the source data.
GEOJSON_DECIMALS = 7
# Romania, for a database that has no data yet.
DEFAULT_EXTENT = (20.2, 43.6, 29.7, 48.3)

blueprint = Blueprint("first_map", __name__)


@dataclass(frozen=True)
class BBox:
    """A validated longitude/latitude box in ETRS89 degrees."""

    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float

    def as_params(self) -> dict[str, float]:
        return {
            "min_lon": self.min_lon,
            "min_lat": self.min_lat,
            "max_lon": self.max_lon,
            "max_lat": self.max_lat,
        }


@dataclass(frozen=True)
class Layer:
    """One map layer: its rows (``tables`` filtered by ``where``), public fields, draw order.

    Every table is aliased ``t`` and has a ``geom_etrs89`` column; ``properties`` lists
    the ``json_build_object`` pairs, i.e. exactly the fields the public may see;
    ``sort_key`` is one sortable SQL value giving the order features are drawn in.
    """

    title: str
    tables: str
    where: str
    properties: str
    sort_key: str = "t.id"


LAYERS: dict[str, Layer] = {
    "boundary": Layer(
        title="Limita UAT",
        tables="core.admin_unit t",
        where="t.level = 'uat' AND t.siruta = :siruta",
        properties="'name', t.name, 'siruta', t.siruta",
    ),
    "intravilan": Layer(
        title="Intravilan",
        tables="core.intravilan t",
        where="t.valid_to IS NULL AND t.uat_siruta = :siruta",
        properties="'name', t.name",
    ),
    "zones": Layer(
        title="Zone (UTR)",
        tables=(
            "urbanism.zone t JOIN urbanism.plan p ON p.id = t.plan_id "
            "LEFT JOIN urbanism.regulation r ON r.id = t.regulation_id"
        ),
        # Zones of plans in force only: an annulled or expired plan regulates nothing.
        where=(
            "t.valid_to IS NULL AND p.status = 'approved' "
            "AND (p.valid_to IS NULL OR p.valid_to >= current_date)"
        ),
        properties=(
            "'utr_code', t.utr_code, 'function', coalesce(r.function, t.function), 'plan', p.title"
        ),
        # General plan underneath, detailed plans (PUZ, then PUD) drawn over it.
        sort_key="ARRAY[CASE p.plan_type WHEN 'PUG' THEN 0 WHEN 'PUZ' THEN 1 ELSE 2 END, t.id]",
    ),
    "restrictions": Layer(
        title="Restricții",
        tables="urbanism.restriction t",
        where="t.valid_to IS NULL",
        properties="'kind', t.kind, 'name', t.name, 'legal_source', t.legal_source",
    ),
    "parcels": Layer(
        title="Imobile (parcele)",
        tables="cadastre.parcel t",
        where="t.valid_to IS NULL",
        properties=(
            "'cadastral_number', t.cadastral_number, 'measured_area', t.measured_area, "
            "'address_text', t.address_text"
        ),
    ),
}


# -- framework-free logic ---------------------------------------------------------------
def parse_bbox(text: str | None) -> BBox:
    """``minlon,minlat,maxlon,maxlat`` as four finite degrees with min < max, or a 400."""
    if text is None or not text.strip():
        raise MissingParameter(
            "bbox is required: minlon,minlat,maxlon,maxlat in degrees", locator="bbox"
        )
    parts = text.split(",")
    if len(parts) != 4:
        raise _bad_bbox(f"expected 4 comma-separated numbers, got {len(parts)}")
    try:
        values = [float(part) for part in parts]
    except ValueError:
        raise _bad_bbox("every value must be a number") from None
    if not all(math.isfinite(value) for value in values):
        raise _bad_bbox("every value must be a finite number")
    bbox = BBox(*values)
    if not (-180 <= bbox.min_lon < bbox.max_lon <= 180):
        raise _bad_bbox("longitudes must lie in [-180, 180] with minlon < maxlon")
    if not (-90 <= bbox.min_lat < bbox.max_lat <= 90):
        raise _bad_bbox("latitudes must lie in [-90, 90] with minlat < maxlat")
    return bbox


def _bad_bbox(why: str) -> InvalidParameter:
    return InvalidParameter(f"invalid bbox parameter: {why}", locator="bbox")


def find_layer(name: str) -> Layer:
    """The catalogued layer called ``name``; anything else is a 404 naming the choices."""
    layer = LAYERS.get(name)
    if layer is None:
        raise NotFound(f"unknown map layer {name!r}; layers: {', '.join(LAYERS)}", locator="layer")
    return layer


def layer_query(layer: Layer) -> sa.TextClause:
    """One statement returning the whole FeatureCollection as JSON text.

    The inner query keeps only the first ``limit + 1`` rows in draw order (a top-N sort,
    never a sort of everything in the box); the extra row tells the page that the view
    holds more than was sent (``limitReached``) without counting them all.
    """
    return sa.text(
        f"""
        WITH hits AS (
            SELECT {layer.sort_key} AS sort_key,
                   t.geom_etrs89 AS geom,
                   json_build_object({layer.properties}) AS properties
            FROM {layer.tables}
            WHERE ({layer.where})
              AND t.geom_etrs89 && ST_MakeEnvelope(:min_lon, :min_lat, :max_lon, :max_lat, 4258)
            ORDER BY 1
            LIMIT :limit + 1
        ), numbered AS (
            SELECT row_number() OVER (ORDER BY sort_key) AS rn, geom, properties FROM hits
        )
        SELECT json_build_object(
            'type', 'FeatureCollection',
            'features', coalesce(
                json_agg(
                    json_build_object(
                        'type', 'Feature',
                        'geometry', ST_AsGeoJSON(geom, {GEOJSON_DECIMALS}, 0)::json,
                        'properties', properties
                    ) ORDER BY rn
                ) FILTER (WHERE rn <= :limit),
                '[]'::json),
            'numberReturned', count(*) FILTER (WHERE rn <= :limit),
            'limitReached', count(*) > :limit
        )::text
        FROM numbered
        """  # noqa: S608 -- identifiers come from LAYERS only; values are bound
    )


def layer_geojson(
    conn: Connection, layer: Layer, bbox: BBox, *, siruta: int, limit: int = FEATURE_LIMIT
) -> bytes:
    """The features of ``layer`` touching ``bbox``, as GeoJSON bytes ready to send."""
    params = {**bbox.as_params(), "siruta": siruta, "limit": limit}
    text: str = conn.execute(layer_query(layer), params).scalar_one()
    return text.encode()


def map_extent(conn: Connection, siruta: int) -> tuple[float, float, float, float]:
    """Where the page opens: the UAT boundary, else the intravilan, else the parcels."""
    candidates = (
        "SELECT ST_Extent(geom_etrs89) FROM core.admin_unit "
        "WHERE level = 'uat' AND siruta = :siruta",
        "SELECT ST_Extent(geom_etrs89) FROM core.intravilan "
        "WHERE valid_to IS NULL AND uat_siruta = :siruta",
        "SELECT ST_EstimatedExtent('cadastre', 'parcel', 'geom_etrs89')",
    )
    for sql in candidates:
        row = conn.execute(
            sa.text(f"SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM ({sql}) AS e(b)"),  # noqa: S608
            {"siruta": siruta},
        ).one()
        if row[0] is not None:
            return (float(row[0]), float(row[1]), float(row[2]), float(row[3]))
    return DEFAULT_EXTENT


def is_demo(conn: Connection) -> bool:
    """True when the data came from ``urbangis demo load`` (the map says it is synthetic)."""
    return bool(
        conn.execute(
            sa.text(
                "SELECT EXISTS (SELECT 1 FROM core.import_run "
                "WHERE kind = 'demo' AND status = 'succeeded')"
            )
        ).scalar()
    )


# -- views -------------------------------------------------------------------------------
@blueprint.get("/")
@blueprint.get("/map")
def map_page() -> Response:
    """The page; it renders even without a database or front-end assets, saying so."""
    app_state = state()
    extent, demo, database_ok = DEFAULT_EXTENT, False, True
    try:
        with app_state.connect() as conn:
            extent = map_extent(conn, app_state.settings.uat_siruta)
            demo = is_demo(conn)
    except (UrbanGisError, sa.exc.SQLAlchemyError) as exc:
        current_app.logger.warning("map page without data: %s", exc)
        database_ok = False
    return render_map_page(extent, demo, database_ok)


@blueprint.get("/map/data/<layer>.geojson")
def layer_data(layer: str) -> Response:
    """GeoJSON of one layer inside ``?bbox=``; bbox and layer are checked before any SQL."""
    found = find_layer(layer)
    bbox = parse_bbox(request.args.get("bbox"))
    app_state = state()
    with app_state.connect() as conn:
        body = layer_geojson(conn, found, bbox, siruta=app_state.settings.uat_siruta)
    response = current_app.response_class(body, mimetype="application/geo+json")
    response.headers["Cache-Control"] = "no-cache"
    return response
