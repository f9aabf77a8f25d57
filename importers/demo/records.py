"""The generated city as column arrays per table, geometries as EWKB with ETRS89 twins.

Twins are computed here with TransDatRO, in the same vectorised call the twin filler
uses, so the load never has to UPDATE a million freshly written rows to fill them
(an UPDATE rewrites every row); ``fill_missing_twins`` then only confirms none is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import shapely

from gis_core.crs.transform import transform_geometries
from gis_core.search_keys import search_key
from importers.demo import sources
from importers.demo.generate import DemoCity
from importers.demo.geometry import multipolygons

STEREO70 = 3844
ETRS89 = 4258
UAT_SIRUTA = 54975
LOCALITY_SIRUTA = 54984
ADMIN_SOURCE = (
    "OpenStreetMap boundary (ODbL) via osm-ro-cities; SIRUTA via sirutalib; urbangis demo"
)
# When the imobile and buildings of the demo entered the records.
RECORDS_SINCE = datetime(2010, 1, 1, tzinfo=UTC)

Columns = dict[str, Any]


@dataclass(frozen=True)
class Ids:
    """First ids of the rows whose ids other rows refer to (blocks reserved in advance)."""

    street: int
    address: int
    parcel: int
    plan: int
    regulation: int


def ewkb(geoms: np.ndarray, srid: int = STEREO70) -> list[bytes | None]:
    """EWKB bytes with the SRID (what binary COPY hands to PostGIS); None stays None."""
    array = np.asarray(geoms, dtype=object)
    present = array != None  # noqa: E711 - elementwise comparison with None
    result: list[bytes | None] = [None] * array.size
    if present.any():
        encoded = shapely.to_wkb(shapely.set_srid(array[present], srid), include_srid=True)
        for index, value in zip(np.flatnonzero(present).tolist(), encoded.tolist(), strict=True):
            result[index] = value
    return result


def with_twin(geoms: np.ndarray) -> tuple[list[bytes | None], list[bytes | None]]:
    """Storage EWKB and the ETRS89 twin's EWKB of the same geometries."""
    array = np.asarray(geoms, dtype=object)
    present = array != None  # noqa: E711
    twins = np.full(array.size, None, dtype=object)
    if present.any():
        twins[present] = transform_geometries(array[present], STEREO70, ETRS89)
    return ewkb(array), ewkb(twins, ETRS89)


def decimals(values: np.ndarray) -> list[Decimal | None]:
    """Two-decimal numerics, converted once (binary COPY takes Decimal, not float)."""
    return [None if v != v else Decimal(f"{v:.2f}") for v in np.asarray(values, float).tolist()]


def at_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _end(day: date | None) -> datetime | None:
    return None if day is None else at_midnight(day)


def admin_units() -> Columns:
    """The UAT (with the real outline) and its localities (no geometry)."""
    rows = sources.localities()
    outline = np.asarray(
        [multipolygons(np.asarray([sources.boundary_stereo70()], dtype=object))[0]]
        + [None] * (len(rows) - 1),
        dtype=object,
    )
    geom, twin = with_twin(outline)
    return {
        "siruta": [row.siruta for row in rows],
        "parent_siruta": [row.parent_siruta for row in rows],
        "name": [row.name for row in rows],
        "level": [row.level for row in rows],
        "county_code": [row.county_code for row in rows],
        "source": [ADMIN_SOURCE] * len(rows),
        "geom": geom,
        "geom_etrs89": twin,
    }


def intravilan(demo: DemoCity, run_id: int) -> Columns:
    geom, twin = with_twin(multipolygons(np.asarray([demo.city.intravilan], dtype=object)))
    return {
        "uat_siruta": [UAT_SIRUTA],
        "name": ["Intravilan Cluj-Napoca (PUG 2014)"],
        "geom": geom,
        "geom_etrs89": twin,
        "valid_from": [at_midnight(demo.plans.plans[0].valid_from)],
        "import_run_id": [run_id],
    }


