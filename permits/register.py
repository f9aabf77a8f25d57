"""The monthly public lists the law requires: CUs and AC/ADs issued in a month.

In order of issue, with the imobil's address or cadastral identification and the
purpose. Applicants' names appear only when the deployment allows it
(``publish_applicant_names``, off by default: natural persons' names are personal
data); no other applicant field is ever read. The same rows are served as an HTML
page (by ``webmap``), CSV and GeoJSON; the GeoJSON is built by PostGIS.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from dateutil.relativedelta import relativedelta
from sqlalchemy.engine import Connection

from gis_core.errors import InvalidParameter
from gis_core.settings import Settings

GROUPS = {"CU": ("CU",), "AC": ("AC", "AD")}
TITLES = {
    "CU": "Certificate de urbanism emise",
    "AC": "Autorizații de construire / desființare emise",
}
COLUMNS = (
    "order",
    "kind",
    "number",
    "issued_on",
    "cadastral_numbers",
    "address",
    "purpose",
    "status",
)
FIRST_YEAR = 1990


@dataclass(frozen=True)
class Month:
    """A calendar month of a list, checked: no future months, no year 0."""

    year: int
    month: int
    group: str

    @classmethod
    def parse(cls, year: int, month: int, group: str) -> Month:
        group = group.upper()
        if group not in GROUPS:
            raise InvalidParameter("kind: CU or AC (AC and AD together)", locator="kind")
        if not FIRST_YEAR <= year <= date.today().year + 1 or not 1 <= month <= 12:
            raise InvalidParameter(
                f"{year}-{month:02d} is not a month of the register", locator="month"
            )
        return cls(year, month, group)

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def next_first_day(self) -> date:
        return self.first_day + relativedelta(months=1)

    @property
    def label(self) -> str:
        return f"{self.year}-{self.month:02d}"


def columns(settings: Settings) -> tuple[str, ...]:
    """The published columns; the applicant only where the deployment allows it."""
    return (*COLUMNS, "applicant") if settings.publish_applicant_names else COLUMNS


def _select(settings: Settings, geometry: bool) -> str:
    applicant = (
        ", (SELECT p.name FROM protected.act_applicant p WHERE p.act_id = a.id) AS applicant"
        if settings.publish_applicant_names
        else ""
    )
    # Lon/lat from the ETRS89 twins (TransDatRO in Stereo 70); PostGIS's transformation
    # only for a row whose twin a writer has not filled yet.
    geom = (
        """, ST_AsGeoJSON(CASE WHEN a.geom IS NOT NULL
                    THEN COALESCE(a.geom_etrs89, ST_Transform(a.geom, 4326))
                    ELSE COALESCE(a.location_etrs89, ST_Transform(a.location, 4326)) END,
                 7, 0)::json AS geometry"""
        if geometry
        else ""
    )
    return f"""
        SELECT row_number() OVER (ORDER BY a.issued_on, a.kind,
                   NULLIF(regexp_replace(a.number, '\\D', '', 'g'), '')::numeric, a.number)
                   AS "order",
               a.kind, a.number, a.issued_on,
               ARRAY(SELECT l.cadastral_number FROM permits.act_parcel l
                     WHERE l.act_id = a.id ORDER BY l.is_primary DESC, l.id)
                   AS cadastral_numbers,
               COALESCE(a.address_text, (SELECT p.address_text FROM permits.act_parcel l
                     JOIN cadastre.parcel p ON p.id = l.parcel_id
                     WHERE l.act_id = a.id AND l.is_primary LIMIT 1)) AS address,
               a.purpose, a.status{applicant}{geom}
        FROM permits.act a
        WHERE a.uat_siruta = :uat AND a.kind = ANY(CAST(:kinds AS text[]))
          AND a.status <> 'requested'
          AND a.issued_on >= :first AND a.issued_on < :next
        ORDER BY 1
    """  # noqa: S608  (fragments are constants of this module)


def monthly_list(
    conn: Connection, settings: Settings, month: Month, *, geometry: bool = False
) -> list[dict[str, Any]]:
    """The rows of one month's list, in order of issue."""
    rows = conn.execute(
        sa.text(_select(settings, geometry)),
        {
            "uat": settings.uat_siruta,
            "kinds": list(GROUPS[month.group]),
            "first": month.first_day,
            "next": month.next_first_day,
        },
    ).mappings()
    return [dict(row) for row in rows]


def as_csv(rows: list[dict[str, Any]], settings: Settings) -> bytes:
    """UTF-8 CSV (with BOM so spreadsheet programs read the diacritics), ``;``-separated."""
    buffer = io.StringIO()
    names = columns(settings)
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow([_cell(row.get(name)) for name in names])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.strftime("%d.%m.%Y")
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return str(value)


def as_geojson(conn: Connection, settings: Settings, month: Month) -> bytes:
    """A FeatureCollection built by PostGIS (CRS84), same rows and columns."""
    names = columns(settings)
    properties = ", ".join(f"'{name}', r.\"{name}\"" for name in names)
    body = conn.execute(
        sa.text(
            f"""
            SELECT json_build_object(
                'type', 'FeatureCollection',
                'name', CAST(:name AS text),
                'features', COALESCE(json_agg(json_build_object(
                    'type', 'Feature',
                    'geometry', r.geometry,
                    'properties', json_build_object({properties})
                ) ORDER BY r."order"), '[]'::json)
            )::text
            FROM ({_select(settings, True)}) r
            """  # noqa: S608  (column names are constants of this module)
        ),
        {
            "uat": settings.uat_siruta,
            "kinds": list(GROUPS[month.group]),
            "first": month.first_day,
            "next": month.next_first_day,
            "name": f"{month.group} {month.label}",
        },
    ).scalar_one()
    return str(body).encode("utf-8")


def months_with_acts(conn: Connection, settings: Settings, limit: int = 36) -> list[date]:
    """The most recent months that have issued acts (the index of the register page)."""
    rows = conn.execute(
        sa.text(
            "SELECT DISTINCT date_trunc('month', issued_on)::date AS m FROM permits.act "
            "WHERE uat_siruta = :uat AND status <> 'requested' AND issued_on IS NOT NULL "
            "ORDER BY m DESC LIMIT :limit"
        ),
        {"uat": settings.uat_siruta, "limit": limit},
    )
    return [row[0] for row in rows]
