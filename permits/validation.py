"""Location validation for clerks: a proposed act checked rule by rule.

For the imobile and/or the proposed built footprint of a CU, AC or AD, each rule gets
``pass``, ``warning`` or ``fail`` with the reason: the parcels exist on the date, lie in
the UAT and the intravilan, which zones govern the footprint and in what share, whether
the intended use is allowed there, the resulting POT and CUT (existing buildings that
stay plus the proposal, Law 350/2001 Annex 2) against the UTR maxima, the height, the
restrictions with their legal source, and for an AC/AD a CU valid on the date. It
reuses the location check's single spatial statement (``permits.location``); existing
buildings and the certificate are one query each.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Connection

from gis_core.errors import InvalidParameter
from permits.location import LocationContext, SpatialFacts, spatial_facts
from permits.location_request import (
    Limits,
    LocationQuery,
    RequestedNumber,
    parse_as_of,
    parse_geometry,
    parse_numbers,
    parse_request_crs,
)
from permits.location_rules import MARGINAL_SHARE, classify_use, inside_label
from permits.public import valid_certificate_for

KINDS = ("CU", "AC", "AD")
FIELDS = frozenset(
    {"kind", "cadastral_numbers", "footprint", "crs", "on_date", "intended_use", "proposed"}
)
PROPOSED_FIELDS = (
    "built_area_m2",
    "gross_floor_area_m2",
    "height_m",
    "levels",
    "demolished_built_area_m2",
    "demolished_floor_area_m2",
)
MAX_FIGURE = 10_000_000.0


@dataclass(frozen=True)
class Proposal:
    """What the applicant proposes to build (all optional; missing figures are skipped)."""

    built_area_m2: float | None = None
    gross_floor_area_m2: float | None = None
    height_m: float | None = None
    levels: int | None = None
    demolished_built_area_m2: float = 0.0
    demolished_floor_area_m2: float = 0.0


@dataclass(frozen=True)
class ProposedAct:
    """A checked validation request."""

    kind: str
    on_date: date
    numbers: tuple[RequestedNumber, ...] = ()
    footprint: BaseGeometry | None = None  # storage CRS
    intended_use: str | None = None
    proposal: Proposal = field(default_factory=Proposal)


@dataclass
class Report:
    checks: list[dict[str, Any]] = field(default_factory=list)

    def add(self, rule: str, result: str, reason: str, **details: Any) -> None:
        item: dict[str, Any] = {"rule": rule, "result": result, "reason": reason}
        item.update({k: v for k, v in details.items() if v is not None})
        self.checks.append(item)

    @property
    def outcome(self) -> str:
        results = {c["result"] for c in self.checks}
        return "fail" if "fail" in results else "warning" if "warning" in results else "pass"


def parse_proposed_act(payload: Any, limits: Limits) -> ProposedAct:
    """Check a validation request; each problem is a 400 naming its field."""
    if not isinstance(payload, dict):
        raise InvalidParameter("the request body must be a JSON object", locator="body")
    unknown = sorted(set(payload) - FIELDS)
    if unknown:
        raise InvalidParameter(f"unknown field {unknown[0]!r}", locator=str(unknown[0]))
    kind = payload.get("kind", "AC")
    if kind not in KINDS:
        raise InvalidParameter(f"kind must be one of {', '.join(KINDS)}", locator="kind")
    numbers: tuple[RequestedNumber, ...] = ()
    if payload.get("cadastral_numbers") is not None:
        numbers = parse_numbers(payload["cadastral_numbers"], limits.max_numbers)
    footprint = None
    if payload.get("footprint") is not None:
        srid = parse_request_crs(payload.get("crs"), limits)
        footprint = _polygon(payload["footprint"], srid, limits)
    elif payload.get("crs") is not None:
        raise InvalidParameter("crs only applies to footprint", locator="crs")
    if not numbers and footprint is None:
        raise InvalidParameter(
            "send cadastral_numbers, a footprint, or both", locator="cadastral_numbers"
        )
    use = payload.get("intended_use")
    if use is not None and (not isinstance(use, str) or len(use) > 300):
        raise InvalidParameter(
            "intended_use must be text of at most 300 characters", locator="intended_use"
        )
    return ProposedAct(
        kind=kind,
        on_date=parse_as_of(payload.get("on_date"), "on_date") or datetime.now(UTC).date(),
        numbers=numbers,
        footprint=footprint,
        intended_use=(use or "").strip() or None,
        proposal=_proposal(payload.get("proposed")),
    )


def _polygon(value: Any, srid: int, limits: Limits) -> BaseGeometry:
    if isinstance(value, dict) and value.get("type") == "Point":
        raise InvalidParameter("footprint must be a Polygon or MultiPolygon", locator="footprint")
    try:
        return parse_geometry(value, srid, limits)
    except InvalidParameter as exc:
        raise type(exc)(exc.message.replace("geometry", "footprint"), locator="footprint") from None


def _proposal(value: Any) -> Proposal:
    if value is None:
        return Proposal()
    if not isinstance(value, dict):
        raise InvalidParameter("proposed must be an object", locator="proposed")
    unknown = sorted(set(value) - set(PROPOSED_FIELDS))
    if unknown:
        where = f"proposed.{unknown[0]}"
        raise InvalidParameter(f"unknown field {where}", locator=where)
    figures: dict[str, Any] = {}
    for name in PROPOSED_FIELDS:
        figure = value.get(name)
        if figure is None:
            continue
        where = f"proposed.{name}"
        if isinstance(figure, bool) or not isinstance(figure, int | float):
            raise InvalidParameter(f"{where} must be a number", locator=where)
        if not 0 <= float(figure) <= MAX_FIGURE:
            raise InvalidParameter(
                f"{where} must lie between 0 and {MAX_FIGURE:,.0f}", locator=where
            )
        if name == "levels" and not float(figure).is_integer():
            raise InvalidParameter(f"{where} must be a whole number", locator=where)
        figures[name] = int(figure) if name == "levels" else float(figure)
    return replace(Proposal(), **figures)


_BUILDINGS = sa.text(
    """
    SELECT coalesce(sum(coalesce(b.footprint_area, ST_Area(b.geom))), 0) AS built,
           coalesce(sum(coalesce(b.floor_area,
                                 coalesce(b.footprint_area, ST_Area(b.geom))
                                 * coalesce(b.levels, 1))), 0) AS floor,
           count(*) AS buildings
    FROM cadastre.building b
    WHERE b.uat_siruta = :uat AND b.cadastral_number = ANY(CAST(:numbers AS text[]))
      AND tstzrange(b.valid_from, b.valid_to, '[)') @> CAST(:t AS timestamptz)
    """
)


def validate_location(conn: Connection, act: ProposedAct, ctx: LocationContext) -> dict[str, Any]:
    """The clerk's report: one entry per rule, and the overall outcome."""
    report = Report()
    base = LocationQuery(as_of=act.on_date, purpose=act.intended_use)
    by_number = (
        spatial_facts(conn, replace(base, numbers=act.numbers), ctx) if act.numbers else None
    )
    by_footprint = (
        spatial_facts(conn, replace(base, geometry=act.footprint), ctx)
        if act.footprint is not None
        else None
    )
    _check_parcels(report, act, by_number, by_footprint)
    site = by_footprint or by_number
    assert site is not None
    parcels = (by_number or by_footprint or site).parcels
    _check_territory(report, act, site)
    governing = _check_zones(report, site)
    _check_use(report, act, governing)
    figures = _check_intensity(report, conn, act, ctx, parcels, governing)
    _check_restrictions(report, site)
    certificate = _check_certificate(report, conn, act, parcels)
    return {
        "outcome": report.outcome,
        "kind": act.kind,
        "on_date": act.on_date.isoformat(),
        "checks": report.checks,
        "figures": figures,
        "zones": [_zone_summary(z) for z in site.doc["zones"]],
        "certificate": certificate,
    }