def streets(demo: DemoCity, ids: Ids) -> Columns:
    s = demo.streets
    geom, twin = with_twin(s.geom)
    return {
        "id": list(range(ids.street, ids.street + len(s))),
        "uat_siruta": [UAT_SIRUTA] * len(s),
        "street_type": list(s.street_type),
        "name": list(s.name),
        "search_text": [search_key(name) for name in s.name],
        "source_id": [f"osm:{osm_id}" for osm_id in s.osm_id],
        "geom": geom,
        "geom_etrs89": twin,
    }


def addresses(demo: DemoCity, ids: Ids) -> Columns:
    a = demo.addresses
    count = len(a)
    geom, twin = with_twin(a.geom)
    return {
        "id": np.arange(ids.address, ids.address + count),
        "uat_siruta": [UAT_SIRUTA] * count,
        "locality_siruta": [LOCALITY_SIRUTA] * count,
        "street_id": a.street + ids.street,
        "street_type": a.street_type,
        "street_name": a.street_name,
        "number": a.number,
        "postal_code": a.postal_code,
        "full_text": a.full_text,
        "search_text": a.search_text,
        "geom": geom,
        "geom_etrs89": twin,
    }


def parcels(demo: DemoCity, ids: Ids, run_id: int) -> Columns:
    p = demo.parcels
    count = len(p)
    geom, twin = with_twin(multipolygons(p.geom))
    address_id = np.where(p.address >= 0, p.address + ids.address, -1)
    return {
        "id": np.arange(ids.parcel, ids.parcel + count),
        "uat_siruta": [UAT_SIRUTA] * count,
        "cadastral_number": p.cadastral_number,
        "land_book_number": p.land_book_number,
        "e2_identifier": p.e2_identifier,
        "cad_sector": p.cad_sector,
        "topo_number": p.topo_number,
        "measured_area": decimals(p.measured_area),
        "legal_area": decimals(p.legal_area),
        "use_category": p.use_category,
        "intravilan": p.intravilan,
        "address_id": [None if a < 0 else a for a in address_id.tolist()],
        "address_text": p.address_text,
        "geom": geom,
        "geom_etrs89": twin,
        "valid_from": [RECORDS_SINCE] * count,
        "import_run_id": [run_id] * count,
    }


def parcel_uses(demo: DemoCity, ids: Ids, seed: int) -> Columns:
    """One use sub-parcel per parcel; a few large yards split into yard and arable land."""
    p = demo.parcels
    count = len(p)
    rng = np.random.default_rng([seed, count, 76])
    split = p.intravilan & (p.use_category == "CC") & (p.measured_area > 1500.0)
    split &= rng.random(count) < 0.08
    whole = np.flatnonzero(~split)
    halves = np.flatnonzero(split)
    minx, miny, maxx, maxy = shapely.bounds(p.geom[halves]).T
    west = shapely.intersection(
        p.geom[halves], shapely.box(minx - 1, miny - 1, (minx + maxx) / 2, maxy + 1)
    )
    east = shapely.difference(p.geom[halves], west)
    parcel = np.concatenate([whole, halves, halves])
    number = np.concatenate([np.ones(whole.size + halves.size, np.int64), np.full(halves.size, 2)])
    use = np.concatenate(
        [
            p.use_category[whole],
            np.full(halves.size, "CC", object),
            np.full(halves.size, "A", object),
        ]
    )
    geoms = np.concatenate([p.geom[whole], west, east])
    order = np.lexsort((number, parcel))
    parcel, number, use, geoms = (
        parcel[order],
        number[order],
        use[order],
        multipolygons(geoms[order]),
    )
    return {
        "parcel_id": parcel + ids.parcel,
        "number": number,
        "use_category": use,
        "measured_area": decimals(np.round(shapely.area(geoms), 2)),
        "intravilan": p.intravilan[parcel],
        "geom": ewkb(geoms),
    }


def buildings(demo: DemoCity, run_id: int) -> Columns:
    b = demo.buildings
    count = len(b)
    geom, twin = with_twin(multipolygons(b.geom))
    return {
        "uat_siruta": [UAT_SIRUTA] * count,
        "cadastral_number": demo.parcels.cadastral_number[b.parcel],
        "building_number": b.building_number,
        "e2_identifier": b.e2_identifier,
        "footprint_area": decimals(b.footprint_area),
        "floor_area": decimals(b.floor_area),
        "levels": b.levels,
        "height_m": decimals(b.height_m),
        "destination": b.destination,
        "is_legal": b.is_legal,
        "geom": geom,
        "geom_etrs89": twin,
        "valid_from": [RECORDS_SINCE] * count,
        "import_run_id": [run_id] * count,
    }


