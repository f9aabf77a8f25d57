"""Linking acts to the imobile they are about: number first, then location, then address.

1. **Number.** The cited cadastral numbers (``permits.numbers``) are looked up among the
   parcel versions of the UAT valid on the act's date (or, when the records begin after
   that date, the first version known). Confidence 1.
2. **Location.** A register point inside a parcel, or a site-plan footprint overlapping
   parcels, links spatially (confidence 0.8 for a point, the overlap share for a
   footprint). When the number also matched, the location confirms or contradicts it.
3. **Address.** The act's address folded to a search key (``gis_core.search_keys``,
   diacritic- and abbreviation-insensitive) is matched to the address gazetteer, then to
   the parcels' own address text. Confidence 0.7 when it names one imobil.

Acts the linker cannot settle go to the review queue with a reason: nothing found,
several candidates, cited numbers not found (and what was used instead), numbers found
only in another UAT, or number and location / address disagreeing. Links a clerk made
(``manual``) are never touched by a re-link.

Everything is computed set-based: the acts to link and their parsed numbers go into
temporary tables, each method is one query, and the links are written in batches.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_core.bulk import copy_rows
from gis_core.errors import DatabaseError, InvalidInput
from gis_core.migrate import recorded_storage_srid
from gis_core.search_keys import search_key
from gis_core.settings import Settings
from gis_core.twins import fill_missing_twins
from permits.numbers import parse_cited_numbers

POINT_CONFIDENCE = 0.8
ADDRESS_CONFIDENCE = 0.7
DISPUTED_CONFIDENCE = 0.6
MIN_FOOTPRINT_SHARE = 0.05

# A parcel version "as of the act": valid on its date, or the first version when the
# records begin later (a 2019 act cites an imobil first surveyed in 2021).
_VERSION_AT = """
    (p.valid_to IS NULL OR p.valid_to > {day})
    AND (p.valid_from <= {day} OR NOT EXISTS (
        SELECT 1 FROM cadastre.parcel q WHERE q.uat_siruta = p.uat_siruta
          AND q.cadastral_number = p.cadastral_number AND q.valid_from < p.valid_from))