def _check_parcels(
    report: Report,
    act: ProposedAct,
    by_number: SpatialFacts | None,
    by_footprint: SpatialFacts | None,
) -> None:
    day = act.on_date.isoformat()
    if by_number is not None:
        missing = [m["cadastral_number"] for m in by_number.doc["missing"]]
        if missing:
            report.add("parcels_exist", "fail", f"no parcel valid on {day}: {', '.join(missing)}")
        else:
            numbers = ", ".join(p["cadastral_number"] for p in by_number.parcels)
            report.add("parcels_exist", "pass", f"all parcels exist on {day}: {numbers}")
        groups = by_number.doc.get("groups")
        if len(by_number.parcels) > 1 and groups != 1:
            report.add("parcels_contiguous", "warning", "the parcels do not touch each other")
    if by_footprint is None:
        return
    under = {p["cadastral_number"] for p in by_footprint.parcels}
    if by_number is None:
        result = "pass" if under else "warning"
        text = (
            f"the footprint lies on {', '.join(sorted(under))}"
            if under
            else ("no recorded parcel under the footprint")
        )
        report.add("parcels_exist", result, text)
        return
    named = {p["cadastral_number"] for p in by_number.parcels}
    foreign = sorted(under - named)
    if foreign:
        report.add(
            "footprint_on_parcels",
            "fail",
            f"the footprint extends onto parcels not in the act: {', '.join(foreign)}",
        )
    else:
        report.add("footprint_on_parcels", "pass", "the footprint lies on the act's parcels")


