"""One register row into one act: every field parsed, every problem named by row and field.

Nothing here touches the database; the pipeline collects the problems of all rows and
refuses the file if there is any, so a clerk fixes everything in one pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from gis_core.errors import InvalidInput
from gis_core.search_keys import fold
from gis_core.settings import Settings
from permits.numbers import parse_act_number, parse_cited_numbers
from permits.validity import check_validity_months, valid_until

KINDS = {
    "cu": "CU",
    "certificat de urbanism": "CU",
    "ac": "AC",
    "autorizatie de construire": "AC",
    "autorizatie de construtie": "AC",
    "ad": "AD",
    "autorizatie de desfiintare": "AD",
}
# Register words for the status, Romanian and English (the Cambridge register's words).
STATUSES = {
    "emis": "issued",
    "emisa": "issued",
    "issued": "issued",
    "permitted": "issued",
    "under construction": "issued",
    "in executie": "issued",
    "prelungit": "extended",
    "prelungita": "extended",
    "extended": "extended",
    "expirat": "expired",
    "expirata": "expired",
    "expired": "expired",
    "anulat": "cancelled",
    "anulata": "cancelled",
    "cancelled": "cancelled",
    "withdrawn": "cancelled",
    "denied": "cancelled",
    "respins": "cancelled",
    "superseded": "cancelled",
    "finalizat": "completed",
    "finalizata": "completed",
    "completed": "completed",
    "built": "completed",
    "solicitat": "requested",
    "in analiza": "requested",
    "requested": "requested",
    "permitting": "requested",
    "reviewing": "requested",
    "reviewed": "requested",
    "no decision": "requested",
}
_DATE_FORMATS = ("%d.%m.%Y", "%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%Y/%m/%d")
_YEAR = re.compile(r"^(19|20)\d\d$")
_LEGAL_PERSON = re.compile(r"\b(s\.?c\.?|s\.?r\.?l\.?|s\.?a\.?|pfa|ii|inc|llc|ltd)\b", re.I)


@dataclass
class ActRow:
    """An act as read from one row (geometry is attached by the pipeline)."""

    label: str
    kind: str
    number: str
    issued_on: date | None
    register_key: str
    status: str
    purpose: str | None = None
    address: str | None = None
    cited_numbers: str | None = None
    cited_problem: str | None = None
    land_book: str | None = None
    validity_months: int | None = None
    valid_until: date | None = None
    requested_on: date | None = None
    applicant: str | None = None
    applicant_kind: str = "natural"
    applicant_id: str | None = None
    footprint_area: Decimal | None = None
    floor_area: Decimal | None = None
    height_m: Decimal | None = None
    levels: int | None = None
    x: float | None = None
    y: float | None = None

    def public_values(self) -> tuple[object, ...]:
        """What a re-import compares to decide changed or unchanged."""
        return (
            self.number,
            self.issued_on,
            self.status,
            self.purpose,
            self.address,
            self.cited_numbers,
            self.land_book,
            self.validity_months,
        )


class RowError(Exception):
    """A field of a row is unusable; carries the field's column name."""

    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


def parse_row(
    label: str,
    cells: dict[str, str | None],
    columns: dict[str, str],
    settings: Settings,
    forced_kind: str | None,
) -> ActRow:
    """Parse one row; raises ``RowError`` naming the first bad field."""
    get = _Getter(cells, columns)
    number_text = get("number")
    try:
        number, suffix = parse_act_number(number_text, field=columns["number"])
    except InvalidInput as exc:
        raise RowError(columns["number"], exc.message) from None
    issued = get.date("issued_on")
    issued = _reconcile_date(issued, suffix, columns, get)
    kind = forced_kind or _kind(get)
    _check_uat(get, settings)
    months = get.integer("validity_months")
    if months is not None:
        try:
            check_validity_months(settings, kind, months, field=columns["validity_months"])
        except InvalidInput as exc:
            raise RowError(columns["validity_months"], exc.message) from None
    cited = get("cadastral_numbers")
    cited_problem = None
    try:
        parse_cited_numbers(cited, field=columns.get("cadastral_numbers", "cadastral_numbers"))
    except InvalidInput as exc:
        # Real registers write "Numerous (~39)" or "see annex": the act is still an act;
        # it is imported and the linker sends it to the review queue.
        cited_problem = exc.message
    applicant = get("applicant")
    year = issued.year if issued else (suffix if suffix and _YEAR.match(suffix) else None)
    key = get("source_id") or (f"{number}/{year}" if year else number)
    return ActRow(
        label=label,
        kind=kind,
        number=number,
        issued_on=issued,
        register_key=key,
        status=_status(get),
        purpose=get("purpose"),
        address=get("address"),
        cited_numbers=cited.strip() if cited else None,
        cited_problem=cited_problem,
        land_book=get("land_book"),
        validity_months=months,
        valid_until=valid_until(issued, months) if issued and months else None,
        requested_on=get.date("requested_on"),
        applicant=applicant,
        applicant_kind="legal" if applicant and _LEGAL_PERSON.search(applicant) else "natural",
        applicant_id=get("applicant_id"),
        footprint_area=get.decimal("footprint_area"),
        floor_area=get.decimal("floor_area"),
        height_m=get.decimal("height_m"),
        levels=get.integer("levels"),
        x=get.real("x"),
        y=get.real("y"),
    )