"""
_ACT_DAY = "CAST(COALESCE(a.day, current_date) AS timestamptz)"
_FOLD_SQL = (
    "trim(regexp_replace(lower(translate({0}, 'ăâîșşțţĂÂÎȘŞȚŢ', 'aaissttaaisstt')), "
    "'[^a-z0-9]+', ' ', 'g'))"
)


@dataclass(frozen=True)
class Match:
    parcel_id: int
    cadastral_number: str
    rank: float = 0.0  # cited order, or minus overlap share: lower ranks first


@dataclass
class ActFacts:
    """What the register says about one act, and what each method found."""

    id: int
    day: date | None
    cited: list[str]
    cited_error: str | None
    address: str | None
    has_site: bool
    footprint: bool
    numbers: list[Match] = field(default_factory=list)
    spatial: list[Match] = field(default_factory=list)
    by_address: list[Match] = field(default_factory=list)
    other_uat: dict[str, int] = field(default_factory=dict)


@dataclass
class Decision:
    links: list[tuple[Match, str, float]]
    reason: str | None = None
    detail: str = ""
    candidates: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class LinkReport:
    """Counts per method and per problem, printed by ``urbangis permits link``."""

    acts: int = 0
    primary_method: Counter[str] = field(default_factory=Counter)
    cited_found: int = 0
    located: int = 0
    location_agrees: int = 0
    number_location_disagree: int = 0
    number_address_disagree: int = 0
    unmatched: int = 0
    ambiguous: int = 0
    queued: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    skipped_manual: int = 0
    permits_without_certificate: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "acts": self.acts,
            "linked": sum(self.primary_method.values()),
            "by_method": dict(self.primary_method),
            "acts_citing_an_existing_parcel": self.cited_found,
            "acts_located_in_a_parcel": self.located,
            "location_in_a_cited_parcel": self.location_agrees,
            "number_location_disagreements": self.number_location_disagree,
            "number_address_disagreements": self.number_address_disagree,
            "unmatched": self.unmatched,
            "ambiguous": self.ambiguous,
            "queued": self.queued,
            "queue_reasons": dict(self.reasons),
            "skipped_manual": self.skipped_manual,
            "permits_without_valid_certificate": self.permits_without_certificate,
        }

    def summary_lines(self) -> list[str]:
        d = self.as_dict()
        methods = ", ".join(f"{k} {v}" for k, v in sorted(self.primary_method.items())) or "none"
        lines = [
            f"link: {d['acts']} acts, {d['linked']} linked ({methods})",
            f"  citing an existing parcel {self.cited_found} · located in a parcel "
            f"{self.located} · location in a cited parcel {self.location_agrees}",
            f"  disagreements: number vs location {self.number_location_disagree}, "
            f"number vs address {self.number_address_disagree}",
            f"  unmatched {self.unmatched} · ambiguous {self.ambiguous} · "
            f"queued for review {self.queued}",
        ]
        lines.extend(f"    {reason}: {n}" for reason, n in self.reasons.most_common())
        if self.permits_without_certificate:
            lines.append(
                f"  {self.permits_without_certificate} AC/AD have no CU valid on their issue "
                "date for the same imobil"
            )
        if self.skipped_manual:
            lines.append(f"  {self.skipped_manual} acts keep their manual links")
        return lines


def link_acts(
    conn: Connection,
    settings: Settings,
    *,
    since: date | None = None,
    act_ids: list[int] | None = None,
) -> LinkReport:
    """(Re)link the acts of the UAT (issued since ``since``, or just ``act_ids``)."""
    report = LinkReport()
    facts = _load_acts(conn, settings, since, act_ids, report)
    if not facts:
        return report
    _stage(conn, facts)
    _match_numbers(conn, settings, facts)
    _match_sites(conn, settings, facts)
    _match_addresses(conn, settings, facts)
    decisions = {act.id: _decide(act, report) for act in facts.values()}
    _write(conn, decisions, settings.storage_srid)
    report.permits_without_certificate = attach_certificates(conn, list(decisions))
    report.acts = len(facts)
    return report


def attach_certificates(conn: Connection, act_ids: list[int]) -> int:
    """Point each AC/AD without a basis at the CU valid on its issue date for its primary
    imobil; returns how many permits have none (a register finding, not an import error:
    old registers hold permits whose certificate predates the records)."""
    conn.execute(
        sa.text(
            """
            UPDATE permits.act p SET basis_act_id = (
                SELECT c.id FROM permits.act c
                JOIN permits.act_parcel cl ON cl.act_id = c.id
                JOIN permits.act_parcel pl ON pl.act_id = p.id AND pl.is_primary
                 AND pl.cadastral_number = cl.cadastral_number
                WHERE c.kind = 'CU' AND c.uat_siruta = p.uat_siruta
                  AND c.status IN ('issued', 'extended', 'expired', 'completed')
                  AND c.issued_on <= p.issued_on
                  AND COALESCE(c.extended_until, c.valid_until) >= p.issued_on
                ORDER BY c.issued_on DESC LIMIT 1)
            WHERE p.id = ANY(CAST(:ids AS bigint[])) AND p.kind IN ('AC', 'AD')
              AND p.basis_act_id IS NULL AND p.issued_on IS NOT NULL
            """
        ),
        {"ids": act_ids},
    )
    missing = conn.execute(
        sa.text(
            "SELECT count(*) FROM permits.act WHERE id = ANY(CAST(:ids AS bigint[])) "
            "AND kind IN ('AC', 'AD') AND basis_act_id IS NULL AND status <> 'requested'"
        ),
        {"ids": act_ids},
    ).scalar_one()
    return int(missing)


def _load_acts(
    conn: Connection,
    settings: Settings,
    since: date | None,
    act_ids: list[int] | None,
    report: LinkReport,
) -> dict[int, ActFacts]:
    rows = conn.execute(
        sa.text(
            """
            SELECT a.id, a.issued_on, a.cited_numbers, a.address_text,
                   (a.location IS NOT NULL OR a.footprint IS NOT NULL) AS has_site,
                   a.footprint IS NOT NULL AS has_footprint,
                   EXISTS (SELECT 1 FROM permits.act_parcel l
                           WHERE l.act_id = a.id AND l.method = 'manual') AS manual,
                   EXISTS (SELECT 1 FROM permits.review_item r
                           WHERE r.act_id = a.id AND r.state = 'dismissed') AS dismissed
            FROM permits.act a
            WHERE a.uat_siruta = :uat
              AND (CAST(:since AS date) IS NULL OR a.issued_on >= CAST(:since AS date))
              AND (CAST(:ids AS bigint[]) IS NULL OR a.id = ANY(CAST(:ids AS bigint[])))
            ORDER BY a.id
            """
        ),
        {"uat": settings.uat_siruta, "since": since, "ids": act_ids},
    )
    facts: dict[int, ActFacts] = {}
    for row in rows:
        if row.manual or row.dismissed:
            report.skipped_manual += 1
            continue
        cited: list[str] = []
        error = None
        try:
            cited = [c.number for c in parse_cited_numbers(row.cited_numbers)]
        except InvalidInput as exc:
            error = exc.message
        facts[row.id] = ActFacts(
            id=row.id,
            day=row.issued_on,
            cited=cited,
            cited_error=error,
            address=row.address_text,
            has_site=row.has_site,
            footprint=row.has_footprint,
        )
    return facts


def _stage(conn: Connection, facts: dict[int, ActFacts]) -> None:
    """The acts, their cited numbers and address keys as temporary tables."""
    conn.execute(sa.text("DROP TABLE IF EXISTS pg_temp.link_act, pg_temp.link_cited"))
    conn.execute(
        sa.text(
            "CREATE TEMP TABLE link_act (id bigint PRIMARY KEY, day date, address_key text, "
            "address_text text) ON COMMIT DROP"
        )
    )
    conn.execute(
        sa.text(
            "CREATE TEMP TABLE link_cited (act_id bigint, ord integer, number text) ON COMMIT DROP"
        )
    )
    copy_rows(
        conn,
        "pg_temp.link_act",
        ("id", "day", "address_key", "address_text"),
        ((act.id, act.day, _address_key(act.address), act.address) for act in facts.values()),
    )
    copy_rows(
        conn,
        "pg_temp.link_cited",
        ("act_id", "ord", "number"),
        ((act.id, i, n) for act in facts.values() for i, n in enumerate(act.cited)),
    )
    conn.execute(sa.text("ANALYZE pg_temp.link_act"))
    conn.execute(sa.text("ANALYZE pg_temp.link_cited"))


def _address_key(text: str | None) -> str | None:
    key = search_key(text) if text else ""
    return key or None


def _match_numbers(conn: Connection, settings: Settings, facts: dict[int, ActFacts]) -> None:
    version = _VERSION_AT.format(day=_ACT_DAY)
    rows = conn.execute(
        sa.text(
            f"""
            SELECT DISTINCT ON (c.act_id, c.ord) c.act_id, c.ord, p.id, p.cadastral_number
            FROM link_cited c JOIN link_act a ON a.id = c.act_id
            JOIN cadastre.parcel p ON p.cadastral_number = c.number AND p.uat_siruta = :uat
            WHERE {version}
            ORDER BY c.act_id, c.ord, p.valid_from DESC
            """  # noqa: S608  (constant fragments)
        ),
        {"uat": settings.uat_siruta},
    )
    for act_id, ord_, parcel_id, number in rows:
        facts[act_id].numbers.append(Match(parcel_id, number, float(ord_)))
    elsewhere = conn.execute(
        sa.text(
            """
            SELECT DISTINCT c.act_id, c.number, p.uat_siruta FROM link_cited c
            JOIN cadastre.parcel p ON p.cadastral_number = c.number AND p.uat_siruta <> :uat
            WHERE p.valid_to IS NULL
            """
        ),
        {"uat": settings.uat_siruta},
    )
    for act_id, number, uat in elsewhere:
        facts[act_id].other_uat[number] = int(uat)


def _match_sites(conn: Connection, settings: Settings, facts: dict[int, ActFacts]) -> None:
    if not any(act.has_site for act in facts.values()):
        return
    version = _VERSION_AT.format(day=_ACT_DAY)
    rows = conn.execute(
        sa.text(
            f"""
            SELECT s.id, p.id, p.cadastral_number,
                   CASE WHEN s.footprint IS NULL THEN -1.0 / (1.0 + ST_Area(p.geom))
                        ELSE -ST_Area(ST_Intersection(p.geom, s.footprint))
                             / NULLIF(ST_Area(s.footprint), 0) END AS rank
            FROM permits.act s JOIN link_act a ON a.id = s.id
            JOIN cadastre.parcel p ON p.uat_siruta = :uat
             AND ST_Intersects(p.geom, COALESCE(s.footprint, s.location))
            WHERE {version}
            """  # noqa: S608  (constant fragments)
        ),
        {"uat": settings.uat_siruta},
    )
    for act_id, parcel_id, number, rank in rows:
        act = facts[act_id]
        share = -float(rank or 0.0)
        if act.footprint and share < MIN_FOOTPRINT_SHARE:
            continue
        act.spatial.append(Match(parcel_id, number, float(rank or 0.0)))
    for act in facts.values():
        act.spatial.sort(key=lambda m: m.rank)


def _match_addresses(conn: Connection, settings: Settings, facts: dict[int, ActFacts]) -> None:
    """Gazetteer addresses by search key, then the parcels' own address text folded."""
    version = _VERSION_AT.format(day=_ACT_DAY)
    city = search_key(settings.uat_name)
    rows = conn.execute(
        sa.text(
            f"""
            SELECT a.id, p.id, p.cadastral_number
            FROM link_act a
            JOIN cadastre.address ad ON ad.uat_siruta = :uat
             AND ad.search_text IN (a.address_key, a.address_key || ' ' || :city)
            JOIN cadastre.parcel p ON p.address_id = ad.id AND p.uat_siruta = :uat
            WHERE a.address_key IS NOT NULL AND {version}
            """  # noqa: S608  (constant fragments)
        ),
        {"uat": settings.uat_siruta, "city": city},
    )
    for act_id, parcel_id, number in rows:
        facts[act_id].by_address.append(Match(parcel_id, number))
    pending = [a.id for a in facts.values() if not a.by_address and not a.numbers and a.address]
    if not pending:
        return
    folded_parcel = _FOLD_SQL.format("p.address_text")
    folded_act = _FOLD_SQL.format("a.address_text")
    folded_city = _FOLD_SQL.format(":city")
    rows = conn.execute(
        sa.text(
            f"""
            SELECT a.id, p.id, p.cadastral_number
            FROM link_act a
            JOIN cadastre.parcel p ON p.uat_siruta = :uat AND p.address_text IS NOT NULL
             AND {folded_parcel} IN ({folded_act}, {folded_act} || ' ' || {folded_city})
            WHERE a.id = ANY(CAST(:ids AS bigint[])) AND {version}
            """  # noqa: S608  (constant fragments)
        ),
        {"uat": settings.uat_siruta, "city": settings.uat_name, "ids": pending},
    )
    for act_id, parcel_id, number in rows:
        facts[act_id].by_address.append(Match(parcel_id, number))


