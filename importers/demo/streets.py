"""Real Cluj-Napoca street names laid on the synthetic street lines.

Avenues keep the names of the real radial roads they imitate; every other grid line
draws a name from the OSM gazetteer. When the grid has more lines than names, a name
is reused and its street becomes several segments (a MultiLineString), as streets that
change direction or are interrupted are in real cities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from importers.demo import sources
from importers.demo.city import City
from importers.demo.geometry import group_index

CITY_NAME = "Cluj-Napoca"


@dataclass(frozen=True)
class Streets:
    """Named streets (rows of cadastre.street) and the street of each city line."""

    name: tuple[str, ...]
    street_type: tuple[str, ...]
    bare_name: tuple[str, ...]
    osm_id: tuple[str, ...]
    postal_code: tuple[str, ...]
    geom: np.ndarray
    of_line: np.ndarray
    line_rank: np.ndarray

    def __len__(self) -> int:
        return len(self.name)


def name_streets(city: City, seed: int) -> Streets:
    """Give every non-empty line a street; streets ordered as the gazetteer lists them."""
    rng = np.random.default_rng([seed, 72])
    names = sources.street_names()
    by_name = {entry.name: index for index, entry in enumerate(names)}
    avenue_names = {name for name in city.lines.avenue_name if name}
    pool = np.asarray([i for i, e in enumerate(names) if e.name not in avenue_names])
    pool = pool[rng.permutation(pool.size)]
    present = np.asarray([geom is not None for geom in city.lines.geom])
    of_line = np.full(city.lines.geom.size, -1, dtype=np.int64)
    grid_lines = np.flatnonzero(present & (city.lines.district >= 0))
    of_line[grid_lines] = pool[np.arange(grid_lines.size) % pool.size]
    for line, avenue in enumerate(city.lines.avenue_name):
        if avenue and present[line]:
            of_line[line] = by_name[avenue]
    used = np.unique(of_line[of_line >= 0])
    renumber = np.full(len(names), -1, dtype=np.int64)
    renumber[used] = np.arange(used.size)
    street_of_line = np.where(of_line >= 0, renumber[np.maximum(of_line, 0)], -1)
    geoms = _street_geometries(city, street_of_line, used.size)
    postal = 400001 + rng.permutation(700)[np.arange(used.size) % 700]
    chosen = [names[i] for i in used]
    return Streets(
        name=tuple(e.name for e in chosen),
        street_type=tuple(e.street_type for e in chosen),
        bare_name=tuple(e.bare_name for e in chosen),
        osm_id=tuple(e.osm_id for e in chosen),
        postal_code=tuple(str(code) for code in postal),
        geom=geoms,
        of_line=street_of_line,
        line_rank=_line_ranks(street_of_line),
    )


def _street_geometries(city: City, street_of_line: np.ndarray, count: int) -> np.ndarray:
    """One MultiLineString per street, its segments in line order."""
    lines = np.flatnonzero(street_of_line >= 0)
    parts, owner = shapely.get_parts(city.lines.geom[lines], return_index=True)
    street = street_of_line[lines][owner]
    order = np.argsort(street, kind="stable")
    return np.asarray(shapely.multilinestrings(parts[order], indices=street[order]), dtype=object)[
        :count
    ]


def _line_ranks(street_of_line: np.ndarray) -> np.ndarray:
    """Order of each line among the lines of its street (house numbers continue across)."""
    order = np.argsort(street_of_line, kind="stable")
    counts = np.bincount(street_of_line[order] + 1)
    ranks = np.empty_like(street_of_line)
    ranks[order] = group_index(counts)
    return ranks


def full_street_name(street_type: str, bare_name: str) -> str:
    """ "Strada Memorandumului"; names without a type word read as streets."""
    return f"{street_type} {bare_name}"
