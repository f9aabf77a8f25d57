"""The location check the e-services portal calls before accepting a CU request.

One call answers: do the parcels exist (on the date asked), are they in this UAT and in
the intravilan, which zones and rules govern them (and in what share), which
restrictions touch them, which acts exist, a summary verdict with its reasons, where the
facts come from, and a link to the web map showing it. Framework-free: a connection and
a checked ``LocationQuery`` in, a JSON-ready dict out. Every fact, the acts included,
comes from one SQL statement (``location_sql``): one round trip per check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from sqlalchemy.engine import Connection

from gis_core.crs import transform_coords
from gis_core.errors import InvalidInput
from permits.location_addresses import resolve_address
from permits.location_request import Limits, LocationQuery, RequestedNumber, point_to_storage
from permits.location_rules import (
    MARGINAL_SHARE,
    classify_use,
    inside_label,
    reason,
    verdict_of,
)
from permits.location_sql import (
    SLIVER_M2,
    fetch_document,
    location_statement,
)

WGS84 = 4326


@dataclass(frozen=True)
class LocationContext:
    """Deployment facts a check needs (from the settings) and where the web map lives."""

    storage_srid: int
    uat_siruta: int
    uat_name: str
    disclaimer: str
    nearby_m: float = 50.0
    map_url: str = "/map"


@dataclass(frozen=True)
class SpatialFacts:
    """The decoded document the location statement returned."""

    doc: dict[str, Any]

    @property
    def parcels(self) -> list[dict[str, Any]]:
        return list(self.doc["parcels"])


def spatial_facts(conn: Connection, query: LocationQuery, ctx: LocationContext) -> SpatialFacts:
    """Run the location statement for ``query`` (one round trip, acts included)."""
    moment = query.moment()
    now = datetime.now(UTC)
    at = moment or now
    params: dict[str, Any] = {
        "uat": ctx.uat_siruta,
        "t": at,
        "day": at.date(),
        "nearby": ctx.nearby_m,
        "with_geometry": query.include_geometry,
        "wkb": None,
        "lon": None,
        "lat": None,
    }
    mode = query.mode
    if mode == "numbers":
        params["numbers"] = [n.number for n in query.numbers]
    elif mode == "ids":
        params["ids"] = list(query.parcel_ids)
    elif mode == "lonlat":
        assert query.lonlat is not None
        params["lon"], params["lat"] = query.lonlat
    else:
        assert query.geometry is not None
        params["wkb"] = _ewkb(query.geometry, ctx.storage_srid)
        params["sliver"] = SLIVER_M2
    if moment is not None:
        params["t"] = moment
    statement = location_statement(mode, moment is not None)
    return SpatialFacts(orjson.loads(fetch_document(conn, statement, params)))


def _ewkb(geom: Any, srid: int) -> bytes:
    import shapely

    return bytes(shapely.to_wkb(shapely.set_srid(geom, srid), include_srid=True))


def check_location(conn: Connection, query: LocationQuery, ctx: LocationContext) -> dict[str, Any]:
    """The whole answer for the portal (see the module docstring)."""
    resolved_address = None
    if query.mode == "address":
        assert query.address is not None
        resolved_address = resolve_address(conn, query.address, ctx.uat_siruta)
        query = _query_for_address(query, resolved_address, ctx)
    facts = spatial_facts(conn, query, ctx)
    if query.mode == "lonlat" and not facts.parcels:
        # Nothing on the twins there: the place itself is the subject, in storage metres.
        query = point_to_storage(query, Limits(storage_srid=ctx.storage_srid))
        facts = spatial_facts(conn, query, ctx)
    doc = facts.doc
    if query.geometry is not None and query.mode != "ids" and not doc["uat_share"]:
        raise InvalidInput(
            f"geometry lies outside the territory of {ctx.uat_name} (UAT {ctx.uat_siruta})",
            locator="geometry",
        )
    return assemble(query, doc, doc["acts"], ctx, resolved_address)


def _query_for_address(
    query: LocationQuery, match: dict[str, Any], ctx: LocationContext
) -> LocationQuery:
    """An address names its parcel; without one, the point where the address stands."""
    from dataclasses import replace

    if match.get("parcel_id") is not None:
        return replace(query, parcel_ids=(int(match["parcel_id"]),))
    if match.get("lon") is None:
        raise InvalidInput(
            f"address {match['address']!r} has neither a parcel nor a position",
            locator="address",
        )
    import shapely

    x, y = transform_coords(WGS84, ctx.storage_srid, [match["lon"]], [match["lat"]])
    return replace(query, geometry=shapely.Point(float(x[0]), float(y[0])))


# -- assembling the answer -------------------------------------------------------------
def assemble(
    query: LocationQuery,
    doc: dict[str, Any],
    acts: list[dict[str, Any]],
    ctx: LocationContext,
    address: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Turn the statement's facts into the documented answer, with verdict and reasons."""
    parcels = [_public_parcel(p) for p in doc["parcels"]]
    not_found = [_not_found(m, query.numbers) for m in doc["missing"]]
    subject = doc["subject"] or {}
    zones = [_zone(z, query.purpose) for z in doc["zones"]]
    restrictions = doc["restrictions"]
    groups = doc.get("groups")
    contiguous = None if len(parcels) < 2 else groups == 1
    uat_share, intra_share = doc.get("uat_share"), doc.get("intravilan_share")
    valid_for = query.as_of or datetime.now(UTC).date()
    answer: dict[str, Any] = {
        "query": _echo(query, address),
        "valid_for": valid_for.isoformat(),
        "uat": {
            "siruta": ctx.uat_siruta,
            "name": ctx.uat_name,
            "inside": inside_label(_round(uat_share)) if doc.get("uat_known") else "unknown",
            "share": _round(uat_share),
        },
        "parcels": parcels,
        "not_found": not_found,
        "contiguous": contiguous,
        "area_m2": subject.get("area"),
        "centroid": _rounded(doc.get("lonlat")) or _centroid(subject, ctx.storage_srid),
        "intravilan": {"inside": inside_label(_round(intra_share)), "share": _round(intra_share)},
        "zones": zones,
        "restrictions": restrictions,
        "acts": [_public_act(a) for a in acts],
    }
    reasons = reasons_for(answer, query)
    answer["verdict"] = verdict_of(reasons)
    answer["reasons"] = reasons
    answer["provenance"] = {
        "valid_for": valid_for.isoformat(),
        "computed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "storage_crs": f"EPSG:{ctx.storage_srid}",
        "data_versions": doc.get("data_versions") or {},
        "import_runs": doc.get("import_runs") or [],
    }
    answer["map_url"] = map_link(ctx.map_url, parcels, answer["centroid"], query.as_of)
    answer["disclaimer"] = ctx.disclaimer
    return answer


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 4)