def _unique_numbers(matches: list[Match]) -> list[Match]:
    seen: dict[str, Match] = {}
    for match in matches:
        seen.setdefault(match.cadastral_number, match)
    return list(seen.values())


def _decide(act: ActFacts, report: LinkReport) -> Decision:
    """Pick the links and, when a clerk must look, the queue reason."""
    numbers = _unique_numbers(sorted(act.numbers, key=lambda m: m.rank))
    spatial = _unique_numbers(act.spatial)
    by_address = _unique_numbers(act.by_address)
    report.cited_found += bool(numbers)
    report.located += bool(spatial)
    if numbers:
        decision = _decide_by_number(act, numbers, spatial, by_address, report)
    elif spatial:
        decision = _fallback(act, spatial, "spatial", _spatial_confidence(act, spatial))
    elif by_address:
        decision = _fallback(act, by_address, "address", ADDRESS_CONFIDENCE)
    else:
        decision = Decision([], "unmatched", _why_unmatched(act))
    if decision.links:
        report.primary_method[decision.links[0][1]] += 1
    if decision.reason:
        report.queued += 1
        report.reasons[decision.reason] += 1
        report.unmatched += not decision.links
        report.ambiguous += decision.reason == "ambiguous"
    return decision


def _decide_by_number(
    act: ActFacts,
    numbers: list[Match],
    spatial: list[Match],
    by_address: list[Match],
    report: LinkReport,
) -> Decision:
    cited = {m.cadastral_number for m in numbers}
    if spatial:
        if cited & {m.cadastral_number for m in spatial}:
            report.location_agrees += 1
            return Decision([(m, "number", 1.0) for m in numbers])
        report.number_location_disagree += 1
        return Decision(
            [(m, "number", DISPUTED_CONFIDENCE) for m in numbers],
            "number_location_disagree",
            f"the register cites {', '.join(sorted(cited))} but the act's site lies in "
            f"{', '.join(m.cadastral_number for m in spatial)}",
            _candidates(spatial, "spatial"),
        )
    if by_address and not cited & {m.cadastral_number for m in by_address}:
        report.number_address_disagree += 1
        return Decision(
            [(m, "number", DISPUTED_CONFIDENCE) for m in numbers],
            "number_address_disagree",
            f"the register cites {', '.join(sorted(cited))} but the address "
            f"{act.address!r} is that of {', '.join(m.cadastral_number for m in by_address)}",
            _candidates(by_address, "address"),
        )
    return Decision([(m, "number", 1.0) for m in numbers])