def plans(demo: DemoCity, ids: Ids, run_id: int) -> Columns:
    records = demo.plans.plans
    outlines = multipolygons(np.asarray([plan.geom for plan in records], dtype=object))
    return {
        "id": list(range(ids.plan, ids.plan + len(records))),
        "uat_siruta": [UAT_SIRUTA] * len(records),
        "plan_type": [plan.plan_type for plan in records],
        "title": [plan.title for plan in records],
        "hcl_number": [plan.hcl_number for plan in records],
        "hcl_date": [plan.hcl_date for plan in records],
        "valid_from": [plan.valid_from for plan in records],
        "valid_to": [plan.valid_to for plan in records],
        "status": [plan.status for plan in records],
        "description": [plan.description for plan in records],
        "import_run_id": [run_id] * len(records),
        "geom": ewkb(outlines),
    }


def regulation_ids(demo: DemoCity, ids: Ids) -> dict[tuple[int, str], int]:
    """Id of each (plan index, UTR code), in the order the regulations are written."""
    result: dict[tuple[int, str], int] = {}
    for plan_index, plan in enumerate(demo.plans.plans):
        for rule in plan.regulations:
            result[(plan_index, rule["utr_code"])] = ids.regulation + len(result)
    return result


def regulations(demo: DemoCity, ids: Ids) -> Columns:
    numeric = ("pot_max", "cut_max", "height_max_m", "min_plot_area", "min_frontage")
    columns: Columns = {name: [] for name in ("id", "plan_id", "utr_code", "name", "function")}
    for extra in (
        "allowed_uses",
        "conditional_uses",
        "forbidden_uses",
        *numeric,
        "height_regime",
        "rules_text",
    ):
        columns[extra] = []
    for (plan_index, code), regulation_id in regulation_ids(demo, ids).items():
        rule = demo.plans.regulation(plan_index, code)
        columns["id"].append(regulation_id)
        columns["plan_id"].append(ids.plan + plan_index)
        columns["utr_code"].append(code)
        for name in (
            "name",
            "function",
            "allowed_uses",
            "conditional_uses",
            "forbidden_uses",
            "height_regime",
            "rules_text",
        ):
            columns[name].append(rule[name])
        for name in numeric:
            value = rule[name]
            columns[name].append(None if value is None else Decimal(str(value)))
    return columns


def zones(demo: DemoCity, ids: Ids, run_id: int) -> Columns:
    z = demo.plans.zones
    regulation_of = regulation_ids(demo, ids)
    geom, twin = with_twin(z.geom)
    plan_index = z.plan.tolist()
    return {
        "plan_id": [ids.plan + p for p in plan_index],
        "regulation_id": [
            regulation_of[(p, c)] for p, c in zip(plan_index, z.utr_code, strict=True)
        ],
        "utr_code": list(z.utr_code),
        "function": [
            demo.plans.regulation(p, c)["function"]
            for p, c in zip(plan_index, z.utr_code, strict=True)
        ],
        "geom": geom,
        "geom_etrs89": twin,
        "valid_from": [at_midnight(demo.plans.plans[p].valid_from) for p in plan_index],
        "valid_to": [_end(demo.plans.plans[p].valid_to) for p in plan_index],
        "import_run_id": [run_id] * len(z),
    }


def restrictions(demo: DemoCity, ids: Ids, run_id: int) -> Columns:
    records = demo.plans.restrictions
    geom, twin = with_twin(np.asarray([r.geom for r in records], dtype=object))
    return {
        "uat_siruta": [UAT_SIRUTA] * len(records),
        "kind": [r.kind for r in records],
        "name": [r.name for r in records],
        "legal_source": [r.legal_source for r in records],
        "plan_id": [ids.plan if r.on_pug else None for r in records],
        "description": [r.description for r in records],
        "geom": geom,
        "geom_etrs89": twin,
        "valid_from": [at_midnight(r.valid_from) for r in records],
        "import_run_id": [run_id] * len(records),
    }
