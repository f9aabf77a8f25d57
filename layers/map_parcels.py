"""The parcels the web map draws itself: a deep link's selection and cadastral-number labels.

Everything the parcel card and the extract say about an imobil comes from the parcel
status (``permits.status``); this module only answers "where are these parcels" and
"which numbers are in this small box", as GeoJSON built by PostgreSQL on the ETRS89
twins (which carry the official TransDatRO transformation). Public fields only.
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

# Most labels one request returns (a screen at zoom 18 holds a few hundred parcels).
LABEL_LIMIT = 2_000

_LABELS_SQL = sa.text(
    """
    SELECT json_build_object('type', 'FeatureCollection', 'features',
        coalesce(json_agg(json_build_object(
            'type', 'Feature',
            'geometry', ST_AsGeoJSON(ST_PointOnSurface(geom_etrs89), 7)::json,
            'properties', json_build_object('n', cadastral_number))), '[]'::json))::text
    FROM (SELECT geom_etrs89, cadastral_number FROM cadastre.parcel
          WHERE valid_to IS NULL AND uat_siruta = :siruta
            AND geom_etrs89 && ST_MakeEnvelope(:min_lon, :min_lat, :max_lon, :max_lat, 4258)
          LIMIT :limit) AS p
    """
)


def parcel_labels(conn: Connection, box: dict[str, float], *, siruta: int) -> str:
    """Label points (cadastral numbers) of the current parcels in ``box`` (ETRS89 degrees,
    keys ``min_lon``.. ``max_lat``), as GeoJSON text."""
    text: str = conn.execute(
        _LABELS_SQL, {**box, "siruta": siruta, "limit": LABEL_LIMIT}
    ).scalar_one()
    return text


def parcels_geojson(conn: Connection, numbers: tuple[str, ...], *, siruta: int) -> dict[str, Any]:
    """The current imobile among ``numbers`` as a GeoJSON FeatureCollection (ETRS89),
    with their joint bounding box and the numbers that were not found."""
    text = conn.execute(
        sa.text(
            """
            SELECT json_build_object(
                'type', 'FeatureCollection',
                'features', coalesce(json_agg(json_build_object(
                    'type', 'Feature',
                    'id', t.cadastral_number,
                    'geometry', ST_AsGeoJSON(t.geom_etrs89, 7, 0)::json,
                    'properties', json_build_object(
                        'cadastral_number', t.cadastral_number,
                        'measured_area', t.measured_area,
                        'address', t.address_text)
                ) ORDER BY array_position(:numbers, t.cadastral_number)), '[]'::json),
                'bbox', CASE WHEN count(*) > 0 THEN json_build_array(
                    ST_XMin(ST_3DExtent(t.geom_etrs89)), ST_YMin(ST_3DExtent(t.geom_etrs89)),
                    ST_XMax(ST_3DExtent(t.geom_etrs89)), ST_YMax(ST_3DExtent(t.geom_etrs89)))
                    END,
                'found', coalesce(json_agg(t.cadastral_number), '[]'::json)
            )::text
            FROM cadastre.parcel t
            WHERE t.uat_siruta = :siruta AND t.valid_to IS NULL
              AND t.cadastral_number = ANY(:numbers)
            """
        ),
        {"siruta": siruta, "numbers": list(numbers)},
    ).scalar_one()
    collection: dict[str, Any] = orjson.loads(text)
    found = set(collection.pop("found"))
    collection["not_found"] = [number for number in numbers if number not in found]
    return collection