def _spatial_confidence(act: ActFacts, spatial: list[Match]) -> float:
    if act.footprint:
        return round(min(1.0, max(0.0, -spatial[0].rank)), 2)
    return POINT_CONFIDENCE


def _fallback(act: ActFacts, matches: list[Match], method: str, confidence: float) -> Decision:
    """A link found without the number; queued when the register's number said otherwise."""
    if len(matches) > 1 and method == "address":
        return Decision(
            [],
            "ambiguous",
            f"the address {act.address!r} fits {len(matches)} imobile",
            _candidates(matches, method),
        )
    links = [(m, method, confidence) for m in matches]
    if len(matches) > 1:
        return Decision(
            links,
            "ambiguous",
            f"the site lies in {len(matches)} imobile: "
            f"{', '.join(m.cadastral_number for m in matches)}",
            _candidates(matches, method),
        )
    if act.cited or act.cited_error:
        return Decision(
            links,
            "cited_number_not_found",
            f"{_why_unmatched(act)}; linked by {method} to {matches[0].cadastral_number}",
            _candidates(matches, method),
        )
    return Decision(links)


def _why_unmatched(act: ActFacts) -> str:
    if act.cited_error:
        return f"the cadastral number cell is unreadable ({act.cited_error})"
    if not act.cited:
        return "the register cites no cadastral number and nothing else identifies the imobil"
    elsewhere = [f"{n} (UAT {uat})" for n, uat in act.other_uat.items()]
    if elsewhere:
        return f"cited numbers exist only in another UAT: {', '.join(elsewhere)}"
    return f"no imobil of the UAT has the cited number(s) {', '.join(act.cited)}"


