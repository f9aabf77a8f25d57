"""Urban plans of the demo: the PUG with its UTR zones, two PUZs, and the restrictions.

Zones are laid out the way a Romanian PUG reads: the protected historic core at the
centre, mixed zones along the radial avenues, collective housing in the post-1960
districts, houses on the hills, urbanisation zones at the edge of the intravilan,
green corridors along the river, industry to the north-east, fields and forest
outside. Each layer only takes the land earlier layers left, so the PUG's zones tile
the whole UAT without overlaps; the PUZs overlay part of it, as they do in reality.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from importers.demo import sources
from importers.demo.city import City
from importers.demo.geometry import blob, multipolygons, polygonal

_MIN_ZONE_AREA = 200.0
# District palettes: the base UTRs shared out among the parts of each district.
_PALETTES = {
    "central": ("M3", "L3a", "ZCP_M1"),
    "houses": ("L1a", "L1b", "L2a", "L3a", "Lip"),
    "collective": ("Lc", "Lc", "M3", "L3a"),
    "industrial": ("A", "RiM", "UI", "A"),
}
_EDGE_UTR = {"central": "Liu", "houses": "Liu", "collective": "UM1", "industrial": "UI"}
_CENTRE_UTR = {"central": "CB1", "houses": "CB3", "collective": "CB2", "industrial": "CB1"}
_FOREST_SECTORS = frozenset({4, 5, 6})
_UM2_DISTRICTS = frozenset({"Someșeni", "Sopor", "Borhanci"})


@dataclass(frozen=True)
class PlanRecord:
    """One plan row and its regulations (as in ``utr_rules.json``) with its outline."""

    key: str
    plan_type: str
    title: str
    hcl_number: str
    hcl_date: date
    valid_from: date
    valid_to: date | None
    status: str
    description: str
    regulations: tuple[dict[str, Any], ...]
    geom: BaseGeometry


@dataclass(frozen=True)
class Zones:
    """Zone polygons with the plan (index into ``Plans.plans``) and UTR code of each."""

    geom: np.ndarray
    plan: np.ndarray
    utr_code: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.geom.size)


@dataclass(frozen=True)
class RestrictionRecord:
    kind: str
    name: str
    legal_source: str
    description: str
    valid_from: date
    on_pug: bool
    geom: BaseGeometry


@dataclass(frozen=True)
class Plans:
    plans: tuple[PlanRecord, ...]
    zones: Zones
    restrictions: tuple[RestrictionRecord, ...]

    def regulation(self, plan: int, utr_code: str) -> dict[str, Any]:
        """The rules of one UTR of one plan."""
        for rule in self.plans[plan].regulations:
            if rule["utr_code"] == utr_code:
                return rule
        raise KeyError(f"{self.plans[plan].title} has no UTR {utr_code}")


def lay_out_plans(city: City, seed: int) -> Plans:
    """The PUG, the two PUZs and the restrictions of the demo city."""
    rng = np.random.default_rng([seed, 73])
    rules = sources.utr_rules()["plans"]
    outlines = {
        "pug": city.boundary,
        "sopor": _puz_outline(city, "Sopor", 750.0, rng),
        "tetarom": _puz_outline(city, "Zona Industrială Est", 650.0, rng),
    }
    plans = tuple(_plan_record(rule, outlines[rule["key"]]) for rule in rules)
    zone_parts = [_pug_zones(city, rng)]
    for index, plan in enumerate(plans[1:], start=1):
        zone_parts.append(_puz_zones(plan, index, rng))
    zones = Zones(
        geom=np.concatenate([z.geom for z in zone_parts]),
        plan=np.concatenate([z.plan for z in zone_parts]),
        utr_code=tuple(code for z in zone_parts for code in z.utr_code),
    )
    return Plans(plans, zones, _restrictions(city, rng))


def _plan_record(rule: dict[str, Any], outline: BaseGeometry) -> PlanRecord:
    return PlanRecord(
        key=rule["key"],
        plan_type=rule["plan_type"],
        title=rule["title"],
        hcl_number=rule["hcl_number"],
        hcl_date=date.fromisoformat(rule["hcl_date"]),
        valid_from=date.fromisoformat(rule["valid_from"]),
        valid_to=date.fromisoformat(rule["valid_to"]) if rule["valid_to"] else None,
        status=rule["status"],
        description=rule["description"],
        regulations=tuple(rule["regulations"]),
        geom=outline,
    )


def _puz_outline(
    city: City, district: str, radius: float, rng: np.random.Generator
) -> BaseGeometry:
    """A PUZ area: a blob around a district position, inside the intravilan."""
    where = next(d for d in city.districts if d.name == district)
    shape = blob((where.seed_x, where.seed_y), radius, rng, stretch=(1.3, 0.8), rotation=0.5)
    return shapely.intersection(shape, city.intravilan)


def _pug_zones(city: City, rng: np.random.Generator) -> Zones:
    """The PUG's UTR zones over the whole UAT, layer by layer (first layer wins)."""
    layers = [*_feature_layers(city, rng), *_district_layers(city, rng)]
    remaining = city.intravilan
    geoms: list[BaseGeometry] = []
    codes: list[str] = []
    for code, geom in layers:
        if geom.is_empty or geom.area == 0.0:
            continue
        piece = shapely.intersection(geom, remaining)
        if piece.is_empty:
            continue
        remaining = shapely.difference(remaining, piece)
        geoms.append(piece)
        codes.append(code)
    outside = shapely.difference(city.boundary, city.intravilan)
    for index, sector in enumerate(city.extravilan_sectors):
        geoms.append(shapely.intersection(sector, outside))
        codes.append("PAD" if index in _FOREST_SECTORS else "AGR")
    return _explode(np.asarray(geoms, dtype=object), codes, plan=0)


