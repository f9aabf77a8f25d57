"""The life of an act as clerks drive it: register, issue, edit, extend, cancel, complete.

Every change is one transaction that also writes the audit log (who, when, before,
after). Changes carry the ``version`` the clerk last saw: the row is locked, the version
compared, and a stale save is a ``Conflict`` (HTTP 409) naming both versions, so two
clerks editing the same act never silently overwrite each other.

Rules enforced here (values from settings, see ``permits.validity``): validity within
the legal range at issue; one extension, in time, of bounded length; an AC/AD needs a
CU valid on its issue date for the same imobile; statuses move only forward
(requested → issued → extended → completed; any open act may be cancelled).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import wraps
from typing import Any

import numpy as np
import orjson
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_core.audit import record_change
from gis_core.crs.transform import parse_crs, transform_geometries
from gis_core.errors import Conflict, InvalidInput, NotFound
from gis_core.settings import Settings
from gis_core.twins import fill_missing_twins
from permits.linking import link_acts
from permits.numbers import parse_act_number, parse_cited_numbers
from permits.public import valid_certificate_for
from permits.validity import CERTIFICATE, check_validity_months, plan_extension, valid_until

KINDS = ("CU", "AC", "AD")
TRANSITIONS: dict[str, frozenset[str]] = {
    "requested": frozenset({"issued", "cancelled"}),
    "issued": frozenset({"completed", "cancelled", "expired"}),
    "extended": frozenset({"completed", "cancelled", "expired"}),
    "expired": frozenset({"completed"}),
    "cancelled": frozenset(),
    "completed": frozenset(),
}
EDITABLE = (
    "purpose",
    "address",
    "cadastral_numbers",
    "land_book",
    "requested_on",
    "issued_on",
    "validity_months",
    "status",
    "basis_act_id",
    "footprint_area",
    "floor_area",
    "height_m",
    "levels",
    "location",
    "footprint",
    "crs",
    "applicant",
)
CREATE_ONLY = ("kind", "number")
_COLUMN_OF = {
    "address": "address_text",
    "cadastral_numbers": "cited_numbers",
    "land_book": "land_book_text",
    "footprint_area": "proposed_footprint_area",
    "floor_area": "proposed_floor_area",
    "height_m": "proposed_height_m",
    "levels": "proposed_levels",
}
_APPLICANT_FIELDS = ("name", "kind", "national_id", "address", "phone", "email")
_SELECT = """
    SELECT a.id, a.uat_siruta, a.kind, a.number, a.issued_on, a.register_key, a.status,
           a.requested_on, a.purpose, a.address_text, a.cited_numbers, a.land_book_text,
           a.validity_months, a.valid_until, a.extension_months, a.extension_requested_on,
           a.extended_until, a.basis_act_id, a.proposed_footprint_area,
           a.proposed_floor_area, a.proposed_height_m, a.proposed_levels, a.link_state,
           a.version, a.created_at, a.updated_at,
           ST_AsGeoJSON(COALESCE(a.location_etrs89, ST_Transform(a.location, 4326)), 7, 0)::json
               AS location,
           ST_AsGeoJSON(COALESCE(a.footprint_etrs89, ST_Transform(a.footprint, 4326)), 7, 0)::json
               AS footprint
    FROM permits.act a