def _check_territory(report: Report, act: ProposedAct, site: SpatialFacts) -> None:
    uat = inside_label(site.doc.get("uat_share")) if site.doc.get("uat_known") else "unknown"
    if uat == "inside":
        report.add("inside_uat", "pass", "inside the UAT")
    else:
        report.add(
            "inside_uat",
            "fail",
            f"the location is {uat} the UAT (share {site.doc.get('uat_share')})",
        )
    intra = inside_label(site.doc.get("intravilan_share"))
    strict = act.kind in ("AC",)
    if intra == "inside":
        report.add("inside_intravilan", "pass", "inside the intravilan")
    elif intra == "unknown":
        report.add("inside_intravilan", "warning", "no intravilan is recorded for the date")
    else:
        result = "fail" if strict and intra == "outside" else "warning"
        report.add(
            "inside_intravilan",
            result,
            f"the location is {'partly ' if intra == 'partly' else ''}outside the intravilan;"
            " building permits are, as a rule, issued inside it",
            share=site.doc.get("intravilan_share"),
        )


def _check_zones(report: Report, site: SpatialFacts) -> list[dict[str, Any]]:
    zones = site.doc["zones"]
    governing = [z for z in zones if z["share"] and float(z["share"]) >= MARGINAL_SHARE]
    if not governing:
        report.add("zones", "fail", "no zone of a plan in force covers the location")
        return []
    shares = ", ".join(
        f"{z['utr_code']} {float(z['share']):.1%} ({z['plan']['title']})" for z in governing
    )
    result = "pass" if len(governing) == 1 else "warning"
    report.add("zones", result, f"governed by {shares}")
    return governing


def _check_use(report: Report, act: ProposedAct, governing: list[dict[str, Any]]) -> None:
    if not act.intended_use:
        report.add("use", "warning", "no intended use given; the use was not checked")
        return
    results = {"allowed": "pass", "conditional": "warning", "forbidden": "fail"}
    for zone in governing:
        rules = zone["rules"]
        match = classify_use(
            act.intended_use,
            rules["allowed_uses"],
            rules["conditional_uses"],
            rules["forbidden_uses"],
        )
        result = results.get(match.category, "warning")
        text = {
            "allowed": f"allowed in {zone['utr_code']} ({match.matched})",
            "conditional": f"allowed with conditions in {zone['utr_code']} ({match.matched})",
            "forbidden": f"forbidden in {zone['utr_code']} ({match.matched})",
            "ambiguous": f"reads like several uses in {zone['utr_code']} ({match.matched})",
            "unknown": f"matches no use listed for {zone['utr_code']}; read the regulation",
        }[match.category]
        report.add("use", result, f"'{act.intended_use}': {text}", zone=zone["utr_code"])


def _strictest(governing: list[dict[str, Any]], name: str) -> tuple[float | None, str | None]:
    values = [
        (float(z["rules"][name]), z["utr_code"])
        for z in governing
        if z["rules"].get(name) is not None
    ]
    if not values:
        return None, None
    value, code = min(values)
    return value, code


def _check_intensity(
    report: Report,
    conn: Connection,
    act: ProposedAct,
    ctx: LocationContext,
    parcels: list[dict[str, Any]],
    governing: list[dict[str, Any]],
) -> dict[str, Any]:
    """POT, CUT and height against the strictest maximum of the governing zones."""
    plot = sum(float(p["measured_area"] or 0) for p in parcels)
    existing = _existing_buildings(conn, act, ctx, parcels)
    proposal = act.proposal
    built = max(0.0, existing["built"] - proposal.demolished_built_area_m2)
    floor = max(0.0, existing["floor"] - proposal.demolished_floor_area_m2)
    new_built = proposal.built_area_m2
    if new_built is None and act.footprint is not None:
        new_built = float(act.footprint.area)
    figures: dict[str, Any] = {
        "plot_area_m2": round(plot, 2),
        "existing_buildings": existing["buildings"],
        "existing_built_m2": round(built, 2),
        "existing_floor_m2": round(floor, 2),
        "proposed_built_m2": new_built,
        "proposed_floor_m2": proposal.gross_floor_area_m2,
    }
    pot_max, pot_zone = _strictest(governing, "pot_max")
    cut_max, cut_zone = _strictest(governing, "cut_max")
    height_max, height_zone = _strictest(governing, "height_max_m")
    figures.update(pot_max=pot_max, cut_max=cut_max, height_max_m=height_max)
    if plot <= 0:
        report.add("pot", "warning", "the plot area is unknown; POT and CUT were not computed")
    else:
        if new_built is not None:
            pot = round((built + new_built) / plot * 100, 2)
            figures["pot"] = pot
            _compare(report, "pot", pot, pot_max, pot_zone, "%")
        if proposal.gross_floor_area_m2 is not None:
            cut = round((floor + proposal.gross_floor_area_m2) / plot, 2)
            figures["cut"] = cut
            _compare(report, "cut", cut, cut_max, cut_zone, "")
    if proposal.height_m is not None:
        _compare(report, "height", proposal.height_m, height_max, height_zone, " m")
    _check_plot_size(report, plot, governing, act)
    return figures