def _feature_layers(city: City, rng: np.random.Generator) -> list[tuple[str, BaseGeometry]]:
    """River, parks, airport, historic core, institutions, centres, avenues, squares."""
    at = city.offset
    layers: list[tuple[str, BaseGeometry]] = [("V3", city.river.buffer(60.0))]
    layers += [("V1a", geom) for _, geom in city.parks]
    layers.append(("TA", city.airport))
    layers.append(("ZCP_C1", blob(at(0, 0), 650.0, rng, stretch=(1.2, 0.9))))
    layers.append(("ZCP_Lip", blob(at(-1200, 950), 420.0, rng)))
    layers.append(("ZCP_Lip", blob(at(1300, -1000), 450.0, rng)))
    layers.append(("ZCP_M1", blob(at(100, 0), 1150.0, rng, stretch=(1.25, 0.9))))
    for dx, dy, radius in (
        (-900, -550, 280),
        (900, -650, 230),
        (-300, -1500, 200),
        (3600, -1200, 220),
        (-2600, -900, 200),
    ):
        layers.append(("IS", blob(at(dx, dy), radius, rng)))
    for district in city.districts:
        code = _CENTRE_UTR[district.kind]
        if district.name in ("Mărăști", "Mănăștur"):
            code = "CB1"
        layers.append((code, blob((district.seed_x, district.seed_y), 220.0, rng)))
    centre = shapely.Point(city.centre).buffer(3000.0)
    for _, avenue in city.avenues:
        layers.append(("M1", shapely.intersection(avenue, centre).buffer(90.0)))
        layers.append(("M2", shapely.difference(avenue, centre).buffer(80.0)))
    for dx, dy in ((-6200, 600), (5600, -2200), (2400, 3900)):
        layers.append(("ET", blob(at(dx, dy), 180.0, rng)))
    for _ in range(14):
        point = _random_point_in(city.intravilan, rng)
        layers.append(("Ve", blob(point, rng.uniform(60.0, 120.0), rng)))
    return layers


def _district_layers(city: City, rng: np.random.Generator) -> list[tuple[str, BaseGeometry]]:
    """The edge band (urbanisation zones), then each district shared among its palette."""
    layers: list[tuple[str, BaseGeometry]] = []
    band = shapely.difference(city.intravilan, city.intravilan.buffer(-500.0))
    for district in city.districts:
        code = "UM2" if district.name in _UM2_DISTRICTS else _EDGE_UTR[district.kind]
        layers.append((code, shapely.intersection(band, district.geom)))
    turn = 0
    for district in city.districts:
        palette = _PALETTES[district.kind]
        if district.geom.is_empty:
            continue
        seeds = np.asarray([_random_point_in(district.geom, rng) for _ in range(3)])
        cells = shapely.get_parts(
            shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=district.geom.envelope)
        )
        for cell in sorted(cells, key=lambda c: (c.centroid.x, c.centroid.y)):
            layers.append((palette[turn % len(palette)], shapely.intersection(cell, district.geom)))
            turn += 1
        layers.append((palette[0], district.geom))
    return layers


def _random_point_in(area: BaseGeometry, rng: np.random.Generator) -> tuple[float, float]:
    """A uniformly drawn point inside ``area`` (rejection sampling on its envelope)."""
    minx, miny, maxx, maxy = area.bounds
    shapely.prepare(area)
    while True:
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if shapely.contains_xy(area, x, y):
            return float(x), float(y)


def _puz_zones(plan: PlanRecord, index: int, rng: np.random.Generator) -> Zones:
    """A PUZ's area shared among its own UTRs (Voronoi of a few seeds)."""
    codes = [rule["utr_code"] for rule in plan.regulations]
    seeds = np.asarray([_random_point_in(plan.geom, rng) for _ in codes])
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=plan.geom.envelope)
    )
    ordered = sorted(cells, key=lambda c: (c.centroid.x, c.centroid.y))
    geoms = np.asarray([shapely.intersection(c, plan.geom) for c in ordered], dtype=object)
    return _explode(geoms, [codes[i % len(codes)] for i in range(len(ordered))], plan=index)