"""


def _atomic(function: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """Run an operation in a SAVEPOINT: a refused change leaves no partial rows behind,
    whatever the caller does with its transaction afterwards."""

    @wraps(function)
    def wrapper(conn: Connection, *args: Any, **kwargs: Any) -> dict[str, Any]:
        with conn.begin_nested():
            return function(conn, *args, **kwargs)

    return wrapper


# -- reading ---------------------------------------------------------------------------
def get_act(conn: Connection, act_id: int, *, personal: bool, lock: bool = False) -> dict[str, Any]:
    """The act with its links; the applicant only when ``personal`` (clerk, admin)."""
    suffix = " WHERE a.id = :id" + (" FOR UPDATE OF a" if lock else "")
    row = conn.execute(sa.text(_SELECT + suffix), {"id": act_id}).mappings().one_or_none()
    if row is None:
        raise NotFound(f"act {act_id} does not exist", locator="act")
    act = dict(row)
    act["links"] = [
        dict(r)
        for r in conn.execute(
            sa.text(
                "SELECT parcel_id, cadastral_number, is_primary, method, confidence "
                "FROM permits.act_parcel WHERE act_id = :id ORDER BY is_primary DESC, id"
            ),
            {"id": act_id},
        ).mappings()
    ]
    if personal:
        applicant = (
            conn.execute(
                sa.text(
                    "SELECT kind, name, national_id, address_text AS address, phone, email "
                    "FROM protected.act_applicant WHERE act_id = :id"
                ),
                {"id": act_id},
            )
            .mappings()
            .one_or_none()
        )
        act["applicant"] = dict(applicant) if applicant else None
    return act


# -- creating --------------------------------------------------------------------------
def _create_act(
    conn: Connection, settings: Settings, data: Mapping[str, Any], *, actor: str
) -> dict[str, Any]:
    """Register a new act (requested or issued), link it and audit it."""
    _refuse_unknown(data, (*CREATE_ONLY, *EDITABLE))
    kind = str(data.get("kind", "")).upper()
    if kind not in KINDS:
        raise InvalidInput(f"kind: must be one of {', '.join(KINDS)}", locator="kind")
    number, suffix = parse_act_number(data.get("number"), field="number")
    if suffix:
        raise InvalidInput(
            "number: give the date in issued_on, not after a slash", locator="number"
        )
    values = _values(settings, kind, data)
    status = values.pop("status", None) or ("issued" if values.get("issued_on") else "requested")
    if status not in ("requested", "issued"):
        raise InvalidInput("status: a new act is requested or issued", locator="status")
    values["status"] = status
    year = (values.get("issued_on") or values.get("requested_on") or date.today()).year
    key = f"{number}/{year}"
    taken = conn.execute(
        sa.text(
            "SELECT id FROM permits.act WHERE uat_siruta = :uat AND kind = :kind "
            "AND register_key = :key"
        ),
        {"uat": settings.uat_siruta, "kind": kind, "key": key},
    ).scalar()
    if taken is not None:
        raise Conflict(
            f"number: {kind} {key} is already registered (act {taken})", locator="number"
        )
    applicant = values.pop("applicant", None)
    act_id = _insert(conn, settings, kind, number, key, values)
    if applicant:
        _write_applicant(conn, act_id, applicant)
    _check_issue_rules(conn, settings, act_id)
    after = get_act(conn, act_id, personal=True)
    record_change(
        conn, actor=actor, action="insert", table="permits.act", row_id=act_id, after=after
    )
    return after


def _insert(
    conn: Connection,
    settings: Settings,
    kind: str,
    number: str,
    key: str,
    values: dict[str, Any],
) -> int:
    geometry: dict[str, Any] = {
        name: values.pop(name) for name in ("location", "footprint") if name in values
    }
    columns = ["uat_siruta", "kind", "number", "register_key", *values]
    params = {
        "uat_siruta": settings.uat_siruta,
        "kind": kind,
        "number": number,
        "register_key": key,
    }
    params.update(values)
    names = [*columns, *geometry]
    placeholders = [f":{c}" for c in columns] + [f"ST_GeomFromEWKB(:{g})" for g in geometry]
    params.update(geometry)
    act_id: int = conn.execute(
        sa.text(
            f"INSERT INTO permits.act ({', '.join(names)}) "  # noqa: S608  (names from EDITABLE)
            f"VALUES ({', '.join(placeholders)}) RETURNING id"
        ),
        params,
    ).scalar_one()
    if geometry:
        fill_missing_twins(conn, "permits.act", settings.storage_srid, ids=[act_id])
    return act_id


# -- changing --------------------------------------------------------------------------
def _update_act(
    conn: Connection,
    settings: Settings,
    act_id: int,
    version: int,
    changes: Mapping[str, Any],
    *,
    actor: str,
) -> dict[str, Any]:
    """Apply a clerk's edit to the version they saw; a stale version is a conflict."""
    _refuse_unknown(changes, EDITABLE)
    before = _lock(conn, act_id, version)
    values = _values(settings, before["kind"], changes, current=before)
    new_status = values.get("status")
    if new_status and new_status != before["status"]:
        if new_status not in TRANSITIONS[before["status"]]:
            raise InvalidInput(
                f"status: a {before['status']} act cannot become {new_status}", locator="status"
            )
        if new_status == "cancelled":
            raise InvalidInput("status: cancel with the cancel action (it needs a reason)")
    applicant = values.pop("applicant", None)
    _apply(conn, act_id, values)
    if "location" in values or "footprint" in values:
        # The trigger of 0006 cleared the twins of the geometries that changed.
        fill_missing_twins(conn, "permits.act", settings.storage_srid, ids=[act_id])
    if applicant:
        _write_applicant(conn, act_id, applicant)
    if "cited_numbers" in values or "location" in values or "footprint" in values:
        link_acts(conn, settings, act_ids=[act_id])
    touched = {"status", "issued_on", "cited_numbers", "basis_act_id"} & set(values)
    if (values.get("status") or before["status"]) == "issued" and touched:
        _check_issue_rules(conn, settings, act_id)
    return _audited(conn, act_id, before, actor, "edit")