def _candidates(matches: list[Match], method: str) -> list[dict[str, Any]]:
    return [
        {"parcel_id": m.parcel_id, "cadastral_number": m.cadastral_number, "method": method}
        for m in matches
    ]


def _write(conn: Connection, decisions: dict[int, Decision], storage_srid: int) -> None:
    """Replace the automatic links and open queue items of these acts, then the geometry."""
    ids = list(decisions)
    conn.execute(
        sa.text("DELETE FROM permits.act_parcel WHERE act_id = ANY(CAST(:ids AS bigint[]))"),
        {"ids": ids},
    )
    conn.execute(
        sa.text(
            "DELETE FROM permits.review_item WHERE state = 'open' "
            "AND act_id = ANY(CAST(:ids AS bigint[]))"
        ),
        {"ids": ids},
    )
    links = [
        (act_id, m.parcel_id, m.cadastral_number, i == 0, method, confidence)
        for act_id, d in decisions.items()
        for i, (m, method, confidence) in enumerate(d.links)
    ]
    copy_rows(
        conn,
        "permits.act_parcel",
        ("act_id", "parcel_id", "cadastral_number", "is_primary", "method", "confidence"),
        links,
    )
    queued = [
        # A list, not its JSON text: binary COPY's jsonb encoder serialises the value
        # itself, so a string would be stored as a JSON string.
        (act_id, d.reason, d.detail, d.candidates)
        for act_id, d in decisions.items()
        if d.reason
    ]
    copy_rows(conn, "permits.review_item", ("act_id", "reason", "detail", "candidates"), queued)
    states: dict[str, list[int]] = defaultdict(list)
    for act_id, d in decisions.items():
        state = "review" if d.reason else "linked"
        states["unmatched" if not d.links else state].append(act_id)
    for state, act_ids in states.items():
        conn.execute(
            sa.text(
                "UPDATE permits.act SET link_state = :state "
                "WHERE id = ANY(CAST(:ids AS bigint[])) AND link_state <> :state"
            ),
            {"state": state, "ids": act_ids},
        )
    refresh_geometry(conn, ids, storage_srid)


def refresh_geometry(conn: Connection, act_ids: list[int], storage_srid: int | None = None) -> None:
    """What the public layer draws: the site plan, else the union of the linked parcels.

    Then the ETRS89 twins of these acts: the trigger of migration 0006 cleared those whose
    geometry changed, and twins of freshly imported sites are still to be written.
    """
    conn.execute(
        sa.text(
            """
            UPDATE permits.act a SET geom = COALESCE(a.footprint, (
                SELECT ST_Multi(ST_CollectionExtract(ST_Union(p.geom), 3))
                FROM permits.act_parcel l JOIN cadastre.parcel p ON p.id = l.parcel_id
                WHERE l.act_id = a.id))
            WHERE a.id = ANY(CAST(:ids AS bigint[]))
            """
        ),
        {"ids": act_ids},
    )
    srid = storage_srid if storage_srid is not None else recorded_storage_srid(conn)
    if srid is None:
        raise DatabaseError("the database has no recorded storage CRS; run urbangis db upgrade")
    fill_missing_twins(conn, "permits.act", srid, ids=act_ids)
