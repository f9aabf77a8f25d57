"""Address search for the portal's autocompletion and for location checks by address.

Addresses are compared by their search key (``gis_core.search_keys``: no diacritics,
either ș/ş, street-type words folded), on the trigram-indexed ``search_text``. Every
word typed must occur, in order, so "memorandumului 2" offers numbers 2, 21, 23...;
when nothing contains all words, trigram similarity catches typos.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_core.errors import InvalidInput, InvalidParameter
from gis_core.search_keys import search_key

MAX_LIMIT = 50
MIN_QUERY = 2

_COLUMNS = """
    a.id, a.full_text, a.street_type, a.street_name, a.number, a.postal_code,
    round(ST_X(coalesce(a.geom_etrs89, ST_Transform(a.geom, 4326)))::numeric, 7) AS lon,
    round(ST_Y(coalesce(a.geom_etrs89, ST_Transform(a.geom, 4326)))::numeric, 7) AS lat,
    (SELECT p.cadastral_number FROM cadastre.parcel p
     WHERE p.address_id = a.id AND p.valid_to IS NULL
     ORDER BY p.id LIMIT 1) AS cadastral_number,
    (SELECT p.id FROM cadastre.parcel p
     WHERE p.address_id = a.id AND p.valid_to IS NULL
     ORDER BY p.id LIMIT 1) AS parcel_id
"""
_CONTAINING = sa.text(
    f"""
    SELECT {_COLUMNS}
    FROM cadastre.address a
    WHERE a.uat_siruta = :uat AND a.search_text LIKE :pattern ESCAPE '\\'
    ORDER BY (a.search_text LIKE :prefix ESCAPE '\\') DESC, length(a.search_text),
             a.search_text, a.id
    LIMIT :limit
    """  # noqa: S608  (constant column list)
)
_SIMILAR = sa.text(
    f"""
    SELECT {_COLUMNS}
    FROM cadastre.address a
    WHERE a.uat_siruta = :uat AND a.search_text % :key
    ORDER BY similarity(a.search_text, :key) DESC, a.search_text, a.id
    LIMIT :limit
    """  # noqa: S608  (constant column list)
)


@dataclass(frozen=True)
class AddressMatch:
    id: int
    full_text: str
    parcel_id: int | None
    cadastral_number: str | None
    lon: float | None
    lat: float | None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_addresses(
    conn: Connection, text: str, uat_siruta: int, *, limit: int = 10, field: str = "q"
) -> list[dict[str, Any]]:
    """Addresses matching ``text``, best first (public data: no owner, no person)."""
    key = _key(text, field)
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidParameter(f"limit must be between 1 and {MAX_LIMIT}", locator="limit")
    words = [_escape_like(word) for word in key.split()]
    params = {
        "uat": uat_siruta,
        "pattern": "%" + "%".join(words) + "%",
        "prefix": " ".join(words) + "%",
        "limit": limit,
    }
    rows = conn.execute(_CONTAINING, params).mappings().all()
    if not rows:
        rows = (
            conn.execute(_SIMILAR, {"uat": uat_siruta, "key": key, "limit": limit}).mappings().all()
        )
    return [_public(row) for row in rows]


def _key(text: str, field: str) -> str:
    if not isinstance(text, str):
        raise InvalidParameter(f"{field} must be text", locator=field)
    key = search_key(text)
    if len(key.replace(" ", "")) < MIN_QUERY:
        raise InvalidParameter(
            f"{field} must have at least {MIN_QUERY} letters or digits", locator=field
        )
    if len(text) > 200:
        raise InvalidParameter(f"{field} must have at most 200 characters", locator=field)
    return key


def _public(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "address": row["full_text"],
        "street_type": row["street_type"],
        "street": row["street_name"],
        "number": row["number"],
        "postal_code": row["postal_code"],
        "cadastral_number": row["cadastral_number"],
        "parcel_id": row["parcel_id"],
        "lon": float(row["lon"]) if row["lon"] is not None else None,
        "lat": float(row["lat"]) if row["lat"] is not None else None,
    }


def resolve_address(conn: Connection, text: str, uat_siruta: int) -> dict[str, Any]:
    """The one address ``text`` names; none or several different parcels is a 422.

    A match is exact when the stored key starts with the typed key followed by a word
    boundary ("str memorandumului 21" names "... 21 cluj-napoca", not "... 210").
    """
    key = _key(text, "address")
    candidates = search_addresses(conn, text, uat_siruta, limit=MAX_LIMIT, field="address")
    exact = [c for c in candidates if _names(search_key(c["address"]), key)]
    parcels = {c["parcel_id"] for c in exact}
    if len(exact) >= 1 and len(parcels) == 1:
        return exact[0]
    if not exact:
        shown = "; ".join(c["address"] for c in candidates[:5])
        hint = f"; did you mean: {shown}" if shown else ""
        raise InvalidInput(f"address {text!r} was not found{hint}", locator="address")
    shown = "; ".join(c["address"] for c in exact[:5])
    raise InvalidInput(
        f"address {text!r} matches {len(exact)} addresses on different parcels: {shown}",
        locator="address",
    )


def _names(stored: str, key: str) -> bool:
    return stored == key or stored.startswith(key + " ")