def _extend_act(
    conn: Connection,
    settings: Settings,
    act_id: int,
    version: int,
    *,
    months: int,
    requested_on: date,
    actor: str,
) -> dict[str, Any]:
    """The one extension the law allows, asked in time; sets the new end of validity."""
    before = _lock(conn, act_id, version)
    if before["status"] not in ("issued", "extended") or before["valid_until"] is None:
        raise InvalidInput(
            f"status: only an issued act with a validity can be extended "
            f"(act {act_id} is {before['status']})",
            locator="status",
        )
    plan = plan_extension(
        settings,
        kind=before["kind"],
        issued_on=before["issued_on"],
        expires=before["valid_until"],
        already_extended=before["extended_until"] is not None,
        months=months,
        requested_on=requested_on,
    )
    _apply(
        conn,
        act_id,
        {
            "status": "extended",
            "extension_months": plan.months,
            "extension_requested_on": plan.requested_on,
            "extended_until": plan.new_valid_until,
        },
    )
    return _audited(conn, act_id, before, actor, f"extended by {months} months")


def _cancel_act(
    conn: Connection, act_id: int, version: int, *, reason: str, actor: str
) -> dict[str, Any]:
    """Cancel (annul) an act; the reason goes to the audit log."""
    if not reason or not reason.strip():
        raise InvalidInput("reason: say why the act is cancelled", locator="reason")
    before = _lock(conn, act_id, version)
    if "cancelled" not in TRANSITIONS[before["status"]]:
        raise InvalidInput(
            f"status: a {before['status']} act cannot be cancelled", locator="status"
        )
    _apply(conn, act_id, {"status": "cancelled"})
    return _audited(conn, act_id, before, actor, reason.strip())


def _lock(conn: Connection, act_id: int, version: int) -> dict[str, Any]:
    """Lock the row and compare versions: the heart of optimistic locking."""
    before = get_act(conn, act_id, personal=True, lock=True)
    if int(version) != before["version"]:
        raise Conflict(
            f"act {act_id} was changed by someone else (now version {before['version']}, "
            f"you edited version {version}); reload it and apply your change again",
            locator="version",
        )
    return before


def _apply(conn: Connection, act_id: int, values: dict[str, Any]) -> None:
    sets = ["version = version + 1", "updated_at = now()"]
    params: dict[str, Any] = {"id": act_id}
    for name, value in values.items():
        if name in ("location", "footprint"):
            sets.append(f"{name} = ST_GeomFromEWKB(:{name})")
        else:
            sets.append(f"{name} = :{name}")
        params[name] = value
    conn.execute(
        sa.text(f"UPDATE permits.act SET {', '.join(sets)} WHERE id = :id"),  # noqa: S608
        params,
    )


def _audited(
    conn: Connection, act_id: int, before: dict[str, Any], actor: str, reason: str
) -> dict[str, Any]:
    after = get_act(conn, act_id, personal=True)
    record_change(
        conn,
        actor=actor,
        action="update",
        table="permits.act",
        row_id=act_id,
        before=before,
        after=after,
        reason=reason,
    )
    return after


# -- values and rules ------------------------------------------------------------------
def _refuse_unknown(data: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(data) - set(allowed) - {"version"})
    if unknown:
        raise InvalidInput(
            f"{unknown[0]}: unknown field; fields are {', '.join(allowed)}", locator=unknown[0]
        )


