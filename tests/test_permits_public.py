"""The public view of acts: the two calls the parcel status and location check rely on."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from permits.public import public_acts_for_parcels, valid_certificate_for

UAT = 54975


def add_parcel(
    conn: Connection,
    number: str,
    x: float = 390_000,
    y: float = 585_000,
    valid_from: str = "2010-01-01",
) -> int:
    """A 20 m square imobil in Stereo 70 (easting x, northing y)."""
    parcel_id: int = conn.execute(
        sa.text(
            "INSERT INTO cadastre.parcel (uat_siruta, cadastral_number, address_text, geom, "
            "valid_from) VALUES (:uat, :n, :addr, ST_Multi(ST_MakeEnvelope(:x, :y, :x + 20, "
            ":y + 20, 3844)), CAST(:since AS timestamptz)) RETURNING id"
        ),
        {
            "uat": UAT,
            "n": number,
            "addr": f"Strada Test nr. {number}",
            "x": x,
            "y": y,
            "since": valid_from,
        },
    ).scalar_one()
    return parcel_id


def add_act(
    conn: Connection,
    kind: str,
    number: str,
    issued: date,
    until: date,
    parcels: list[tuple[int, str]],
    *,
    status: str = "issued",
    applicant: str | None = "Exemplescu Maria",
) -> int:
    act_id: int = conn.execute(
        sa.text(
            "INSERT INTO permits.act (uat_siruta, kind, number, issued_on, register_key, status, "
            "purpose, valid_until, link_state) VALUES (:uat, :kind, :number, :issued, "
            ":key, :status, 'Construire locuință', :until, 'linked') RETURNING id"
        ),
        {
            "uat": UAT,
            "kind": kind,
            "number": number,
            "issued": issued,
            "key": f"{number}/{issued.year}",
            "status": status,
            "until": until,
        },
    ).scalar_one()
    for index, (parcel_id, cadastral) in enumerate(parcels):
        conn.execute(
            sa.text(
                "INSERT INTO permits.act_parcel (act_id, parcel_id, cadastral_number, "
                "is_primary, method, confidence) VALUES (:a, :p, :n, :primary, 'number', 1)"
            ),
            {"a": act_id, "p": parcel_id, "n": cadastral, "primary": index == 0},
        )
    if applicant:
        conn.execute(
            sa.text("INSERT INTO protected.act_applicant (act_id, name) VALUES (:a, :n)"),
            {"a": act_id, "n": applicant},
        )
    return act_id


def test_acts_for_parcels_show_public_fields_and_effective_status(db: Connection) -> None:
    first = add_parcel(db, "900001")
    second = add_parcel(db, "900002", x=390_100)
    cu = add_act(db, "CU", "12", date(2024, 3, 15), date(2025, 3, 14), [(first, "900001")])
    ac = add_act(
        db,
        "AC",
        "7",
        date(2024, 9, 2),
        date(2026, 9, 1),
        [(second, "900002"), (first, "900001")],
    )
    acts = public_acts_for_parcels(db, [first], date(2025, 6, 1))
    assert [a["id"] for a in acts] == [ac, cu]
    assert acts[1]["status"] == "expired"  # lapsed on 14.03.2025
    assert acts[0]["status"] == "issued"
    assert acts[0]["cadastral_numbers"] == ["900002", "900001"]
    assert set(acts[0]) == {
        "id",
        "kind",
        "number",
        "issued_on",
        "status",
        "purpose",
        "valid_until",
        "cadastral_numbers",
    }
    assert "Exemplescu" not in repr(acts)
    # As of a day before the AC was issued, only the CU exists, and it is still valid.
    earlier = public_acts_for_parcels(db, [first], date(2024, 6, 1))
    assert [(a["id"], a["status"]) for a in earlier] == [(cu, "issued")]
    assert public_acts_for_parcels(db, [], None) == []


def test_acts_follow_the_imobil_across_parcel_versions(db: Connection) -> None:
    old = add_parcel(db, "900010")
    db.execute(
        sa.text("UPDATE cadastre.parcel SET valid_to = '2023-01-01' WHERE id = :id"), {"id": old}
    )
    act = add_act(db, "CU", "3", date(2022, 5, 5), date(2023, 5, 4), [(old, "900010")])
    current = add_parcel(db, "900010", valid_from="2023-01-01")
    assert [a["id"] for a in public_acts_for_parcels(db, [current], None)] == [act]


def test_valid_certificate_for_numbers_and_date(db: Connection) -> None:
    a = add_parcel(db, "900020")
    b = add_parcel(db, "900021", x=390_200)
    cu = add_act(
        db, "CU", "40", date(2024, 1, 10), date(2025, 1, 9), [(a, "900020"), (b, "900021")]
    )
    add_act(
        db, "CU", "41", date(2024, 2, 1), date(2026, 1, 31), [(a, "900020")], status="cancelled"
    )
    found = valid_certificate_for(db, ["900020", " 900021 "], date(2024, 12, 31))
    assert found is not None and found["id"] == cu
    assert valid_certificate_for(db, ["900020"], date(2025, 1, 10)) is None  # expired
    assert valid_certificate_for(db, ["900020"], date(2024, 1, 9)) is None  # not yet issued
    assert valid_certificate_for(db, ["900020", "999999"], date(2024, 6, 1)) is None
    assert valid_certificate_for(db, [], date(2024, 6, 1)) is None
