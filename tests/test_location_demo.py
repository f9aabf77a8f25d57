"""The location check on the demo municipality, judged against the generator's own truth.

The demo generator is deterministic, so the test regenerates the same city in memory and
computes with shapely what the answer must be (which zone holds a parcel, how much of it
lies in each zone or restriction, which plan applied on a date); the database answers
through ``permits.location`` and must agree.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gis_core.crs import transform_coords
from gis_core.db import create_engine
from gis_core.errors import InvalidInput
from gis_core.settings import Settings
from importers.demo.generate import DemoCity, DemoParameters, generate
from permits.location import LocationContext, check_location
from permits.location_request import Limits, LocationQuery, parse_location_request
from permits.location_rules import classify_use
from tests.conftest import LOCATION_DEMO_PARCELS, LOCATION_DEMO_SEED

RANK = {"PUG": 1, "PUZ": 2, "PUD": 3}


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
    """A connection whose changes are rolled back after the test."""
    with demo_engine.connect() as connection:
        transaction = connection.begin()
        try:
            yield connection
        finally:
            transaction.rollback()


CTX = LocationContext(3844, 54975, "Cluj-Napoca", "Informație.", nearby_m=50.0, map_url="/map")
LIMITS = Limits(storage_srid=3844, max_numbers=10)


def ask(conn: Connection, body: dict) -> dict:
    return check_location(conn, parse_location_request(body, LIMITS), CTX)


# -- the oracle ---------------------------------------------------------------------------
def plans_in_force(demo: DemoCity, day: date) -> list[int]:
    return [
        index
        for index, plan in enumerate(demo.plans.plans)
        if plan.valid_from <= day
        and (plan.valid_to is None or plan.valid_to > day)
        and plan.status in ("approved", "expired")
    ]


def expected_zone_shares(demo: DemoCity, geom: shapely.Geometry, day: date) -> dict[str, float]:
    """UTR code -> share of ``geom`` it governs on ``day`` (higher plans override lower)."""
    zones = demo.plans.zones
    plans = plans_in_force(demo, day)
    shares: dict[str, float] = {}
    covered: shapely.Geometry = shapely.Polygon()
    for plan in sorted(plans, key=lambda i: -RANK[demo.plans.plans[i].plan_type]):
        outline = shapely.intersection(demo.plans.plans[plan].geom, geom)
        for zone_geom, zone_plan, code in zip(zones.geom, zones.plan, zones.utr_code, strict=True):
            if zone_plan != plan:
                continue
            piece = shapely.difference(shapely.intersection(zone_geom, geom), covered)
            if shapely.area(piece) > 0.01:
                shares[code] = shares.get(code, 0.0) + shapely.area(piece) / shapely.area(geom)
        covered = shapely.union(covered, outline)
    return shares


def parcels_where(demo: DemoCity, condition: np.ndarray) -> list[int]:
    return [int(i) for i in np.flatnonzero(condition)]


def single_zone_parcel(demo: DemoCity) -> int:
    """A current parcel lying wholly in one PUG zone, away from every PUZ."""
    zones = demo.plans.zones
    today = date.today()
    puz = [demo.plans.plans[i].geom for i in plans_in_force(demo, today) if i > 0]
    for index in range(0, len(demo.parcels), 7):
        geom = demo.parcels.geom[index]
        if any(shapely.intersects(outline, geom) for outline in puz):
            continue
        holders = np.flatnonzero(shapely.covers(zones.geom, geom) & (zones.plan == 0))
        if holders.size == 1:
            return index
    raise AssertionError("the demo has no parcel inside a single zone")


# -- known parcels -------------------------------------------------------------------------
def test_a_parcel_in_one_zone(conn: Connection, demo: DemoCity) -> None:
    index = single_zone_parcel(demo)
    number = str(demo.parcels.cadastral_number[index])
    answer = ask(conn, {"cadastral_numbers": [number]})
    [parcel] = answer["parcels"]
    assert parcel["cadastral_number"] == number
    assert parcel["land_book_number"] == str(demo.parcels.land_book_number[index])
    assert parcel["measured_area"] == pytest.approx(float(demo.parcels.measured_area[index]), 0.01)
    assert answer["area_m2"] == pytest.approx(demo.parcels.geom[index].area, abs=0.01)
    expected = expected_zone_shares(demo, demo.parcels.geom[index], date.today())
    assert len(expected) == 1
    [zone] = [z for z in answer["zones"] if z["applies"]]
    assert zone["utr_code"] == next(iter(expected))
    assert zone["share"] == pytest.approx(1.0)
    assert zone["plan"]["title"] == "PUG Cluj-Napoca 2014"
    rules = demo.plans.regulation(0, zone["utr_code"])
    assert zone["rules"]["pot_max"] == pytest.approx(rules["pot_max"])
    assert zone["rules"]["allowed_uses"] == rules["allowed_uses"]
    assert answer["uat"]["inside"] == "inside"
    assert answer["map_url"] == f"/map?parcels={number}"
    assert answer["disclaimer"] == "Informație."
    assert answer["provenance"]["data_versions"]["cadastre.parcel"]["version"] >= 1
    assert answer["provenance"]["import_runs"][0]["kind"] == "demo"
    centroid = answer["centroid"]
    assert 23.4 < centroid["lon"] < 23.8 and 46.6 < centroid["lat"] < 46.9


def test_zone_shares_of_a_parcel_across_zones(conn: Connection, demo: DemoCity) -> None:
    zones = demo.plans.zones
    today = date.today()
    for index in range(len(demo.parcels)):
        geom = demo.parcels.geom[index]
        expected = expected_zone_shares(demo, geom, today)
        if len(expected) >= 2 and min(expected.values()) > 0.05:
            break
    else:
        pytest.fail("no demo parcel spans two zones")
    assert zones is not None
    answer = ask(conn, {"cadastral_numbers": [str(demo.parcels.cadastral_number[index])]})
    got = {z["utr_code"]: z["share"] for z in answer["zones"] if z["applies"]}
    assert got.keys() == expected.keys()
    for code, share in expected.items():
        assert got[code] == pytest.approx(share, abs=1e-3)
    assert "several_zones" in {r["code"] for r in answer["reasons"]}
    assert answer["verdict"] == "attention"


def test_restrictions_with_area_and_legal_source(conn: Connection, demo: DemoCity) -> None:
    flood = next(r for r in demo.plans.restrictions if r.kind == "flood")
    hits = parcels_where(demo, shapely.intersects(demo.parcels.geom, flood.geom))
    overlap = shapely.area(shapely.intersection(demo.parcels.geom[hits], flood.geom))
    index = hits[int(np.argmax(overlap))]
    geom = demo.parcels.geom[index]
    answer = ask(conn, {"cadastral_numbers": [str(demo.parcels.cadastral_number[index])]})
    [found] = [r for r in answer["restrictions"] if r["kind"] == "flood"]
    assert found["intersects"] is True and found["distance"] == 0
    assert found["legal_source"] == flood.legal_source
    assert found["area"] == pytest.approx(shapely.intersection(geom, flood.geom).area, rel=1e-3)
    assert "restriction_flood" in {r["code"] for r in answer["reasons"]}


def test_a_parcel_far_from_restrictions_has_none(conn: Connection, demo: DemoCity) -> None:
    every = shapely.union_all([r.geom for r in demo.plans.restrictions])
    far = parcels_where(demo, shapely.distance(demo.parcels.geom, every) > 200)
    answer = ask(conn, {"cadastral_numbers": [str(demo.parcels.cadastral_number[far[0]])]})
    assert answer["restrictions"] == []


def test_nearby_restriction_reports_its_distance(conn: Connection, demo: DemoCity) -> None:
    every = list(demo.plans.restrictions)
    for index in range(len(demo.parcels)):
        geom = demo.parcels.geom[index]
        near = [r for r in every if 5 < shapely.distance(geom, r.geom) < 45]
        if near:
            break
    else:
        pytest.skip("no demo parcel lies near a restriction")
    answer = ask(conn, {"cadastral_numbers": [str(demo.parcels.cadastral_number[index])]})
    got = {r["name"]: r for r in answer["restrictions"]}
    for restriction in near:
        item = got[restriction.name]
        assert item["intersects"] is False
        assert item["distance"] == pytest.approx(shapely.distance(geom, restriction.geom), abs=0.01)


def test_outside_the_intravilan(conn: Connection, demo: DemoCity) -> None:
    index = parcels_where(demo, ~demo.parcels.intravilan)[0]
    answer = ask(conn, {"cadastral_numbers": [str(demo.parcels.cadastral_number[index])]})
    assert answer["intravilan"]["inside"] == "outside"
    assert answer["parcels"][0]["intravilan"] is False
    assert "outside_intravilan" in {r["code"] for r in answer["reasons"]}
    inside = parcels_where(demo, shapely.covered_by(demo.parcels.geom, demo.city.intravilan))[0]
    answer = ask(conn, {"cadastral_numbers": [str(demo.parcels.cadastral_number[inside])]})
    assert answer["intravilan"] == {"inside": "inside", "share": 1.0}


def test_shares_of_the_uat_and_intravilan_near_and_across_their_boundaries(
    conn: Connection, demo: DemoCity
) -> None:
    """The shares agree with shapely wherever the drawn square lies: well inside (the
    quick test decides), inside but close to the boundary (the exact test decides), and
    across it."""
    for outline, field in ((demo.city.intravilan, "intravilan"), (demo.city.boundary, "uat")):
        edge = shapely.get_exterior_ring(shapely.get_geometry(outline, 0))
        corner = shapely.get_coordinates(edge)[0]
        inward = shapely.point_on_surface(shapely.buffer(outline, -300))
        cases = {
            "inside": shapely.box(inward.x - 10, inward.y - 10, inward.x + 10, inward.y + 10),
            "across": shapely.box(*(corner - 40), *(corner + 40)),
        }
        near = shapely.intersection(cases["across"], outline)
        if near.area > 0:
            # Inside the outline, its centre within its own size of the boundary.
            cases["near"] = shapely.buffer(near, -0.5)
        for name, square in cases.items():
            expected = shapely.area(shapely.intersection(square, outline)) / square.area
            answer = ask(
                conn, {"geometry": json.loads(shapely.to_geojson(square)), "crs": "EPSG:3844"}
            )
            assert answer[field]["share"] == pytest.approx(expected, abs=1e-3), (field, name)


# -- dates ----------------------------------------------------------------------------------
def point_in(outline: shapely.Geometry) -> list[float]:
    point = shapely.point_on_surface(shapely.buffer(outline, -50))
    return [point.x, point.y]


@pytest.mark.parametrize(
    ("plan_index", "before", "after"),
    [(1, "2018-06-01", "2020-01-15"), (2, "2015-06-01", "2019-01-01")],
)
def test_plan_changes_over_time(
    conn: Connection, demo: DemoCity, plan_index: int, before: str, after: str
) -> None:
    """The Sopor PUZ applies from 2019; the Tetarom PUZ only from 2012 to 2017."""
    plan = demo.plans.plans[plan_index]
    xy = point_in(plan.geom)
    point = shapely.Point(xy)
    for day in (before, after):
        answer = ask(
            conn,
            {"geometry": {"type": "Point", "coordinates": xy}, "crs": "EPSG:3844", "as_of": day},
        )
        in_force = plans_in_force(demo, date.fromisoformat(day))
        governing = [z for z in answer["zones"] if z["applies"]]
        assert len(governing) == 1, answer["zones"]
        expected_plan = plan.title if plan_index in in_force else "PUG Cluj-Napoca 2014"
        assert governing[0]["plan"]["title"] == expected_plan, day
        zones = demo.plans.zones
        owner = next(
            code
            for geom, p, code in zip(zones.geom, zones.plan, zones.utr_code, strict=True)
            if demo.plans.plans[p].title == expected_plan and shapely.covers(geom, point)
        )
        assert governing[0]["utr_code"] == owner
        overridden = [z for z in answer["zones"] if not z["applies"]]
        if plan_index in in_force:
            assert overridden and overridden[0]["overridden_by"] == [plan.title]
        assert answer["valid_for"] == day


def test_parcel_versions_and_the_date_asked(conn: Connection, demo: DemoCity) -> None:
    number = str(demo.parcels.cadastral_number[10])
    conn.execute(
        sa.text(
            "UPDATE cadastre.parcel SET valid_to = '2020-01-01' "
            "WHERE cadastral_number = :n AND valid_to IS NULL"
        ),
        {"n": number},
    )
    today = ask(conn, {"cadastral_numbers": [number]})
    assert today["parcels"] == []
    assert "2010-01-01" in today["not_found"][0]["reason"]
    assert "2020-01-01" in today["not_found"][0]["reason"]
    assert today["verdict"] == "blocked"
    then = ask(conn, {"cadastral_numbers": [number], "as_of": "2019-12-31"})
    assert [p["cadastral_number"] for p in then["parcels"]] == [number]
    assert ask(conn, {"cadastral_numbers": [number], "as_of": "2009-12-31"})["parcels"] == []


# -- several parcels, addresses, acts ---------------------------------------------------------
def test_contiguous_and_scattered_parcels(conn: Connection, demo: DemoCity) -> None:
    geoms = demo.parcels.geom
    first = single_zone_parcel(demo)
    neighbour = next(
        i for i in np.flatnonzero(shapely.dwithin(geoms, geoms[first], 0.01)) if i != first
    )
    far = int(np.argmax(shapely.distance(geoms, geoms[first])))
    numbers = [str(demo.parcels.cadastral_number[i]) for i in (first, neighbour, far)]
    together = ask(conn, {"cadastral_numbers": numbers[:2]})
    assert together["contiguous"] is True
    union = shapely.union(geoms[first], geoms[neighbour])
    assert together["area_m2"] == pytest.approx(union.area, rel=1e-4)
    assert together["map_url"] == f"/map?parcels={numbers[0]},{numbers[1]}"
    apart = ask(conn, {"cadastral_numbers": [numbers[0], numbers[2]]})
    assert apart["contiguous"] is False
    assert "not_contiguous" in {r["code"] for r in apart["reasons"]}


def test_address_names_its_parcel(conn: Connection, demo: DemoCity) -> None:
    with_address = [i for i, text in enumerate(demo.parcels.address_text) if text][:1]
    index = with_address[0]
    text = str(demo.parcels.address_text[index]).replace(", Cluj-Napoca", "")
    plain = text.translate(str.maketrans("ăâîșțşţĂÂÎȘȚ", "aaisstsAAIST")).upper()
    answer = ask(conn, {"address": plain})
    assert [p["cadastral_number"] for p in answer["parcels"]] == [
        str(demo.parcels.cadastral_number[index])
    ]
    with pytest.raises(InvalidInput, match="not found") as caught:
        ask(conn, {"address": "Strada Inexistentă 99999"})
    assert caught.value.locator == "address"


def test_public_acts_are_listed_without_personal_data(conn: Connection, demo: DemoCity) -> None:
    index = single_zone_parcel(demo)
    number = str(demo.parcels.cadastral_number[index])
    parcel_id = conn.execute(
        sa.text("SELECT id FROM cadastre.parcel WHERE cadastral_number = :n AND valid_to IS NULL"),
        {"n": number},
    ).scalar_one()
    act_id = conn.execute(
        sa.text(
            "INSERT INTO permits.act (uat_siruta, kind, number, issued_on, register_key, status, "
            "purpose, valid_until) VALUES (54975, 'CU', '777', '2025-03-01', 'CU/777/2025', "
            "'issued', 'construire locuință', '2026-03-01') RETURNING id"
        )
    ).scalar_one()
    conn.execute(
        sa.text(
            "INSERT INTO permits.act_parcel (act_id, parcel_id, cadastral_number, is_primary, "
            "method, confidence) VALUES (:a, :p, :n, true, 'manual', 1)"
        ),
        {"a": act_id, "p": parcel_id, "n": number},
    )
    answer = ask(conn, {"cadastral_numbers": [number]})
    [act] = answer["acts"]
    assert act["number"] == "777" and act["kind"] == "CU"
    assert set(act) == {
        "kind",
        "number",
        "issued_on",
        "status",
        "purpose",
        "valid_until",
        "cadastral_numbers",
    }
    before = ask(conn, {"cadastral_numbers": [number], "as_of": "2025-01-01"})
    assert before["acts"] == []


def add_demo_act(
    conn: Connection,
    parcel: tuple[int, str],
    number: str,
    issued: str | None,
    until: str | None,
    *,
    status: str = "issued",
    kind: str = "CU",
    extended: str | None = None,
) -> int:
    act_id: int = conn.execute(
        sa.text(
            "INSERT INTO permits.act (uat_siruta, kind, number, issued_on, register_key, status, "
            "purpose, valid_until, extended_until) VALUES (54975, :kind, :number, "
            "CAST(:issued AS date), :key, :status, 'construire', CAST(:until AS date), "
            "CAST(:extended AS date)) RETURNING id"
        ),
        {
            "kind": kind,
            "number": number,
            "issued": issued,
            "key": f"{kind}/{number}",
            "status": status,
            "until": until,
            "extended": extended,
        },
    ).scalar_one()
    conn.execute(
        sa.text(
            "INSERT INTO permits.act_parcel (act_id, parcel_id, cadastral_number, is_primary, "
            "method, confidence) VALUES (:a, :p, :n, true, 'manual', 1)"
        ),
        {"a": act_id, "p": parcel[0], "n": parcel[1]},
    )
    return act_id


def test_acts_in_the_answer_are_those_of_the_public_register(
    conn: Connection, demo: DemoCity
) -> None:
    """The acts come from the location statement itself; they are the very rows, order
    and effective status ``public_acts_for_parcels`` gives, on every date asked."""
    from permits.public import public_acts_for_parcels

    number = str(demo.parcels.cadastral_number[single_zone_parcel(demo)])
    parcel_id = conn.execute(
        sa.text("SELECT id FROM cadastre.parcel WHERE cadastral_number = :n AND valid_to IS NULL"),
        {"n": number},
    ).scalar_one()
    parcel = (parcel_id, number)
    add_demo_act(conn, parcel, "1", "2023-02-01", "2024-02-01")  # lapsed: expired
    add_demo_act(conn, parcel, "2", "2024-05-10", "2025-05-10", extended="2026-05-10")
    add_demo_act(conn, parcel, "3", "2025-06-01", "2027-06-01", kind="AC")
    add_demo_act(conn, parcel, "4", None, None, status="requested")  # never public
    add_demo_act(conn, parcel, "5", None, None, status="cancelled")
    fields = ("kind", "number", "issued_on", "status", "purpose", "valid_until")
    for as_of in (None, date(2023, 6, 1), date(2024, 12, 31), date(2025, 12, 31)):
        body: dict[str, object] = {"cadastral_numbers": [number]}
        if as_of is not None:
            body["as_of"] = as_of.isoformat()
        answer = ask(conn, body)
        expected = [
            {
                **{key: act[key] for key in fields},
                "issued_on": act["issued_on"] and act["issued_on"].isoformat(),
                "valid_until": act["valid_until"] and act["valid_until"].isoformat(),
                "cadastral_numbers": list(act["cadastral_numbers"]),
            }
            for act in public_acts_for_parcels(conn, [parcel_id], as_of)
        ]
        assert answer["acts"] == expected, as_of
    assert [a["number"] for a in ask(conn, {"cadastral_numbers": [number]})["acts"]] == [
        "3",
        "2",
        "1",
        "5",
    ]


def test_a_location_check_is_one_round_trip(
    conn: Connection, demo: DemoCity, tmp_path: Path
) -> None:
    """Parcels, zones, restrictions and acts in one statement: the protocol trace of the
    connection shows a single Execute message for a whole check."""
    from psycopg.pq import Trace

    number = str(demo.parcels.cadastral_number[single_zone_parcel(demo)])
    ask(conn, {"cadastral_numbers": [number]})  # prepared once; later checks reuse it
    pgconn = conn.connection.driver_connection.pgconn  # type: ignore[union-attr]
    trace = tmp_path / "protocol.trace"
    with trace.open("w") as out:
        pgconn.trace(out.fileno())
        pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS | Trace.REGRESS_MODE)
        try:
            answer = ask(conn, {"cadastral_numbers": [number, "999999999"]})
        finally:
            pgconn.untrace()
    sent = [
        line.split("\t")[2].split()[0]
        for line in trace.read_text().splitlines()
        if line.startswith("F\t")
    ]
    assert sent.count("Execute") == 1, sent
    assert answer["parcels"] and answer["not_found"]


# -- verdicts ---------------------------------------------------------------------------------
def test_a_forbidden_purpose_blocks(conn: Connection, demo: DemoCity) -> None:
    index = single_zone_parcel(demo)
    number = str(demo.parcels.cadastral_number[index])
    code = next(iter(expected_zone_shares(demo, demo.parcels.geom[index], date.today())))
    rules = demo.plans.regulation(0, code)
    uses = (rules["allowed_uses"], rules["conditional_uses"], rules["forbidden_uses"])
    forbidden = next(
        use for use in rules["forbidden_uses"] if classify_use(use, *uses).category == "forbidden"
    )
    answer = ask(conn, {"cadastral_numbers": [number], "purpose": f"construire {forbidden}"})
    zone = answer["zones"][0]
    assert zone["purpose_use"] == {"category": "forbidden", "matched_use": forbidden}
    assert answer["verdict"] == "blocked"
    assert answer["reasons"][0]["code"] == "use_forbidden"
    allowed = rules["allowed_uses"][0]
    fine = ask(conn, {"cadastral_numbers": [number], "purpose": allowed})
    assert fine["zones"][0]["purpose_use"] == {"category": "allowed", "matched_use": allowed}
    assert fine["verdict"] in ("ok", "attention")
    assert "use_forbidden" not in {r["code"] for r in fine["reasons"]}


def test_a_drawn_polygon_finds_the_parcels_under_it(conn: Connection, demo: DemoCity) -> None:
    index = single_zone_parcel(demo)
    site = shapely.buffer(shapely.point_on_surface(demo.parcels.geom[index]), 30)
    answer = ask(
        conn,
        {"geometry": json.loads(shapely.to_geojson(site)), "crs": "EPSG:3844"},
    )
    expected = {
        str(demo.parcels.cadastral_number[i])
        for i in np.flatnonzero(shapely.intersects(demo.parcels.geom, site))
        if shapely.intersection(demo.parcels.geom[i], site).area >= 1.0
    }
    assert {p["cadastral_number"] for p in answer["parcels"]} == expected
    assert answer["area_m2"] == pytest.approx(site.area, rel=1e-6)
    shares = sum(z["share"] for z in answer["zones"] if z["applies"])
    assert shares == pytest.approx(1.0, abs=1e-3)


def test_a_point_outside_the_uat_is_refused(conn: Connection) -> None:
    with pytest.raises(InvalidInput, match="outside the territory") as caught:
        ask(conn, {"geometry": {"type": "Point", "coordinates": [26.1, 44.43]}})
    assert caught.value.locator == "geometry"


def test_query_without_parcels_still_reports_zones(conn: Connection, demo: DemoCity) -> None:
    """A point on no parcel (a street) still gets the zone and the map link of the place."""
    covered = shapely.union_all(demo.parcels.geom)
    gap = shapely.difference(shapely.buffer(covered.centroid, 400), covered)
    point = shapely.point_on_surface(shapely.buffer(gap, -1))
    answer = check_location(conn, LocationQuery(geometry=point, geometry_crs=3844), CTX)
    assert answer["parcels"] == []
    assert any(z["applies"] for z in answer["zones"])
    assert answer["map_url"].startswith("/map?lon=")
    assert "no_parcel_at_location" in {r["code"] for r in answer["reasons"]}


def test_a_lonlat_point_on_no_parcel_falls_back_to_the_place(
    conn: Connection, demo: DemoCity
) -> None:
    """Points in EPSG:4326 are matched on the ETRS89 twins; off every parcel the point
    itself (moved into Stereo 70) is the subject, so zones are still reported."""
    covered = shapely.union_all(demo.parcels.geom)
    gap = shapely.difference(shapely.buffer(covered.centroid, 400), covered)
    point = shapely.point_on_surface(shapely.buffer(gap, -1))
    lon, lat = transform_coords(3844, 4326, [point.x], [point.y])
    answer = ask(
        conn, {"geometry": {"type": "Point", "coordinates": [float(lon[0]), float(lat[0])]}}
    )
    assert answer["parcels"] == []
    assert any(z["applies"] for z in answer["zones"])
    assert answer["query"]["crs"] == "EPSG:4326"
    assert answer["centroid"]["lon"] == pytest.approx(float(lon[0]), abs=1e-6)


def test_zone_rules_come_from_the_zone_else_from_its_plan_by_utr(
    conn: Connection, demo: DemoCity
) -> None:
    """A zone's own regulation wins; a zone without one takes its plan's rules for its UTR."""
    index = single_zone_parcel(demo)
    number = str(demo.parcels.cadastral_number[index])
    [zone] = [z for z in ask(conn, {"cadastral_numbers": [number]})["zones"] if z["applies"]]
    code, own = zone["utr_code"], demo.plans.regulation(0, zone["utr_code"])
    conn.execute(
        sa.text("UPDATE urbanism.zone SET regulation_id = NULL WHERE utr_code = :c"), {"c": code}
    )
    [by_utr] = [z for z in ask(conn, {"cadastral_numbers": [number]})["zones"] if z["applies"]]
    assert by_utr["rules"]["pot_max"] == pytest.approx(own["pot_max"])
    assert by_utr["name"] == zone["name"]
    other = conn.execute(
        sa.text(
            "SELECT id, name FROM urbanism.regulation WHERE utr_code <> :c AND name IS NOT NULL "
            "ORDER BY id LIMIT 1"
        ),
        {"c": code},
    ).one()
    conn.execute(
        sa.text("UPDATE urbanism.zone SET regulation_id = :r WHERE utr_code = :c"),
        {"r": other.id, "c": code},
    )
    [given] = [z for z in ask(conn, {"cadastral_numbers": [number]})["zones"] if z["applies"]]
    assert given["utr_code"] == code and given["name"] == other.name


def test_one_parcel_is_not_asked_whether_it_touches_others(
    conn: Connection, demo: DemoCity
) -> None:
    """Contiguity is a question about two parcels or more: one parcel's answer leaves it
    open, and its statement does not compute it (its ``groups`` fact is empty)."""
    from permits.location import spatial_facts

    number = str(demo.parcels.cadastral_number[single_zone_parcel(demo)])
    query = parse_location_request({"cadastral_numbers": [number]}, LIMITS)
    assert spatial_facts(conn, query, CTX).doc["groups"] is None
    assert ask(conn, {"cadastral_numbers": [number]})["contiguous"] is None
