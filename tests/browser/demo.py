"""The demo municipality in a test database, with the facts the map tests check against.

The demo is loaded by the product's own loader (``importers.demo.load.load_demo``), then
given what the demo lacks on purpose: one fictitious owner (personal data, which must
show for clerks only), staff accounts, an urbanism certificate registered by a clerk
through the product's own lifecycle (its applicant is personal data too) and a draft
PUZ (for planners only). The facts (a parcel with a diacritic address, one crossed by a
restriction, zone codes, points inside parcels) are read back with SQL written
independently of the code under test.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import URL

from gis_core import migrate
from gis_core.db import create_engine
from gis_core.settings import Settings
from gis_core.twins import fill_missing_twins
from importers.demo.generate import DemoParameters
from importers.demo.load import load_demo
from permits import lifecycle
from tests.conftest import TEST_DATA_DIR, drop_database, fresh_database
from webmap.auth import create_staff_user

DEMO = DemoParameters(parcels=1500, seed=8)
OWNER = "Ionela Fictivă Testescu"
OWNER_CNP = "2990101123457"
PASSWORD = "parola-de-test-8"
APPLICANT = "Vasile Solicitant Fictiv"
APPLICANT_CNP = "1850505123458"
ACT_NUMBER = "4711"
DRAFT_PLAN = "PUZ Test – zonă în lucru"
DRAFT_UTR = "DRAFT8"


@dataclass(frozen=True)
class MapFacts:
    owned: str  # parcel with the fictitious owner
    diacritic: str  # parcel whose address has ș or ț
    diacritic_address: str  # its full address as stored (comma-below letters)
    restricted: str  # parcel crossed by a restriction
    restriction_name: str
    zones: dict[str, list[str]]  # UTR codes over each parcel above (share >= 1 %)
    pair: tuple[str, str]  # two neighbouring parcels for multi-parcel links
    inside: dict[str, tuple[float, float]]  # a lon/lat inside each parcel above
    footprint: list[tuple[float, float]]  # a small square (lon/lat) inside `restricted`


def demo_settings(server: URL, name: str) -> Settings:
    url = fresh_database(server, name)
    settings = Settings(
        database_url=url.render_as_string(hide_password=False),
        data_dir=TEST_DATA_DIR,
        storage_srid=3844,
        osm_tiles_url="",  # no request may leave the machine in tests
    )
    engine = create_engine(settings)
    migrate.upgrade(engine, 3844)
    load_demo(engine, DEMO)
    with engine.begin() as conn:
        create_staff_user(conn, "clerk8", PASSWORD, "clerk", "Funcționar Test")
        create_staff_user(conn, "planner8", PASSWORD, "planner", "Urbanist Test")
    engine.dispose()
    return settings


def drop(server: URL, name: str) -> None:
    drop_database(server, name)


def map_facts(settings: Settings) -> MapFacts:
    engine = create_engine(settings)
    with engine.begin() as conn:
        diacritic, address = conn.execute(
            sa.text(
                "SELECT p.cadastral_number, a.full_text FROM cadastre.parcel p "
                "JOIN cadastre.address a ON a.id = p.address_id "
                "WHERE p.valid_to IS NULL AND a.street_name ~ '[șț]' "
                "ORDER BY p.cadastral_number LIMIT 1"
            )
        ).one()
        restricted, restriction = conn.execute(
            sa.text(
                "SELECT p.cadastral_number, r.name FROM cadastre.parcel p "
                "JOIN urbanism.restriction r ON ST_Intersects(r.geom, p.geom) "
                "WHERE p.valid_to IS NULL AND r.valid_to IS NULL "
                "AND ST_Area(ST_Intersection(r.geom, p.geom)) > 0.5 * ST_Area(p.geom) "
                "ORDER BY p.cadastral_number LIMIT 1"
            )
        ).one()
        owned = conn.execute(
            sa.text(
                "SELECT cadastral_number FROM cadastre.parcel WHERE valid_to IS NULL "
                "AND cadastral_number NOT IN (:a, :b) ORDER BY cadastral_number LIMIT 1"
            ),
            {"a": diacritic, "b": restricted},
        ).scalar_one()
        person = conn.execute(
            sa.text(
                "INSERT INTO protected.person (name, national_id) VALUES (:n, :c) RETURNING id"
            ),
            {"n": OWNER, "c": OWNER_CNP},
        ).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO protected.parcel_owner (parcel_id, person_id, share) "
                "SELECT id, :person, '1/1' FROM cadastre.parcel "
                "WHERE cadastral_number = :n AND valid_to IS NULL"
            ),
            {"person": person, "n": owned},
        )
        pair = conn.execute(
            sa.text(
                "SELECT a.cadastral_number, b.cadastral_number FROM cadastre.parcel a "
                "JOIN cadastre.parcel b ON ST_Touches(a.geom, b.geom) "
                "AND a.cadastral_number < b.cadastral_number "
                "WHERE a.valid_to IS NULL AND b.valid_to IS NULL "
                "ORDER BY a.cadastral_number, b.cadastral_number LIMIT 1"
            )
        ).one()
        zones = {
            number: [
                str(code)
                for (code,) in conn.execute(
                    sa.text(
                        "SELECT DISTINCT z.utr_code FROM urbanism.zone z "
                        "JOIN urbanism.plan pl ON pl.id = z.plan_id "
                        "JOIN cadastre.parcel p ON ST_Intersects(z.geom, p.geom) "
                        "WHERE p.cadastral_number = :n AND p.valid_to IS NULL "
                        "AND z.valid_to IS NULL AND pl.status = 'approved' "
                        "AND (pl.valid_to IS NULL OR pl.valid_to >= current_date) "
                        "AND ST_Area(ST_Intersection(z.geom, p.geom)) >= 0.01 * ST_Area(p.geom)"
                    ),
                    {"n": number},
                )
            ]
            for number in (diacritic, restricted, owned)
        }
        _register_certificate(conn, settings, str(restricted))
        _add_draft_plan(conn, str(owned))
        inside = {
            str(n): (float(x), float(y))
            for n, x, y in conn.execute(
                sa.text(
                    "SELECT cadastral_number, ST_X(c), ST_Y(c) FROM ("
                    "SELECT cadastral_number, ST_PointOnSurface(geom_etrs89) AS c "
                    "FROM cadastre.parcel WHERE valid_to IS NULL "
                    "AND cadastral_number = ANY(:numbers)) AS q"
                ),
                {"numbers": [diacritic, restricted, owned, *pair]},
            )
        }
        footprint = [
            (float(x), float(y))
            for x, y in conn.execute(
                sa.text(
                    # On the ETRS89 twin: inside it is inside on the map, whatever the
                    # transformation (the square lies within the largest inscribed circle).
                    "WITH c AS (SELECT (ST_MaximumInscribedCircle(geom_etrs89)).* "
                    "FROM cadastre.parcel WHERE valid_to IS NULL AND cadastral_number = :n), "
                    "sq AS (SELECT ST_Expand(center, radius * 0.5) AS g FROM c) "
                    "SELECT ST_X(d.geom), ST_Y(d.geom) "
                    "FROM sq, ST_DumpPoints(ST_ExteriorRing(sq.g)) AS d ORDER BY d.path LIMIT 4"
                ),
                {"n": restricted},
            )
        ]
    engine.dispose()
    return MapFacts(
        owned=str(owned),
        diacritic=str(diacritic),
        diacritic_address=str(address),
        restricted=str(restricted),
        restriction_name=str(restriction),
        zones=zones,
        pair=(str(pair[0]), str(pair[1])),
        inside=inside,
        footprint=footprint,
    )


def _register_certificate(conn: sa.Connection, settings: Settings, number: str) -> None:
    """An urbanism certificate for ``number``, issued a month ago, as a clerk registers it."""
    lifecycle.create_act(
        conn,
        settings,
        {
            "kind": "CU",
            "number": ACT_NUMBER,
            "issued_on": (date.today() - timedelta(days=30)).isoformat(),
            "validity_months": 12,
            "purpose": "Construire locuință individuală P+1E",
            "cadastral_numbers": [number],
            "applicant": {"name": APPLICANT, "national_id": APPLICANT_CNP},
        },
        actor="test clerk8",
    )


def _add_draft_plan(conn: sa.Connection, number: str) -> None:
    """A draft PUZ with one zone around imobil ``number``: planners only may see it."""
    plan_id = conn.execute(
        sa.text(
            "INSERT INTO urbanism.plan (uat_siruta, plan_type, title, status) "
            "SELECT uat_siruta, 'PUZ', :title, 'draft' FROM cadastre.parcel "
            "WHERE cadastral_number = :n AND valid_to IS NULL RETURNING id"
        ),
        {"title": DRAFT_PLAN, "n": number},
    ).scalar_one()
    conn.execute(
        sa.text(
            "INSERT INTO urbanism.zone (plan_id, utr_code, function, geom) "
            "SELECT :plan, :utr, 'residential', ST_Multi(ST_Buffer(geom, 30)) "
            "FROM cadastre.parcel WHERE cadastral_number = :n AND valid_to IS NULL"
        ),
        {"plan": plan_id, "utr": DRAFT_UTR, "n": number},
    )
    fill_missing_twins(conn, "urbanism.zone", 3844)  # the ETRS89 twin maps and APIs use
