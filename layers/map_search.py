"""The web map's search box: cadastral numbers, addresses and streets in one answer.

Citizens type whatever they have: ``315814``, ``Strada Beiușului 3``, ``str. beiusului``
or ``Beiuşului`` with the cedilla letter. Text is folded by ``gis_core.search_keys`` (the
same key stored beside every address and street), so the comparison is
diacritic-insensitive for both ș/ş and ț/ţ and street-type words match their
abbreviations. Every word of the query must appear (in any order), which the trigram
GIN indexes on ``search_text`` answer; cadastral numbers use the ``text_pattern_ops``
index for prefixes. Each address hit carries the imobil it belongs to, so choosing it
opens the parcel card at once.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_core.errors import InvalidParameter
from gis_core.search_keys import search_key

MAX_QUERY = 120
MIN_TEXT = 2
DEFAULT_LIMIT = 8
MAX_LIMIT = 25
_NUMBER_QUERY = re.compile(r"^\s*(?:nr\.?\s*cad\.?\s*|cf\s*)?([0-9][0-9A-Za-z-]{0,39})\s*$", re.I)
_LIKE_SPECIALS = re.compile(r"([\\%_])")


def parse_query(text: str | None) -> str:
    """The query text, trimmed; empty or overlong input is a 400 naming ``q``."""
    value = (text or "").strip()
    if not value:
        raise InvalidParameter(
            "q is required: a cadastral number, an address or a street", locator="q"
        )
    if len(value) > MAX_QUERY:
        raise InvalidParameter(f"q is longer than {MAX_QUERY} characters", locator="q")
    return value


def _like_words(key: str) -> list[str]:
    """``%word%`` patterns, one per word, with LIKE's own wildcards escaped."""
    return [f"%{_escape_like(word)}%" for word in key.split()]


def _escape_like(text: str) -> str:
    return _LIKE_SPECIALS.sub(r"\\\1", text)


def _words_condition(column: str, count: int) -> str:
    return " AND ".join(f"{column} LIKE :w{i}" for i in range(count))


def search(
    conn: Connection, query: str, *, siruta: int, limit: int = DEFAULT_LIMIT
) -> list[dict[str, Any]]:
    """Hits in the order a person expects: imobile by number, then streets, then addresses."""
    results: list[dict[str, Any]] = []
    number = _NUMBER_QUERY.match(query)
    if number:
        results.extend(_parcels(conn, number.group(1), siruta, limit))
    key = search_key(query)
    if len(key.replace(" ", "")) >= MIN_TEXT and re.search(r"[^\W\d_]", key):
        words = _like_words(key)
        results.extend(_streets(conn, words, siruta, max(3, limit // 2)))
        results.extend(_addresses(conn, key, words, siruta, limit))
    return results


def _parcels(conn: Connection, prefix: str, siruta: int, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.text(
            "SELECT cadastral_number, address_text, "
            "ST_X(ST_PointOnSurface(geom_etrs89)), ST_Y(ST_PointOnSurface(geom_etrs89)) "
            "FROM cadastre.parcel "
            "WHERE uat_siruta = :siruta AND valid_to IS NULL AND cadastral_number LIKE :prefix "
            "ORDER BY length(cadastral_number), cadastral_number LIMIT :limit"
        ),
        {"siruta": siruta, "prefix": _escape_like(prefix) + "%", "limit": limit},
    )
    return [
        {
            "kind": "parcel",
            "label": str(number),
            "detail": address,
            "cadastral_number": str(number),
            "lon": _round(lon),
            "lat": _round(lat),
        }
        for number, address, lon, lat in rows
    ]


def _streets(conn: Connection, words: list[str], siruta: int, limit: int) -> list[dict[str, Any]]:
    params: dict[str, Any] = {f"w{i}": word for i, word in enumerate(words)}
    params.update(siruta=siruta, limit=limit)
    rows = conn.execute(
        sa.text(
            f"""
            SELECT name, ST_XMin(geom_etrs89), ST_YMin(geom_etrs89),
                   ST_XMax(geom_etrs89), ST_YMax(geom_etrs89)
            FROM cadastre.street
            WHERE uat_siruta = :siruta AND geom_etrs89 IS NOT NULL
              AND {_words_condition("search_text", len(words))}
            ORDER BY length(search_text), name LIMIT :limit
            """  # noqa: S608 -- the only interpolation is a run of :wN placeholders
        ),
        params,
    )
    return [
        {
            "kind": "street",
            "label": str(name),
            "detail": None,
            "bbox": [_round(x0), _round(y0), _round(x1), _round(y1)],
        }
        for name, x0, y0, x1, y1 in rows
    ]


def _addresses(
    conn: Connection, key: str, words: list[str], siruta: int, limit: int
) -> list[dict[str, Any]]:
    """Addresses containing every word; the exact sequence first, then the shortest."""
    params: dict[str, Any] = {f"w{i}": word for i, word in enumerate(words)}
    params.update(siruta=siruta, limit=limit, phrase=f"%{key} %", start=f"{key} %")
    rows = conn.execute(
        sa.text(
            f"""
            SELECT a.full_text, p.cadastral_number, ST_X(a.geom_etrs89), ST_Y(a.geom_etrs89)
            FROM cadastre.address a
            LEFT JOIN LATERAL (
                SELECT cadastral_number FROM cadastre.parcel p
                WHERE p.valid_to IS NULL AND p.uat_siruta = a.uat_siruta
                  AND (p.address_id = a.id OR ST_Intersects(p.geom, a.geom))
                ORDER BY (p.address_id = a.id) DESC NULLS LAST LIMIT 1
            ) p ON true
            WHERE a.uat_siruta = :siruta AND {_words_condition("a.search_text", len(words))}
            ORDER BY (a.search_text || ' ') LIKE :start DESC,
                     (a.search_text || ' ') LIKE :phrase DESC,
                     length(a.search_text), a.search_text
            LIMIT :limit
            """  # noqa: S608 -- the only interpolation is a run of :wN placeholders
        ),
        params,
    )
    return [
        {
            "kind": "address",
            "label": str(text),
            "detail": str(number) if number is not None else None,
            "cadastral_number": str(number) if number is not None else None,
            "lon": _round(lon),
            "lat": _round(lat),
        }
        for text, number, lon, lat in rows
    ]


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 7)