class _Getter:
    """Typed access to a row's cells by target name; errors name the source column."""

    def __init__(self, cells: dict[str, str | None], columns: dict[str, str]) -> None:
        self.cells = cells
        self.columns = columns

    def __call__(self, target: str) -> str | None:
        column = self.columns.get(target)
        value = self.cells.get(column) if column else None
        return value.strip() if value and value.strip() else None

    def column(self, target: str) -> str:
        return self.columns.get(target, target)

    def date(self, target: str) -> date | None:
        text = self(target)
        if text is None:
            return None
        parsed = parse_date(text)
        if parsed is None:
            raise RowError(self.column(target), f"{text!r} is not a date (use dd.mm.yyyy)")
        return parsed

    def integer(self, target: str) -> int | None:
        value = self.decimal(target)
        if value is None:
            return None
        if value != value.to_integral_value():
            raise RowError(self.column(target), f"{value} is not a whole number")
        return int(value)

    def decimal(self, target: str) -> Decimal | None:
        text = self(target)
        if text is None:
            return None
        try:
            value = Decimal(text.replace(",", ".").replace(" ", ""))
        except InvalidOperation:
            raise RowError(self.column(target), f"{text!r} is not a number") from None
        if not value.is_finite() or value < 0:
            raise RowError(self.column(target), f"{text!r} is not a positive number")
        return value

    def real(self, target: str) -> float | None:
        text = self(target)
        if text is None:
            return None
        try:
            return float(text.replace(",", "."))
        except ValueError:
            raise RowError(self.column(target), f"{text!r} is not a coordinate") from None


def parse_date(text: str) -> date | None:
    """A register date: 15.03.2024, 15/03/2024, 2024-03-15 (a time part is ignored)."""
    head = text.strip().split(" ")[0].split("T")[0]
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(head, pattern).date()
        except ValueError:
            continue
    return None


def _reconcile_date(
    issued: date | None, suffix: str | None, columns: dict[str, str], get: _Getter
) -> date | None:
    """The date after the slash of "123/15.03.2024" must agree with the date column."""
    if suffix is None or _YEAR.match(suffix):
        if suffix and issued and str(issued.year) != suffix:
            raise RowError(columns["number"], f"year {suffix} differs from the date {issued}")
        return issued
    from_number = parse_date(suffix)
    if from_number is None:
        raise RowError(columns["number"], f"{get('number')!r}: {suffix!r} is not a date")
    if issued is not None and issued != from_number:
        raise RowError(
            columns["issued_on"],
            f"{issued.strftime('%d.%m.%Y')} differs from the date in the act number "
            f"{get('number')!r}",
        )
    return from_number


def _kind(get: _Getter) -> str:
    text = get("kind")
    if text is None:
        raise RowError(get.column("kind"), "the act type (CU, AC, AD) is missing; or pass --kind")
    kind = KINDS.get(fold(text).rstrip("."))
    if kind is None:
        raise RowError(get.column("kind"), f"{text!r} is not CU, AC or AD")
    return kind


def _status(get: _Getter) -> str:
    text = get("status")
    if text is None:
        return "issued"
    status = STATUSES.get(fold(text))
    if status is None:
        known = ", ".join(sorted(STATUSES))
        raise RowError(get.column("status"), f"{text!r} is not a known status ({known})")
    return status


def _check_uat(get: _Getter, settings: Settings) -> None:
    text = get("uat_siruta")
    if text is None:
        return
    if not text.isdigit() or int(text) != settings.uat_siruta:
        raise RowError(
            get.column("uat_siruta"),
            f"the act belongs to UAT {text}, not to {settings.uat_name} ({settings.uat_siruta})",
        )