def _explode(geoms: np.ndarray, codes: list[str], plan: int) -> Zones:
    """One zone row per polygon part; crumbs from the overlay are dropped."""
    parts, owner = shapely.get_parts(polygonal(geoms), return_index=True)
    keep = shapely.area(parts) >= _MIN_ZONE_AREA
    parts, owner = parts[keep], owner[keep]
    return Zones(
        geom=multipolygons(parts),
        plan=np.full(parts.size, plan, dtype=np.int32),
        utr_code=tuple(codes[i] for i in owner),
    )


def _restrictions(city: City, rng: np.random.Generator) -> tuple[RestrictionRecord, ...]:
    """Heritage zones, the Someș flood band, power-line corridors and the airport zone."""
    at = city.offset
    inside = city.boundary
    records = [
        RestrictionRecord(
            "heritage",
            "Zona construită protejată – centrul istoric",
            "Lista monumentelor istorice 2015, LMI CJ-II-s-A-07074",
            "Ansamblul urban al centrului istoric; intervențiile se avizează de Direcția "
            "Județeană pentru Cultură.",
            date(2015, 12, 29),
            True,
            blob(at(0, 50), 1100.0, rng, stretch=(1.2, 0.95)),
        ),
        RestrictionRecord(
            "heritage",
            "Zona de protecție a ansamblului urban Andrei Mureșanu",
            "Lista monumentelor istorice 2015, LMI CJ-II-a-B-07308",
            "Cartier de vile interbelice protejat ca ansamblu urban.",
            date(2015, 12, 29),
            True,
            blob(at(1500, -1250), 520.0, rng),
        ),
        RestrictionRecord(
            "flood",
            "Zonă inundabilă Someșul Mic (probabilitate 1 %)",
            "Planul de management al riscului la inundații, ABA Someș-Tisa, 2016",
            "Banda inundabilă la debitul cu probabilitate de depășire 1 %; construcțiile noi "
            "necesită aviz de gospodărire a apelor.",
            date(2016, 3, 1),
            True,
            _flood_band(city, rng),
        ),
    ]
    lines = (
        (
            "Culoar de protecție LEA 110 kV Cluj Est – Florești",
            ((-9000, 3200), (-2500, 4200), (4000, 4300), (12000, 3900)),
            18.5,
        ),
        (
            "Culoar de protecție LEA 110 kV Cluj Sud – Baciu",
            ((-8000, -4400), (-1000, -4100), (5000, -3700), (11000, -4800)),
            18.5,
        ),
        (
            "Culoar de protecție LEA 220 kV Câmpia Turzii – Cluj Est",
            ((9500, -9000), (8200, -3000), (7600, 2000)),
            27.5,
        ),
    )
    for name, points, half_width in lines:
        path = shapely.LineString([at(dx, dy) for dx, dy in points])
        records.append(
            RestrictionRecord(
                "easement",
                name,
                "Ordin ANRE 239/2019",
                f"Culoar de trecere și zonă de protecție de {2 * half_width:g} m; construcțiile "
                f"necesită avizul operatorului de rețea.",
                date(2019, 12, 20),
                False,
                path.buffer(half_width, cap_style="flat"),
            )
        )
    records.append(
        RestrictionRecord(
            "airport",
            "Zona de servitute aeronautică – Aeroportul Internațional Avram Iancu Cluj",
            "Codul aerian civil (OG 29/1997), aviz AACR",
            "Construcțiile și obstacolele din zonă se autorizează numai cu avizul Autorității "
            "Aeronautice Civile Române.",
            date(2010, 1, 1),
            False,
            city.airport.buffer(1500.0),
        )
    )
    return tuple(
        RestrictionRecord(
            r.kind,
            r.name,
            r.legal_source,
            r.description,
            r.valid_from,
            r.on_pug,
            multipolygons(
                polygonal(np.asarray([shapely.intersection(r.geom, inside)], dtype=object))
            )[0],
        )
        for r in records
    )


def _flood_band(city: City, rng: np.random.Generator) -> BaseGeometry:
    """The river buffered by 50-150 m, the width varying smoothly along its course."""
    line = shapely.line_merge(city.river) if city.river.geom_type != "LineString" else city.river
    parts = shapely.get_parts(line)
    pieces = []
    for part in parts:
        distances = np.arange(0.0, part.length, 40.0)
        points = shapely.line_interpolate_point(part, distances)
        phase = rng.uniform(0.0, 2.0 * np.pi)
        radii = 100.0 + 50.0 * np.sin(distances / 900.0 + phase)
        discs = shapely.buffer(points, radii, quad_segs=6)
        pieces.append(shapely.union_all(shapely.convex_hull(shapely.union(discs[:-1], discs[1:]))))
    return shapely.union_all(np.asarray(pieces, dtype=object))
