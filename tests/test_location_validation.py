"""Clerks' location validation of a proposed act, on the demo: each rule's pass, warning
and fail, with figures checked against the generator's buildings and UTR rules."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gis_core.db import create_engine
from gis_core.errors import InvalidParameter
from gis_core.settings import Settings
from importers.demo.generate import DemoCity, DemoParameters, generate
from permits.location import LocationContext
from permits.location_request import Limits
from permits.location_rules import classify_use
from permits.validation import parse_proposed_act, validate_location
from tests.conftest import LOCATION_DEMO_PARCELS, LOCATION_DEMO_SEED

CTX = LocationContext(3844, 54975, "Cluj-Napoca", "-", map_url="/map")
LIMITS = Limits(storage_srid=3844)


@pytest.fixture(scope="module")
def demo() -> DemoCity:
    return generate(DemoParameters(parcels=LOCATION_DEMO_PARCELS, seed=LOCATION_DEMO_SEED))


@pytest.fixture(scope="module")
def demo_engine(location_demo_settings: Settings) -> Iterator[Engine]:
    engine = create_engine(location_demo_settings)
    yield engine
    engine.dispose()


@pytest.fixture
def conn(demo_engine: Engine) -> Iterator[Connection]:
    with demo_engine.connect() as connection:
        transaction = connection.begin()
        try:
            yield connection
        finally:
            transaction.rollback()


@pytest.fixture(scope="module")
def site(demo: DemoCity) -> dict[str, Any]:
    """A parcel in one PUG zone, inside the intravilan, with one building, away from PUZs."""
    zones = demo.plans.zones
    parcels, buildings = demo.parcels, demo.buildings
    per_parcel = np.bincount(buildings.parcel, minlength=len(parcels))
    for index in np.flatnonzero((per_parcel == 1) & parcels.intravilan):
        geom = parcels.geom[index]
        holders = np.flatnonzero(shapely.covers(zones.geom, geom))
        if holders.size == 1 and zones.plan[holders[0]] == 0:
            code = zones.utr_code[holders[0]]
            rules = demo.plans.regulation(0, code)
            if rules["pot_max"] and rules["cut_max"] and rules["height_max_m"]:
                building = int(np.flatnonzero(buildings.parcel == index)[0])
                return {
                    "index": int(index),
                    "number": str(parcels.cadastral_number[index]),
                    "plot": float(parcels.measured_area[index]),
                    "rules": rules,
                    "code": code,
                    "built": float(buildings.footprint_area[building]),
                    "floor": float(buildings.floor_area[building]),
                    "geom": geom,
                }
    raise AssertionError("no suitable demo parcel")


def validate(conn: Connection, payload: dict[str, Any]) -> dict[str, Any]:
    return validate_location(conn, parse_proposed_act(payload, LIMITS), CTX)


def results(report: dict[str, Any], rule: str) -> list[str]:
    return [c["result"] for c in report["checks"] if c["rule"] == rule]


def test_intensity_figures_and_limits(conn: Connection, site: dict[str, Any]) -> None:
    rules, plot = site["rules"], site["plot"]
    room = rules["pot_max"] / 100 * plot - site["built"]
    within = {
        "kind": "CU",
        "cadastral_numbers": [site["number"]],
        "intended_use": rules["allowed_uses"][0],
        "proposed": {
            "built_area_m2": max(room * 0.5, 0),
            "gross_floor_area_m2": 0,
            "height_m": rules["height_max_m"] - 1,
        },
    }
    report = validate(conn, within)
    figures = report["figures"]
    assert figures["plot_area_m2"] == pytest.approx(plot, abs=0.01)
    assert figures["existing_built_m2"] == pytest.approx(site["built"], abs=0.01)
    assert figures["existing_floor_m2"] == pytest.approx(site["floor"], abs=0.01)
    expected_pot = (site["built"] + max(room * 0.5, 0)) / plot * 100
    assert figures["pot"] == pytest.approx(expected_pot, abs=0.01)
    assert figures["pot_max"] == rules["pot_max"]
    assert results(report, "parcels_exist") == ["pass"]
    assert results(report, "inside_uat") == ["pass"]
    assert results(report, "inside_intravilan") == ["pass"]
    assert results(report, "zones") == ["pass"]
    assert results(report, "use") == ["pass"]
    assert results(report, "height") == ["pass"]
    assert "valid_certificate" not in {c["rule"] for c in report["checks"]}
    over = dict(within)
    over["proposed"] = {
        "built_area_m2": rules["pot_max"] / 100 * plot,
        "gross_floor_area_m2": rules["cut_max"] * plot,
        "height_m": rules["height_max_m"] + 3,
    }
    report = validate(conn, over)
    assert results(report, "pot") == ["fail"]
    assert results(report, "cut") == ["fail"]
    assert results(report, "height") == ["fail"]
    assert report["outcome"] == "fail"
    demolished = dict(over)
    demolished["proposed"] = {
        "built_area_m2": rules["pot_max"] / 100 * plot - 1,
        "demolished_built_area_m2": site["built"],
    }
    assert results(validate(conn, demolished), "pot") == ["pass"]


def test_a_building_permit_needs_a_valid_certificate(
    conn: Connection, site: dict[str, Any]
) -> None:
    payload = {"kind": "AC", "cadastral_numbers": [site["number"]], "on_date": "2025-06-01"}
    report = validate(conn, payload)
    assert results(report, "valid_certificate") == ["fail"]
    parcel_id = conn.execute(
        sa.text("SELECT id FROM cadastre.parcel WHERE cadastral_number = :n AND valid_to IS NULL"),
        {"n": site["number"]},
    ).scalar_one()
    act_id = conn.execute(
        sa.text(
            "INSERT INTO permits.act (uat_siruta, kind, number, issued_on, register_key, status, "
            "purpose, valid_until) VALUES (54975, 'CU', '4321', '2025-01-10', 'CU/4321/2025', "
            "'issued', 'construire locuință', '2026-01-10') RETURNING id"
        )
    ).scalar_one()
    conn.execute(
        sa.text(
            "INSERT INTO permits.act_parcel (act_id, parcel_id, cadastral_number, is_primary, "
            "method, confidence) VALUES (:a, :p, :n, true, 'manual', 1)"
        ),
        {"a": act_id, "p": parcel_id, "n": site["number"]},
    )
    report = validate(conn, payload)
    assert results(report, "valid_certificate") == ["pass"]
    assert report["certificate"]["number"] == "4321"
    late = validate(conn, {**payload, "on_date": "2026-03-01"})
    assert results(late, "valid_certificate") == ["fail"]


def test_footprint_shares_and_neighbours(
    conn: Connection, site: dict[str, Any], demo: DemoCity
) -> None:
    inner = shapely.buffer(shapely.point_on_surface(site["geom"]), 3)
    footprint = json.loads(shapely.to_geojson(inner))
    report = validate(
        conn,
        {
            "kind": "CU",
            "cadastral_numbers": [site["number"]],
            "footprint": footprint,
            "crs": "EPSG:3844",
        },
    )
    assert results(report, "footprint_on_parcels") == ["pass"]
    assert report["zones"][0]["utr_code"] == site["code"]
    assert report["zones"][0]["share"] == pytest.approx(1.0)
    assert report["figures"]["proposed_built_m2"] == pytest.approx(inner.area, rel=1e-6)
    geoms = demo.parcels.geom
    neighbour = next(
        i for i in np.flatnonzero(shapely.dwithin(geoms, site["geom"], 0.01)) if i != site["index"]
    )
    across = shapely.buffer(
        shapely.shortest_line(site["geom"].centroid, geoms[neighbour]).interpolate(
            1.0, normalized=True
        ),
        6,
    )
    report = validate(
        conn,
        {
            "kind": "AC",
            "cadastral_numbers": [site["number"]],
            "footprint": json.loads(shapely.to_geojson(across)),
            "crs": "EPSG:3844",
        },
    )
    assert results(report, "footprint_on_parcels") == ["fail"]
    assert str(demo.parcels.cadastral_number[neighbour]) in report["checks"][1]["reason"]


def test_missing_parcels_outside_intravilan_and_forbidden_use(
    conn: Connection, demo: DemoCity, site: dict[str, Any]
) -> None:
    report = validate(conn, {"kind": "CU", "cadastral_numbers": ["999999999"]})
    assert results(report, "parcels_exist") == ["fail"]
    outside = int(np.flatnonzero(~demo.parcels.intravilan)[0])
    report = validate(
        conn, {"kind": "AC", "cadastral_numbers": [str(demo.parcels.cadastral_number[outside])]}
    )
    assert results(report, "inside_intravilan") == ["fail"]
    rules = site["rules"]
    uses = (rules["allowed_uses"], rules["conditional_uses"], rules["forbidden_uses"])
    forbidden = next(
        use for use in rules["forbidden_uses"] if classify_use(use, *uses).category == "forbidden"
    )
    report = validate(
        conn, {"kind": "CU", "cadastral_numbers": [site["number"]], "intended_use": forbidden}
    )
    assert results(report, "use") == ["fail"]
    assert report["outcome"] == "fail"


def test_restrictions_carry_their_legal_source(conn: Connection, demo: DemoCity) -> None:
    heritage = demo.plans.restrictions[0]
    index = int(np.flatnonzero(shapely.within(demo.parcels.geom, heritage.geom))[0])
    report = validate(
        conn, {"kind": "CU", "cadastral_numbers": [str(demo.parcels.cadastral_number[index])]}
    )
    warnings = [c for c in report["checks"] if c["rule"] == "restrictions"]
    assert any(c.get("legal_source") == heritage.legal_source for c in warnings)
    assert all(c["result"] == "warning" for c in warnings)


@pytest.mark.parametrize(
    ("payload", "locator"),
    [
        ({}, "cadastral_numbers"),
        ({"kind": "XY", "cadastral_numbers": ["1"]}, "kind"),
        ({"cadastral_numbers": ["1"], "proposed": {"height_m": -3}}, "proposed.height_m"),
        ({"cadastral_numbers": ["1"], "proposed": {"levels": 2.5}}, "proposed.levels"),
        ({"cadastral_numbers": ["1"], "proposed": {"floors": 2}}, "proposed.floors"),
        ({"cadastral_numbers": ["1"], "on_date": "31.12.2024"}, "on_date"),
        ({"footprint": {"type": "Point", "coordinates": [23.6, 46.77]}}, "footprint"),
        ({"cadastral_numbers": ["1"], "crs": "EPSG:3844"}, "crs"),
    ],
)
def test_bad_validation_requests(payload: dict[str, Any], locator: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse_proposed_act(payload, LIMITS)
    assert caught.value.locator == locator


def test_default_date_is_today() -> None:
    act = parse_proposed_act({"cadastral_numbers": ["1"]}, LIMITS)
    assert act.on_date == date.today() and act.kind == "AC"
