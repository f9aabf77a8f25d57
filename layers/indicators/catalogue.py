"""The catalogue of indicators: what each one means, how it is computed, from what.

Every indicator is a ratio ``value = factor × numerator / denominator`` of sums over
the objects of a spatial unit (parcels, buildings, green area, acts, residents), so
it can be computed in one SQL statement per indicator, or in pieces on many machines
and added up (the Dask path), with the same answer. The text fields are what the
report and the API show strategy teams; the ids are what commands and layers use.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from gis_core.errors import InvalidParameter

GREEN_UTR_PREFIXES = ("V",)
PROTECTED_KINDS = ("heritage", "protected_area", "natura2000")
FLOOD_KINDS = ("flood",)


@dataclass(frozen=True)
class IndicatorParameters:
    """Tunable parts of the definitions; recorded with every run."""

    park_distance_m: float = 400.0
    school_distance_m: float = 600.0
    transit_distance_m: float = 300.0
    green_utr_prefixes: tuple[str, ...] = GREEN_UTR_PREFIXES
    protected_kinds: tuple[str, ...] = PROTECTED_KINDS
    flood_kinds: tuple[str, ...] = FLOOD_KINDS

    def __post_init__(self) -> None:
        for name in ("park_distance_m", "school_distance_m", "transit_distance_m"):
            value = getattr(self, name)
            if not 0 < value <= 50_000:
                raise InvalidParameter(f"{name} must be in (0, 50000] m", locator=name)

    def as_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndicatorParameters:
        known = set(cls.__dataclass_fields__)
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known}
        return cls(**values)  # type: ignore[arg-type]

    def distance(self, kind: str) -> float:
        return float(getattr(self, f"{kind.removesuffix('_stop')}_distance_m"))


@dataclass(frozen=True)
class Indicator:
    """One catalogue entry."""

    id: str
    name: str
    definition: str
    formula: str
    unit: str
    source_layers: tuple[str, ...]
    factor: float = 1.0
    needs: tuple[str, ...] = ()
    spatial_units: tuple[str, ...] = ("utr", "zones", "boundary", "hex", "square")
    tags: tuple[str, ...] = field(default=())

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "definition": self.definition,
            "formula": self.formula,
            "unit": self.unit,
            "source_layers": list(self.source_layers),
            "spatial_units": list(self.spatial_units),
            "needs": list(self.needs),
        }


CATALOGUE: tuple[Indicator, ...] = (
    Indicator(
        "built_density",
        "Built-up density",
        "Gross floor area of all buildings in the unit per square metre of the unit's land "
        "(the unit's floor area ratio). A building belongs to the unit containing its point "
        "on surface.",
        "Σ gross floor area of buildings / area of the unit",
        "m²/m²",
        ("buildings", "spatial units"),
    ),
    Indicator(
        "built_share",
        "Share of built area",
        "Built footprint of all buildings in the unit as a share of the unit's area.",
        "100 × Σ building footprint / area of the unit",
        "%",
        ("buildings", "spatial units"),
        factor=100.0,
    ),
    Indicator(
        "green_per_inhabitant",
        "Green area per inhabitant",
        "Area of public green space inside the unit per resident. Green space is the "
        "loaded 'green' input layer or, when none is loaded, the zones of green UTRs "
        "(codes starting with V) of the plan in force.",
        "Σ area(green ∩ unit) / residents of the unit",
        "m²/inhabitant",
        ("green areas or zones", "population", "spatial units"),
        needs=("population",),
    ),
    Indicator(
        "park_access_share",
        "Parcels near a park",
        "Share of the unit's parcels within the park distance (400 m by default) of a park.",
        "100 × #parcels with distance(parcel, nearest park) ≤ d / #parcels",
        "%",
        ("parcels", "parks", "spatial units"),
        factor=100.0,
        needs=("park",),
    ),
    Indicator(
        "school_access_share",
        "Parcels near a school",
        "Share of the unit's parcels within the school distance (600 m by default) of a school.",
        "100 × #parcels with distance(parcel, nearest school) ≤ d / #parcels",
        "%",
        ("parcels", "schools", "spatial units"),
        factor=100.0,
        needs=("school",),
    ),
    Indicator(
        "transit_access_share",
        "Parcels near a transit stop",
        "Share of the unit's parcels within the transit distance (300 m by default) of a "
        "public transport stop.",
        "100 × #parcels with distance(parcel, nearest stop) ≤ d / #parcels",
        "%",
        ("parcels", "transit stops", "spatial units"),
        factor=100.0,
        needs=("transit_stop",),
    ),
    Indicator(
        "acts_per_1000",
        "Acts per 1 000 inhabitants",
        "Urbanism certificates and building/demolition permits issued in the year on the "
        "unit's parcels (an act counts on its primary parcel), per 1 000 residents.",
        "1000 × #acts issued in the year / residents of the unit",
        "acts/1 000 inhabitants/year",
        ("acts register", "parcels", "population", "spatial units"),
        factor=1000.0,
        needs=("acts", "population"),
    ),
    Indicator(
        "flood_share",
        "Parcels in flood areas",
        "Share of the unit's parcels that intersect a flood-risk restriction.",
        "100 × #parcels intersecting a flood restriction / #parcels",
        "%",
        ("parcels", "restrictions", "spatial units"),
        factor=100.0,
    ),
    Indicator(
        "protected_share",
        "Parcels in protected areas",
        "Share of the unit's parcels that intersect a heritage, protected-area or Natura 2000 "
        "restriction.",
        "100 × #parcels intersecting a protection restriction / #parcels",
        "%",
        ("parcels", "restrictions", "spatial units"),
        factor=100.0,
    ),
    Indicator(
        "avg_parcel_size",
        "Average parcel size",
        "Mean area of the parcels (imobile) lying in the unit (by their point on surface).",
        "Σ parcel area / #parcels",
        "m²",
        ("parcels", "spatial units"),
    ),
    Indicator(
        "time_to_issue",
        "Permits' average time to issue",
        "Mean number of days from the request to the issue of the acts issued in the year "
        "on the unit's parcels.",
        "Σ (issue date − request date) / #acts issued in the year with both dates",
        "days",
        ("acts register", "parcels", "spatial units"),
        needs=("acts",),
    ),
)

BY_ID = {indicator.id: indicator for indicator in CATALOGUE}


def get(indicator_id: str) -> Indicator:
    found = BY_ID.get(indicator_id)
    if found is None:
        raise InvalidParameter(
            f"unknown indicator {indicator_id!r}; known: {', '.join(BY_ID)}", locator="indicator"
        )
    return found


def select(ids: tuple[str, ...] | list[str] | None) -> tuple[Indicator, ...]:
    """The named indicators in catalogue order (all of them when none are named)."""
    if not ids:
        return CATALOGUE
    wanted = {get(i).id for i in ids}
    return tuple(i for i in CATALOGUE if i.id in wanted)