def _values(
    settings: Settings,
    kind: str,
    data: Mapping[str, Any],
    current: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Column values from request fields, each parsed; errors name the field."""
    values: dict[str, Any] = {}
    for name in ("purpose", "address", "land_book"):
        if name in data:
            values[_COLUMN_OF.get(name, name)] = _text(data[name])
    if "cadastral_numbers" in data:
        values["cited_numbers"] = _cited(data["cadastral_numbers"])
    for name in ("requested_on", "issued_on"):
        if name in data:
            values[name] = _date(data[name], name)
    for name in ("footprint_area", "floor_area", "height_m"):
        if name in data:
            values[_COLUMN_OF[name]] = _decimal(data[name], name)
    for name in ("levels", "validity_months", "basis_act_id"):
        if name in data:
            values[_COLUMN_OF.get(name, name)] = _integer(data[name], name)
    if "status" in data:
        values["status"] = str(data["status"])
        if values["status"] not in TRANSITIONS:
            raise InvalidInput(f"status: unknown status {data['status']!r}", locator="status")
    values.update(_geometries(settings, data))
    if "applicant" in data:
        values["applicant"] = _applicant(data["applicant"])
    _validity(settings, kind, values, current or {})
    return values


def _validity(
    settings: Settings, kind: str, values: dict[str, Any], current: Mapping[str, Any]
) -> None:
    """Issued acts need a date and a validity in range; the end date follows from them."""
    issued = values.get("issued_on", current.get("issued_on"))
    months = values.get("validity_months", current.get("validity_months"))
    status = values.get("status", current.get("status"))
    if months is not None:
        check_validity_months(settings, kind, months, field="validity_months")
    if status == "issued" or (status is None and issued is not None):
        if issued is None:
            raise InvalidInput("issued_on: an issued act needs its date", locator="issued_on")
        if months is None:
            raise InvalidInput(
                "validity_months: an issued act needs its validity", locator="validity_months"
            )
    if issued is not None and months is not None:
        values["valid_until"] = valid_until(issued, months)


def _check_issue_rules(conn: Connection, settings: Settings, act_id: int) -> None:
    """Numbers must be of this UAT; an AC/AD needs a CU valid on its issue date."""
    act = get_act(conn, act_id, personal=False)
    numbers = [c.number for c in parse_cited_numbers(act["cited_numbers"])]
    _refuse_other_uat(conn, settings, numbers)
    if not act["links"] and act["link_state"] == "pending":
        link_acts(conn, settings, act_ids=[act_id])
        act = get_act(conn, act_id, personal=False)
    if act["kind"] == CERTIFICATE or act["status"] != "issued":
        return
    linked = [link["cadastral_number"] for link in act["links"]] or numbers
    day = act["issued_on"]
    basis = act["basis_act_id"]
    if basis is not None:
        found = valid_certificate_for(conn, linked, day)
        if found is None or found["id"] != basis:
            ok = _certificate_covers(conn, basis, linked, day)
            if not ok:
                raise InvalidInput(
                    f"basis_act_id: act {basis} is not a CU valid on {day.isoformat()} "
                    f"for {', '.join(linked) or 'these imobile'}",
                    locator="basis_act_id",
                )
        return
    found = valid_certificate_for(conn, linked, day)
    if found is None:
        raise InvalidInput(
            f"basis_act_id: an {act['kind']} needs a certificate of urbanism valid on "
            f"{day.isoformat()} for {', '.join(linked) or 'its imobile'}; none is registered",
            locator="basis_act_id",
        )
    conn.execute(
        sa.text("UPDATE permits.act SET basis_act_id = :b WHERE id = :id"),
        {"b": found["id"], "id": act_id},
    )


def _certificate_covers(conn: Connection, cu_id: int, numbers: list[str], day: date) -> bool:
    row = conn.execute(
        sa.text(
            """
            SELECT count(DISTINCT l.cadastral_number) FROM permits.act a
            JOIN permits.act_parcel l ON l.act_id = a.id
            WHERE a.id = :id AND a.kind = 'CU' AND a.status IN ('issued', 'extended')
              AND a.issued_on <= :day AND COALESCE(a.extended_until, a.valid_until) >= :day
              AND l.cadastral_number = ANY(CAST(:numbers AS text[]))
            """
        ),
        {"id": cu_id, "day": day, "numbers": numbers},
    ).scalar_one()
    return bool(numbers) and int(row) == len(set(numbers))


def _refuse_other_uat(conn: Connection, settings: Settings, numbers: list[str]) -> None:
    if not numbers:
        return
    row = conn.execute(
        sa.text(
            """
            SELECT n, min(p.uat_siruta) FROM unnest(CAST(:numbers AS text[])) AS n
            JOIN cadastre.parcel p ON p.cadastral_number = n AND p.valid_to IS NULL
            GROUP BY n HAVING bool_and(p.uat_siruta <> :uat) LIMIT 1
            """
        ),
        {"numbers": numbers, "uat": settings.uat_siruta},
    ).one_or_none()
    if row is not None:
        raise InvalidInput(
            f"cadastral_numbers: {row[0]} is an imobil of UAT {row[1]}, not of "
            f"{settings.uat_name} ({settings.uat_siruta})",
            locator="cadastral_numbers",
        )


def _write_applicant(conn: Connection, act_id: int, applicant: dict[str, Any]) -> None:
    conn.execute(
        sa.text(
            """
            INSERT INTO protected.act_applicant
                (act_id, kind, name, national_id, address_text, phone, email)
            VALUES (:act, :kind, :name, :national_id, :address, :phone, :email)
            ON CONFLICT (act_id) DO UPDATE SET kind = EXCLUDED.kind, name = EXCLUDED.name,
                national_id = EXCLUDED.national_id, address_text = EXCLUDED.address_text,
                phone = EXCLUDED.phone, email = EXCLUDED.email
            """
        ),
        {"act": act_id, **applicant},
    )


def _applicant(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not str(value.get("name") or "").strip():
        raise InvalidInput("applicant: an object with at least a name", locator="applicant")
    unknown = sorted(set(value) - set(_APPLICANT_FIELDS))
    if unknown:
        raise InvalidInput(f"applicant.{unknown[0]}: unknown field", locator="applicant")
    kind = str(value.get("kind") or "natural")
    if kind not in ("natural", "legal"):
        raise InvalidInput("applicant.kind: natural or legal", locator="applicant")
    return {
        "kind": kind,
        **{name: _text(value.get(name)) for name in _APPLICANT_FIELDS if name != "kind"},
    }


def _geometries(settings: Settings, data: Mapping[str, Any]) -> dict[str, bytes | None]:
    """GeoJSON site point / site plan (default CRS84) as EWKB in the storage CRS."""
    epsg = parse_crs(str(data.get("crs") or "EPSG:4326"))
    found: dict[str, bytes | None] = {}
    for name, types in (("location", ("Point",)), ("footprint", ("Polygon", "MultiPolygon"))):
        if name not in data:
            continue
        if data[name] is None:
            found[name] = None
            continue
        try:
            geom = shapely.from_geojson(orjson.dumps(data[name]))
        except (shapely.errors.GEOSException, ValueError, TypeError):
            raise InvalidInput(f"{name}: not a GeoJSON geometry", locator=name) from None
        if geom.geom_type not in types or geom.is_empty:
            raise InvalidInput(f"{name}: a {' or '.join(types)} is expected", locator=name)
        if not geom.is_valid:
            raise InvalidInput(f"{name}: {shapely.is_valid_reason(geom)}", locator=name)
        stored = transform_geometries(np.asarray([geom], dtype=object), epsg, settings.storage_srid)
        geom = stored[0]
        if name == "footprint" and geom.geom_type == "Polygon":
            geom = shapely.MultiPolygon([geom])
        found[name] = bytes(
            shapely.to_wkb(shapely.set_srid(geom, settings.storage_srid), include_srid=True)
        )
    return found


def _cited(value: Any) -> str | None:
    text = "; ".join(str(v) for v in value) if isinstance(value, list | tuple) else _text(value)
    parse_cited_numbers(text, field="cadastral_numbers")
    return text or None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _date(value: Any, name: str) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InvalidInput(f"{name}: {value!r} is not a date (YYYY-MM-DD)", locator=name) from None


def _decimal(value: Any, name: str) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise InvalidInput(f"{name}: {value!r} is not a number", locator=name) from None
    if not number.is_finite() or number < 0:
        raise InvalidInput(f"{name}: {value!r} is not a positive number", locator=name)
    return number


def _integer(value: Any, name: str) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not str(value).strip().isdigit():
        raise InvalidInput(f"{name}: {value!r} is not a whole number", locator=name)
    return int(value)


create_act = _atomic(_create_act)
update_act = _atomic(_update_act)
extend_act = _atomic(_extend_act)
cancel_act = _atomic(_cancel_act)
