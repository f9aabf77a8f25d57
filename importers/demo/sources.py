"""The real reference data the synthetic city is built on, shipped inside the package.

Only the outline of Cluj-Napoca and its street names are real (OpenStreetMap, ODbL:
see ``OSM-ATTRIBUTION.md``), plus the SIRUTA codes of the UAT and its locality; every
parcel, building, zone and act is invented. Reading them is cheap and has no side
effects, so the generator can stay a pure function of its parameters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from gis_core.crs.transform import transform_geometries
from gis_core.search_keys import search_key

PACKAGE_DIR = Path(__file__).resolve().parent
BOUNDARY_FILE = PACKAGE_DIR / "cluj-napoca_boundary.geo.json"
STREETS_FILE = PACKAGE_DIR / "cluj-napoca_streets.json"
SIRUTA_FILE = PACKAGE_DIR / "siruta_cluj_napoca.json"
UTR_RULES_FILE = PACKAGE_DIR / "utr_rules.json"

STEREO70 = 3844
WGS84 = 4326

# Street-type words at the start of an OSM name, and the type they mean.
_TYPE_PREFIXES = {
    "strada": "Strada",
    "str.": "Strada",
    "bulevardul": "Bulevardul",
    "calea": "Calea",
    "aleea": "Aleea",
    "alee": "Aleea",
    "piața": "Piața",
    "piata": "Piața",
}
# OSM names that are not addressable streets (bridges, shop driveways, ring roads).
_NOT_STREETS = ("Podul ", "Acces ", "Kaufland ", "Centura ", "DN ")


@dataclass(frozen=True)
class StreetName:
    """One gazetteer entry: the OSM name as written, its type and the bare name."""

    osm_id: str
    name: str
    street_type: str
    bare_name: str


@dataclass(frozen=True)
class Locality:
    """A SIRUTA row of the UAT or one of its localities."""

    siruta: int
    parent_siruta: int
    name: str
    level: str
    county_code: int
    postal_code: str


def _read_json(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


@cache
def boundary_stereo70() -> BaseGeometry:
    """The UAT outline in EPSG:3844, via TransDatRO (OSM's WGS84 taken as ETRS89)."""
    document = _read_json(BOUNDARY_FILE)
    polygons = [
        part
        for member in document["geometries"]
        for part in shapely.get_parts(shapely.from_geojson(json.dumps(member)))
    ]
    outline = shapely.union_all(np.asarray(polygons, dtype=object))
    projected = transform_geometries(np.asarray([outline], dtype=object), WGS84, STEREO70)[0]
    return shapely.make_valid(projected)


def lonlat_to_stereo70(lon: float, lat: float) -> tuple[float, float]:
    """One WGS84 point in EPSG:3844 (for the few named places the city is laid out from)."""
    point = transform_geometries(np.asarray([shapely.Point(lon, lat)]), WGS84, STEREO70)[0]
    return float(point.x), float(point.y)


def parse_street_type(name: str) -> tuple[str, str]:
    """Split "Strada Memorandumului" into ("Strada", "Memorandumului"); default Strada."""
    first, _, rest = name.partition(" ")
    street_type = _TYPE_PREFIXES.get(first.casefold())
    if street_type is None or not rest:
        return "Strada", name
    return street_type, rest


@cache
def street_names() -> tuple[StreetName, ...]:
    """Addressable street names in file order, split where OSM joined two with ";".

    Names whose search keys coincide (``Piata Muzeului``/``Piața Muzeului``) keep only
    the spelling with diacritics, so address search never sees twins.
    """
    seen: dict[str, int] = {}
    chosen: list[StreetName] = []
    for entry in _read_json(STREETS_FILE)["streets"]:
        for raw in str(entry["name"]).split(";"):
            name = " ".join(raw.split())
            if not name or name.startswith(_NOT_STREETS) or (name[-1].isdigit() and "-" in name):
                continue
            street_type, bare = parse_street_type(name)
            candidate = StreetName(str(entry["id"]), name, street_type, bare)
            key = search_key(f"{street_type} {bare}")
            if key in seen:
                index = seen[key]
                if _non_ascii(name) > _non_ascii(chosen[index].name):
                    chosen[index] = candidate
                continue
            seen[key] = len(chosen)
            chosen.append(candidate)
    return tuple(chosen)


def _non_ascii(text: str) -> int:
    return sum(1 for char in text if ord(char) > 127)


@cache
def localities() -> tuple[Locality, ...]:
    """The UAT row first, then its localities (SIRSUP = the UAT's SIRUTA)."""
    rows = _read_json(SIRUTA_FILE)["rows"]
    return tuple(
        Locality(
            siruta=int(row["siruta"]),
            parent_siruta=int(row["sirsup"]),
            name=str(row["name"]),
            level=str(row["level"]),
            county_code=int(row["jud"]),
            postal_code=str(row["codp"]),
        )
        for row in rows
    )


@cache
def utr_rules() -> dict[str, Any]:
    """The plans of the demo with their UTR regulations (see ``utr_rules.json``)."""
    data: dict[str, Any] = _read_json(UTR_RULES_FILE)
    return data