def _public_parcel(p: dict[str, Any]) -> dict[str, Any]:
    parcel = {
        "cadastral_number": p["cadastral_number"],
        "land_book_number": p["land_book_number"],
        "measured_area": p["measured_area"],
        "legal_area": p["legal_area"],
        "use_category": p["use_category"],
        "intravilan": p["intravilan"],
        "address": p["address"],
        "version_valid_from": p["version_valid_from"],
    }
    if p.get("geometry") is not None:
        parcel["geometry"] = p["geometry"]
    return parcel


def _not_found(missing: dict[str, Any], requested: tuple[RequestedNumber, ...]) -> dict[str, Any]:
    number = missing["cadastral_number"]
    written = next((r.written for r in requested if r.number == number), number)
    history = missing.get("history")
    if history:
        last = history.get("last_valid_to")
        first = history.get("first_valid_from")
        text = f"no version valid on the date asked (recorded from {str(first)[:10]}" + (
            f" to {str(last)[:10]})" if last else ")"
        )
    else:
        text = "no such cadastral number in this UAT"
    return {"cadastral_number": written, "reason": text}


def _zone(z: dict[str, Any], purpose: str | None) -> dict[str, Any]:
    rules = z["rules"]
    zone = dict(z)
    zone["applies"] = bool(z["share"] and float(z["share"]) > 0)
    zone["marginal"] = zone["applies"] and float(z["share"]) < MARGINAL_SHARE
    if purpose:
        match = classify_use(
            purpose, rules["allowed_uses"], rules["conditional_uses"], rules["forbidden_uses"]
        )
        zone["purpose_use"] = {"category": match.category, "matched_use": match.matched}
    return zone


def _public_act(act: dict[str, Any]) -> dict[str, Any]:
    return {
        key: act.get(key)
        for key in (
            "kind",
            "number",
            "issued_on",
            "status",
            "purpose",
            "valid_until",
            "cadastral_numbers",
        )
    }


def _rounded(lonlat: dict[str, float] | None) -> dict[str, float] | None:
    if not lonlat:
        return None
    return {"lon": round(float(lonlat["lon"]), 7), "lat": round(float(lonlat["lat"]), 7)}


def _centroid(subject: dict[str, Any], srid: int) -> dict[str, float] | None:
    if subject.get("x") is None:
        return None
    lon, lat = transform_coords(srid, WGS84, [subject["x"]], [subject["y"]])
    return {"lon": round(float(lon[0]), 7), "lat": round(float(lat[0]), 7)}


def _echo(query: LocationQuery, address: dict[str, Any] | None) -> dict[str, Any]:
    echo: dict[str, Any] = {"as_of": query.as_of.isoformat() if query.as_of else None}
    if query.numbers:
        echo["cadastral_numbers"] = [n.written for n in query.numbers]
    elif address is not None:
        echo["address"] = address["address"]
    elif query.lonlat is not None and query.geometry is None:
        echo["geometry_type"] = "Point"
        echo["crs"] = f"EPSG:{query.geometry_crs}"
    elif query.geometry is not None:
        echo["geometry_type"] = query.geometry.geom_type
        echo["crs"] = f"EPSG:{query.geometry_crs}" if query.geometry_crs else None
    if query.purpose:
        echo["purpose"] = query.purpose
    return echo


