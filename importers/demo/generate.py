"""The demo municipality as one pure function of (number of parcels, seed).

Each stage draws from its own random generator seeded with (seed, stage[, size]), so a
change in one stage never reshuffles the others, and nothing depends on the clock, on
dict or set order, or on the machine: the same parameters give byte-identical output.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from importers.demo import DEFAULT_PARCELS, DEFAULT_SEED
from importers.demo.buildings import Buildings, build
from importers.demo.city import City, build_city
from importers.demo.lots import parcellate
from importers.demo.parcels import Addresses, Parcels, describe_parcels
from importers.demo.plans import Plans, lay_out_plans
from importers.demo.streets import Streets, name_streets

Progress = Callable[[str], None]


@dataclass(frozen=True)
class DemoParameters:
    """What a demo is generated from; recorded on its import run."""

    parcels: int = DEFAULT_PARCELS
    seed: int = DEFAULT_SEED

    def as_dict(self) -> dict[str, int]:
        return {"parcels": self.parcels, "seed": self.seed}


@dataclass(frozen=True)
class DemoCity:
    """Everything the demo loads or writes to sample files."""

    parameters: DemoParameters
    city: City
    streets: Streets
    plans: Plans
    parcels: Parcels
    addresses: Addresses
    buildings: Buildings
    timings: dict[str, float] = field(default_factory=dict, compare=False)


def _quiet(message: str) -> None:
    del message


def generate(parameters: DemoParameters, progress: Progress = _quiet) -> DemoCity:
    """Generate the whole synthetic municipality (no database involved)."""
    timings: dict[str, float] = {}

    def timed(name: str, started: float) -> None:
        timings[name] = round(time.perf_counter() - started, 3)
        progress(f"  {name}: {timings[name]:.1f} s")

    started = time.perf_counter()
    city = build_city(parameters.seed)
    timed("city", started)
    started = time.perf_counter()
    streets = name_streets(city, parameters.seed)
    plans = lay_out_plans(city, parameters.seed)
    timed("streets and plans", started)
    started = time.perf_counter()
    lots = parcellate(city, parameters.parcels, parameters.seed)
    timed("parcellation", started)
    started = time.perf_counter()
    parcels, addresses = describe_parcels(city, lots, streets, plans, parameters.seed)
    timed("parcel attributes and addresses", started)
    started = time.perf_counter()
    buildings = build(city, lots, parcels, parameters.seed)
    timed("buildings", started)
    return DemoCity(parameters, city, streets, plans, parcels, addresses, buildings, timings)