def _compare(
    report: Report, rule: str, value: float, maximum: float | None, zone: str | None, unit: str
) -> None:
    label = rule.upper() if rule != "height" else "height"
    if maximum is None:
        report.add(rule, "warning", f"{label} {value:g}{unit}: no maximum recorded for the zone")
    elif value > maximum:
        report.add(
            rule, "fail", f"{label} {value:g}{unit} exceeds the maximum {maximum:g}{unit} of {zone}"
        )
    else:
        report.add(
            rule, "pass", f"{label} {value:g}{unit} within the maximum {maximum:g}{unit} of {zone}"
        )


def _check_plot_size(
    report: Report, plot: float, governing: list[dict[str, Any]], act: ProposedAct
) -> None:
    if act.kind != "AC" or plot <= 0:
        return
    values = [
        (float(z["rules"]["min_plot_area"]), z["utr_code"])
        for z in governing
        if z["rules"].get("min_plot_area") is not None
    ]
    if not values:
        return
    minimum, code = max(values)
    if plot < minimum:
        report.add(
            "plot_size",
            "warning",
            f"the plot ({plot:g} m²) is smaller than {minimum:g} m² ({code})",
        )
    else:
        report.add("plot_size", "pass", f"the plot ({plot:g} m²) meets {minimum:g} m² ({code})")


def _existing_buildings(
    conn: Connection, act: ProposedAct, ctx: LocationContext, parcels: list[dict[str, Any]]
) -> dict[str, Any]:
    numbers = [p["cadastral_number"] for p in parcels]
    if not numbers:
        return {"built": 0.0, "floor": 0.0, "buildings": 0}
    moment = LocationQuery(as_of=act.on_date).moment()
    row = conn.execute(_BUILDINGS, {"uat": ctx.uat_siruta, "numbers": numbers, "t": moment}).one()
    return {"built": float(row.built), "floor": float(row.floor), "buildings": int(row.buildings)}


def _check_restrictions(report: Report, site: SpatialFacts) -> None:
    touching = [r for r in site.doc["restrictions"] if r["intersects"]]
    if not touching:
        report.add("restrictions", "pass", "no restriction intersects the location")
    for item in touching:
        source = item["legal_source"] or "no legal source recorded"
        report.add(
            "restrictions",
            "warning",
            f"{item['name']} ({item['kind']}; {source}): the act needs the matching approvals",
            legal_source=item["legal_source"],
        )


def _check_certificate(
    report: Report, conn: Connection, act: ProposedAct, parcels: list[dict[str, Any]]
) -> dict[str, Any] | None:
    if act.kind == "CU":
        return None
    numbers = [p["cadastral_number"] for p in parcels]
    certificate = valid_certificate_for(conn, numbers, act.on_date) if numbers else None
    if certificate is None:
        report.add(
            "valid_certificate",
            "fail",
            f"no urbanism certificate valid on {act.on_date.isoformat()} covers "
            + (", ".join(numbers) or "the location"),
        )
        return None
    report.add(
        "valid_certificate",
        "pass",
        f"CU {certificate['number']} of {certificate['issued_on']} valid until "
        f"{certificate['valid_until']}",
    )
    return {k: certificate.get(k) for k in ("number", "issued_on", "valid_until", "status")}


def _zone_summary(zone: dict[str, Any]) -> dict[str, Any]:
    return {
        "utr_code": zone["utr_code"],
        "plan": zone["plan"]["title"],
        "share": zone["share"],
        "rules": zone["rules"],
    }
