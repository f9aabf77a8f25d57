"""Legal date rules of acts (Romanian holidays, Orthodox Easter) and register number parsing."""

from __future__ import annotations

from datetime import date

import pytest

from gis_core.errors import InvalidInput
from gis_core.settings import Settings
from permits.numbers import parse_act_number, parse_cited_numbers
from permits.validity import (
    Extension,
    is_public_holiday,
    is_working_day,
    latest_extension_request,
    plan_extension,
    subtract_working_days,
    valid_until,
    working_days_between,
)

SETTINGS = Settings()


def extension(
    kind: str,
    issued_on: date,
    expires: date,
    months: int,
    requested_on: date,
    *,
    already_extended: bool = False,
) -> Extension:
    """The extension plan under the default settings (the rules' arrange step)."""
    return plan_extension(
        SETTINGS,
        kind=kind,
        issued_on=issued_on,
        expires=expires,
        already_extended=already_extended,
        months=months,
        requested_on=requested_on,
    )


@pytest.mark.parametrize(
    ("day", "holiday"),
    [
        (date(2024, 5, 3), True),  # Orthodox Good Friday 2024 (Western Easter was 31 March)
        (date(2024, 5, 6), True),  # Orthodox Easter Monday
        (date(2024, 4, 1), False),  # Western Easter Monday is a working day in Romania
        (date(2025, 4, 21), True),  # Easter Monday 2025 (both churches)
        (date(2024, 6, 24), True),  # Orthodox Pentecost Monday
        (date(2024, 1, 24), True),  # Union day
        (date(2024, 11, 30), True),  # St Andrew
        (date(2024, 1, 6), True),  # Epiphany (public holiday since 2024)
        (date(2023, 1, 6), False),  # ... and not before
        (date(2024, 12, 1), True),
        (date(2024, 3, 15), False),
    ],
)
def test_romanian_public_holidays(day: date, holiday: bool) -> None:
    assert is_public_holiday(day) is holiday


def test_working_days_skip_weekends_and_holidays() -> None:
    assert not is_working_day(date(2024, 5, 4))  # Saturday
    assert is_working_day(date(2024, 5, 7))
    # 29 April - 10 May 2024: 10 weekdays, of which 1 May, 3 May and 6 May are holidays.
    assert working_days_between(date(2024, 4, 28), date(2024, 5, 10)) == 7
    assert working_days_between(date(2024, 5, 10), date(2024, 5, 1)) == 0


def test_validity_ends_the_day_before_the_anniversary() -> None:
    assert valid_until(date(2024, 3, 15), 12) == date(2025, 3, 14)
    assert valid_until(date(2024, 1, 31), 1) == date(2024, 2, 28)  # month end clamps
    assert valid_until(date(2023, 2, 28), 24) == date(2025, 2, 27)


def test_cu_extension_needs_fifteen_calendar_days() -> None:
    expires = date(2025, 3, 14)
    assert latest_extension_request(SETTINGS, "CU", expires) == date(2025, 2, 27)
    plan = extension("CU", date(2024, 3, 15), expires, 12, date(2025, 2, 27))
    assert plan.new_valid_until == date(2026, 3, 14)
    with pytest.raises(InvalidInput, match=r"by 2025-02-27; 2025-02-28 is too late"):
        extension("CU", date(2024, 3, 15), expires, 12, date(2025, 2, 28))
    with pytest.raises(InvalidInput, match="1 to 12 months"):
        extension("CU", date(2024, 3, 15), expires, 13, date(2024, 6, 1))
    with pytest.raises(InvalidInput, match="only once"):
        extension("CU", date(2024, 3, 15), expires, 6, date(2024, 6, 1), already_extended=True)


def test_ac_extension_counts_45_working_days_around_orthodox_easter() -> None:
    # An AC expiring on Friday 28 June 2024: counting back 45 working days crosses
    # 1 May, Orthodox Good Friday (3 May), Easter Monday (6 May), Children's Day on a
    # Saturday (no effect) and Pentecost Monday (24 June).
    expires = date(2024, 6, 28)
    latest = latest_extension_request(SETTINGS, "AC", expires)
    assert latest == date(2024, 4, 22)
    assert working_days_between(latest, expires) == 45
    # Counting weekends only would have allowed 26 April, four working days too late.
    assert working_days_between(date(2024, 4, 26), expires) == 41
    assert subtract_working_days(expires, 45) == latest
    ok = extension("AC", date(2022, 6, 29), expires, 24, latest)
    assert ok.new_valid_until == date(2026, 6, 28)
    with pytest.raises(InvalidInput, match="45 working days"):
        extension("AC", date(2022, 6, 29), expires, 24, date(2024, 4, 23))
    with pytest.raises(InvalidInput, match="1 to 24 months"):
        extension("AD", date(2022, 6, 29), expires, 25, date(2024, 1, 5))


def test_rules_follow_the_settings() -> None:
    strict = Settings(cu_extension_notice_days=30, ac_extension_notice_working_days=10)
    assert latest_extension_request(strict, "CU", date(2025, 3, 31)) == date(2025, 3, 1)
    # 10 working days up to Tuesday 7 May 2024: 6, 3 and 1 May are holidays.
    assert latest_extension_request(strict, "AC", date(2024, 5, 7)) == date(2024, 4, 18)


@pytest.mark.parametrize(
    ("cell", "numbers"),
    [
        ("228603", ["228603"]),
        ("224784-C1-U72", ["224784"]),
        ("240315; 240316", ["240315", "240316"]),
        ("240315, 240316", ["240315", "240316"]),
        ("240315 ; 240316;", ["240315", "240316"]),
        ("240315 240316", ["240315", "240316"]),
        ("258 311", ["258311"]),
        ("  258311 ", ["258311"]),
        ("CF 258311", ["258311"]),
        ("CF nr. 258311", ["258311"]),
        ("nr. cad. 258311", ["258311"]),
        ("NC 258311", ["258311"]),
        ("0", []),
        ("00", []),
        ("", []),
        (" ", []),
        (None, []),
        ("123A-435", ["123A-435"]),
        ("267.4-291", ["267.4-291"]),
        ("34-16, 34-111", ["34-16", "34-111"]),
    ],
)
def test_cited_numbers_as_registers_write_them(cell: str | None, numbers: list[str]) -> None:
    assert [c.number for c in parse_cited_numbers(cell)] == numbers


def test_building_and_unit_suffixes_are_kept_apart() -> None:
    (cited,) = parse_cited_numbers("224784-C1-U72")
    assert (cited.number, cited.building, cited.unit) == ("224784", "C1", "U72")


@pytest.mark.parametrize("cell", ["25#123", "Numerous (~39)", "240315 / x?y"])
def test_unreadable_cells_are_named(cell: str) -> None:
    with pytest.raises(InvalidInput, match="nr_cadastral"):
        parse_cited_numbers(cell, field="nr_cadastral")


def test_act_numbers() -> None:
    assert parse_act_number("123/15.03.2024") == ("123", "15.03.2024")
    assert parse_act_number(" 45 ") == ("45", None)
    assert parse_act_number("PB-001") == ("PB-001", None)
    assert parse_act_number("12.0") == ("12", None)
    for bad in ("", None, "12 3/2024", "#5"):
        with pytest.raises(InvalidInput, match="nr_act"):
            parse_act_number(bad, field="nr_act")