def map_link(
    base: str, parcels: list[dict[str, Any]], centroid: dict[str, float] | None, as_of: date | None
) -> str:
    """The web map showing this answer: its parcels, or the place when none was found."""
    params: dict[str, str] = {}
    if parcels:
        params["parcels"] = ",".join(p["cadastral_number"] for p in parcels)
    elif centroid is not None:
        params["lon"] = f"{centroid['lon']:.7f}"
        params["lat"] = f"{centroid['lat']:.7f}"
    if as_of is not None:
        params["as_of"] = as_of.isoformat()
    return f"{base}?{urlencode(params, safe=',')}" if params else base


def reasons_for(answer: dict[str, Any], query: LocationQuery) -> list[dict[str, Any]]:
    """Every fact that blocks the request or needs a clerk's look, most serious first."""
    found: list[dict[str, Any]] = []
    parcels, missing = answer["parcels"], answer["not_found"]
    if missing:
        numbers = ", ".join(m["cadastral_number"] for m in missing)
        severity = "attention" if parcels else "blocked"
        found.append(reason("parcels_not_found", severity, f"not found: {numbers}"))
    elif not parcels and query.geometry is None:
        found.append(reason("parcels_not_found", "blocked", "no parcel found"))
    elif not parcels:
        found.append(
            reason("no_parcel_at_location", "attention", "no recorded parcel at this location")
        )
    if answer["contiguous"] is False:
        found.append(reason("not_contiguous", "attention", "the parcels do not touch each other"))
    uat = answer["uat"]
    if uat["inside"] in ("partly", "outside"):
        found.append(
            reason(
                "outside_uat",
                "attention",
                f"the location is {uat['inside']} outside the UAT {uat['name']}",
                share=uat["share"],
            )
        )
    intra = answer["intravilan"]
    if intra["inside"] == "unknown":
        found.append(reason("intravilan_unknown", "attention", "no intravilan is recorded"))
    elif intra["inside"] != "inside":
        label = "partly outside" if intra["inside"] == "partly" else "outside"
        found.append(
            reason(
                "outside_intravilan",
                "attention",
                f"the location is {label} the intravilan (built-up area)",
                share=intra["share"],
            )
        )
    found.extend(_zone_reasons(answer["zones"], query))
    for item in answer["restrictions"]:
        if item["intersects"]:
            found.append(
                reason(
                    f"restriction_{item['kind']}",
                    "attention",
                    f"{item['name']} ({item['legal_source'] or 'no legal source recorded'})",
                )
            )
    found.sort(key=lambda r: -{"blocked": 2, "attention": 1, "info": 0}[r["severity"]])
    return found


def _zone_reasons(zones: list[dict[str, Any]], query: LocationQuery) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    governing = [z for z in zones if z["applies"] and not z["marginal"]]
    if not governing:
        found.append(
            reason("no_zone", "attention", "no zone of a plan in force covers the location")
        )
        return found
    if len(governing) > 1:
        codes = ", ".join(f"{z['utr_code']} ({float(z['share']):.0%})" for z in governing)
        found.append(reason("several_zones", "attention", f"the location spans zones {codes}"))
    if not query.purpose:
        return found
    categories = {z["utr_code"]: z["purpose_use"]["category"] for z in governing}
    forbidden = [code for code, cat in categories.items() if cat == "forbidden"]
    conditional = [code for code, cat in categories.items() if cat == "conditional"]
    if forbidden and len(forbidden) == len(governing):
        found.append(
            reason(
                "use_forbidden",
                "blocked",
                f"'{query.purpose}' is a forbidden use in {', '.join(forbidden)}",
            )
        )
    elif forbidden:
        found.append(
            reason(
                "use_forbidden_in_part",
                "attention",
                f"'{query.purpose}' is a forbidden use in {', '.join(forbidden)}",
            )
        )
    if conditional:
        found.append(
            reason(
                "use_conditional",
                "attention",
                f"'{query.purpose}' is allowed only with conditions in {', '.join(conditional)}",
            )
        )
    ambiguous = [code for code, cat in categories.items() if cat == "ambiguous"]
    if ambiguous:
        found.append(
            reason(
                "use_ambiguous",
                "attention",
                f"'{query.purpose}' reads like both allowed and restricted uses in "
                f"{', '.join(ambiguous)}; the regulation decides",
            )
        )
    if all(cat == "unknown" for cat in categories.values()):
        found.append(
            reason(
                "use_unknown",
                "info",
                f"'{query.purpose}' matches no use listed by the zone's regulation",
            )
        )
    return found
