"""Clerk operations on acts: rules at issue, extensions, cancellation, locking, audit, queue."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_core.audit import history
from gis_core.errors import Conflict, InvalidInput
from gis_core.settings import Settings
from permits import lifecycle, queue
from permits.linking import link_acts
from tests.test_permits_public import add_parcel

CLERK = "staff ana"


@pytest.fixture
def parcels(db: Connection) -> dict[str, int]:
    return {n: add_parcel(db, n, x=391_000 + 40 * i) for i, n in enumerate(("810001", "810002"))}


def _cu(db: Connection, settings: Settings, number: str = "101", **extra: object) -> dict:
    data = {
        "kind": "CU",
        "number": number,
        "issued_on": "2024-03-15",
        "validity_months": 12,
        "purpose": "Construire locuință P+1E",
        "cadastral_numbers": ["810001"],
        "applicant": {"name": "Exemplescu Maria", "national_id": "2900101123456"},
        **extra,
    }
    return lifecycle.create_act(db, settings, data, actor=CLERK)


def test_a_certificate_is_registered_linked_and_audited(
    db: Connection, settings: Settings, parcels: dict[str, int]
) -> None:
    act = _cu(db, settings)
    assert act["status"] == "issued"
    assert act["valid_until"] == date(2025, 3, 14)
    assert act["version"] == 1
    assert [(link["cadastral_number"], link["method"]) for link in act["links"]] == [
        ("810001", "number")
    ]
    assert act["applicant"]["name"] == "Exemplescu Maria"
    (entry,) = history(db, "permits.act", act["id"])
    assert entry["actor"] == CLERK and entry["action"] == "insert"
    assert entry["after"]["number"] == "101"


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"validity_months": 30}, "validity_months"),
        ({"validity_months": 2}, "validity_months"),
        ({"issued_on": "15.03.2024"}, "issued_on"),
        ({"issued_on": "2024-02-30"}, "issued_on"),
        ({"cadastral_numbers": "81#001"}, "cadastral_numbers"),
        ({"number": "1a b"}, "number"),
        ({"colour": "red"}, "colour"),
        ({"kind": "XY"}, "kind"),
        ({"applicant": {"name": "X", "cnp": "1"}}, "applicant"),
        ({"location": {"type": "LineString", "coordinates": [[23, 46], [23.1, 46]]}}, "location"),
    ],
)
def test_bad_fields_are_named(
    db: Connection, settings: Settings, parcels: dict[str, int], extra: dict, field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        _cu(db, settings, **extra)
    assert caught.value.locator == field or field in caught.value.message


def test_numbers_of_another_uat_are_refused(db: Connection, settings: Settings) -> None:
    db.execute(
        sa.text(
            "INSERT INTO cadastre.parcel (uat_siruta, cadastral_number, geom) VALUES "
            "(55000, '820001', ST_Multi(ST_MakeEnvelope(392000, 585000, 392020, 585020, 3844)))"
        )
    )
    with pytest.raises(InvalidInput, match="820001 is an imobil of UAT 55000"):
        _cu(db, settings, cadastral_numbers="820001")


def test_duplicate_numbers_conflict(
    db: Connection, settings: Settings, parcels: dict[str, int]
) -> None:
    _cu(db, settings, number="7")
    with pytest.raises(Conflict, match="CU 7/2024 is already registered"):
        _cu(db, settings, number="7", issued_on="2024-11-02")
    # The same number in another year, or as an AC, is another act.
    _cu(db, settings, number="7", issued_on="2025-01-08")


def test_a_permit_needs_a_valid_certificate(
    db: Connection, settings: Settings, parcels: dict[str, int]
) -> None:
    permit = {
        "kind": "AC",
        "number": "55",
        "issued_on": "2024-09-02",
        "validity_months": 24,
        "cadastral_numbers": "810001",
        "height_m": 9.5,
        "levels": 2,
    }
    with pytest.raises(InvalidInput, match="needs a certificate of urbanism valid on 2024-09-02"):
        lifecycle.create_act(db, settings, permit, actor=CLERK)
    cu = _cu(db, settings)
    ac = lifecycle.create_act(db, settings, permit, actor=CLERK)
    assert ac["basis_act_id"] == cu["id"]
    late = {**permit, "number": "56", "issued_on": "2025-03-15"}  # the CU lapsed on 14.03
    with pytest.raises(InvalidInput, match="basis_act_id"):
        lifecycle.create_act(db, settings, late, actor=CLERK)
    other = {**permit, "number": "57", "cadastral_numbers": "810002", "basis_act_id": cu["id"]}
    with pytest.raises(InvalidInput, match=f"act {cu['id']} is not a CU valid"):
        lifecycle.create_act(db, settings, other, actor=CLERK)


def test_extensions_follow_the_rules(
    db: Connection, settings: Settings, parcels: dict[str, int]
) -> None:
    cu = _cu(db, settings)
    with pytest.raises(InvalidInput, match="by 2025-02-27"):
        lifecycle.extend_act(
            db, settings, cu["id"], 1, months=12, requested_on=date(2025, 3, 1), actor=CLERK
        )
    extended = lifecycle.extend_act(
        db, settings, cu["id"], 1, months=12, requested_on=date(2025, 2, 20), actor=CLERK
    )
    assert extended["status"] == "extended"
    assert extended["extended_until"] == date(2026, 3, 14)
    with pytest.raises(InvalidInput, match="only once"):
        lifecycle.extend_act(
            db, settings, cu["id"], 2, months=1, requested_on=date(2025, 2, 21), actor=CLERK
        )
    entries = history(db, "permits.act", cu["id"])
    assert entries[-1]["reason"] == "extended by 12 months"
    assert entries[-1]["before"]["status"] == "issued"
    assert entries[-1]["after"]["status"] == "extended"


def test_stale_saves_conflict_and_lose_nothing(
    db: Connection, settings: Settings, parcels: dict[str, int]
) -> None:
    cu = _cu(db, settings)
    first = lifecycle.update_act(
        db, settings, cu["id"], cu["version"], {"purpose": "Alipire"}, actor="staff ana"
    )
    assert first["version"] == 2
    with pytest.raises(Conflict, match="now version 2, you edited version 1"):
        lifecycle.update_act(
            db, settings, cu["id"], cu["version"], {"purpose": "Dezmembrare"}, actor="staff ion"
        )
    assert lifecycle.get_act(db, cu["id"], personal=False)["purpose"] == "Alipire"


def test_status_moves_forward_and_cancel_needs_a_reason(
    db: Connection, settings: Settings, parcels: dict[str, int]
) -> None:
    requested = lifecycle.create_act(
        db,
        settings,
        {"kind": "CU", "number": "9", "requested_on": "2024-05-02", "cadastral_numbers": "810002"},
        actor=CLERK,
    )
    assert requested["status"] == "requested"
    with pytest.raises(InvalidInput, match="needs its date"):
        lifecycle.update_act(db, settings, requested["id"], 1, {"status": "issued"}, actor=CLERK)
    issued = lifecycle.update_act(
        db,
        settings,
        requested["id"],
        1,
        {"status": "issued", "issued_on": "2024-05-20", "validity_months": 24},
        actor=CLERK,
    )
    assert issued["valid_until"] == date(2026, 5, 19)
    with pytest.raises(InvalidInput, match="cannot become requested"):
        lifecycle.update_act(db, settings, requested["id"], 2, {"status": "requested"}, actor=CLERK)
    with pytest.raises(InvalidInput, match="reason"):
        lifecycle.cancel_act(db, requested["id"], 2, reason=" ", actor=CLERK)
    cancelled = lifecycle.cancel_act(db, requested["id"], 2, reason="cerere retrasă", actor=CLERK)
    assert cancelled["status"] == "cancelled"
    with pytest.raises(InvalidInput, match="cannot be cancelled"):
        lifecycle.cancel_act(db, requested["id"], 3, reason="again", actor=CLERK)


def test_the_queue_is_resolved_by_hand_and_relinking_keeps_it(
    db: Connection, settings: Settings, parcels: dict[str, int]
) -> None:
    act = _cu(db, settings, number="300", cadastral_numbers="819999")
    assert act["link_state"] == "unmatched"
    items = [i for i in queue.open_items(db) if i["act_id"] == act["id"]]
    assert len(items) == 1 and items[0]["reason"] == "unmatched"
    assert "819999" in items[0]["detail"]
    with pytest.raises(InvalidInput, match="no imobil '999'"):
        queue.resolve_item(db, items[0]["id"], actor=CLERK, cadastral_numbers=["999"])
    done = queue.resolve_item(db, items[0]["id"], actor=CLERK, cadastral_numbers=["810002"])
    assert done["parcels"] == ["810002"]
    with pytest.raises(Conflict):
        queue.resolve_item(db, items[0]["id"], actor=CLERK, cadastral_numbers=["810002"])
    report = link_acts(db, settings, act_ids=[act["id"]])
    assert report.skipped_manual == 1
    links = lifecycle.get_act(db, act["id"], personal=False)["links"]
    assert [(link["cadastral_number"], link["method"]) for link in links] == [("810002", "manual")]
    assert history(db, "permits.act_parcel", act["id"])[-1]["actor"] == CLERK


def test_a_site_plan_links_spatially_and_is_drawn(
    db: Connection, settings: Settings, parcels: dict[str, int]
) -> None:
    # A footprint in Stereo 70 mostly on 810002 (x 391040..391060), a sliver on 810001.
    footprint = {
        "type": "Polygon",
        "coordinates": [
            [
                [391018, 585002],
                [391050, 585002],
                [391050, 585018],
                [391018, 585018],
                [391018, 585002],
            ]
        ],
    }
    act = _cu(
        db, settings, number="400", cadastral_numbers=None, footprint=footprint, crs="EPSG:3844"
    )
    assert [(link["cadastral_number"], link["method"]) for link in act["links"]] == [
        ("810002", "spatial"),
        ("810001", "spatial"),
    ]
    drawn = db.execute(
        sa.text("SELECT ST_Area(geom) FROM permits.act WHERE id = :id"), {"id": act["id"]}
    ).scalar_one()
    assert drawn == pytest.approx(32 * 16)
