"""Validity and extension of acts, from the legal rules kept as settings.

- A CU's validity is chosen at issue within ``cu_validity_min/max_months``; it may be
  extended once, by at most ``cu_extension_max_months``, if asked at least
  ``cu_extension_notice_days`` calendar days before it expires.
- An AC/AD states the period to start works; one extension of at most
  ``ac_extension_max_months``, asked at least ``ac_extension_notice_working_days``
  *working* days before expiry. Working days exclude Saturdays, Sundays and Romanian
  public holidays (Orthodox Easter and Pentecost move every year, so they come from the
  maintained ``holidays`` library rather than a hand-kept list).

An act issued on 15.03.2024 for 12 months is valid up to and including 14.03.2025: the
period ends the day before the same date ``months`` later (the civil-code way of counting
periods in months).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache

import holidays
from dateutil.relativedelta import relativedelta

from gis_core.errors import InvalidInput
from gis_core.settings import Settings

CERTIFICATE = "CU"
PERMITS = ("AC", "AD")


@cache
def _romanian_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("RO", years=year))


def is_public_holiday(day: date) -> bool:
    """A Romanian legal public holiday (Law 53/2003 art. 139), Orthodox Easter included."""
    return day in _romanian_holidays(day.year)


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and not is_public_holiday(day)


def working_days_between(start: date, end: date) -> int:
    """Working days after ``start`` up to and including ``end`` (0 when end <= start)."""
    count = 0
    day = start + timedelta(days=1)
    while day <= end:
        count += is_working_day(day)
        day += timedelta(days=1)
    return count


def subtract_working_days(end: date, days: int) -> date:
    """The latest date with ``days`` working days after it, up to and including ``end``.

    The same convention as the calendar-day rule of certificates: a request on day R is
    "N days before expiry E" when N days lie after R up to and including E.
    """
    day = end
    counted = 0
    while counted < days:
        counted += is_working_day(day)
        day -= timedelta(days=1)
    return day


def valid_until(issued_on: date, months: int) -> date:
    """Last day of validity of an act issued on ``issued_on`` for ``months`` months."""
    return issued_on + relativedelta(months=months) - timedelta(days=1)


def check_validity_months(settings: Settings, kind: str, months: int, *, field: str) -> None:
    """The validity chosen at issue lies in the legal range of the act's kind."""
    low, high = _validity_range(settings, kind)
    if not low <= months <= high:
        raise InvalidInput(
            f"{field}: a {kind} is valid {low} to {high} months, not {months}", locator=field
        )


def _validity_range(settings: Settings, kind: str) -> tuple[int, int]:
    if kind == CERTIFICATE:
        return settings.cu_validity_min_months, settings.cu_validity_max_months
    return settings.ac_validity_min_months, settings.ac_validity_max_months


@dataclass(frozen=True)
class Extension:
    """An accepted extension: the new last day and the last day one could ask for it."""

    months: int
    requested_on: date
    new_valid_until: date
    latest_request: date


def latest_extension_request(settings: Settings, kind: str, expires: date) -> date:
    """The last day on which an extension of an act expiring on ``expires`` may be asked."""
    if kind == CERTIFICATE:
        return expires - timedelta(days=settings.cu_extension_notice_days)
    return subtract_working_days(expires, settings.ac_extension_notice_working_days)


def plan_extension(
    settings: Settings,
    *,
    kind: str,
    issued_on: date,
    expires: date,
    already_extended: bool,
    months: int,
    requested_on: date,
) -> Extension:
    """Check an extension request against the rules; the error names the rule broken."""
    limit = (
        settings.cu_extension_max_months
        if kind == CERTIFICATE
        else settings.ac_extension_max_months
    )
    if already_extended:
        raise InvalidInput(f"a {kind} may be extended only once", locator="months")
    if not 1 <= months <= limit:
        raise InvalidInput(
            f"months: a {kind} extension is 1 to {limit} months, not {months}", locator="months"
        )
    if requested_on < issued_on:
        raise InvalidInput("requested_on: before the act was issued", locator="requested_on")
    latest = latest_extension_request(settings, kind, expires)
    if requested_on > latest:
        notice = (
            f"{settings.cu_extension_notice_days} days"
            if kind == CERTIFICATE
            else f"{settings.ac_extension_notice_working_days} working days"
        )
        raise InvalidInput(
            f"requested_on: an extension of a {kind} expiring on {expires.isoformat()} must be "
            f"asked at least {notice} before, i.e. by {latest.isoformat()}; "
            f"{requested_on.isoformat()} is too late",
            locator="requested_on",
        )
    new_end = expires + relativedelta(months=months)
    return Extension(months, requested_on, new_end, latest)
