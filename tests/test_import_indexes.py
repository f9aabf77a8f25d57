"""The parcel indexes a big import rebuilds: one B-tree on the cadastral number (the
pattern index, migration 0010), which serves every lookup by number."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

# Lookups by cadastral number, in the forms the code runs them (permits.location_sql,
# layers.extract_map, layers.map_parcels, importers.merge, permits.lifecycle).
LOOKUPS = {
    "location check": (
        "SELECT p.id FROM unnest(CAST(:numbers AS text[])) AS q(n) JOIN cadastre.parcel p "
        "ON p.uat_siruta = :uat AND p.cadastral_number = q.n "
        "AND p.valid_to IS NULL AND p.valid_from <= now()"
    ),
    "extract": (
        "SELECT id FROM cadastre.parcel WHERE uat_siruta = :uat "
        "AND cadastral_number = :number AND valid_to IS NULL"
    ),
    "map of parcels": (
        "SELECT id FROM cadastre.parcel WHERE uat_siruta = :uat AND valid_to IS NULL "
        "AND cadastral_number = ANY(CAST(:numbers AS text[]))"
    ),
    "other UAT": (
        "SELECT p.uat_siruta FROM unnest(CAST(:numbers AS text[])) AS n JOIN cadastre.parcel p "
        "ON p.cadastral_number = n AND p.valid_to IS NULL WHERE p.uat_siruta <> :uat"
    ),
    "prefix search": (
        "SELECT id FROM cadastre.parcel WHERE uat_siruta = :uat AND valid_to IS NULL "
        "AND cadastral_number LIKE :prefix"
    ),
}


def _parcel_indexes(db: Connection) -> set[str]:
    return set(
        db.execute(
            sa.text(
                "SELECT indexname FROM pg_indexes WHERE schemaname = 'cadastre' "
                "AND tablename = 'parcel'"
            )
        ).scalars()
    )


def test_parcels_have_one_index_on_the_cadastral_number_and_every_lookup_uses_it(
    db: Connection,
) -> None:
    indexes = _parcel_indexes(db)
    assert "ix_parcel_number_pattern" in indexes
    assert "ix_parcel_number_current" not in indexes
    db.execute(sa.text("SET LOCAL enable_seqscan = off"))  # a small table: force the choice
    params = {"numbers": ["A1", "A2"], "uat": 1, "number": "A1", "prefix": "A1%"}
    for name, query in LOOKUPS.items():
        plan = "\n".join(
            str(line) for line in db.execute(sa.text(f"EXPLAIN {query}"), params).scalars()
        )
        assert "ix_parcel_number_pattern" in plan, f"{name}: {plan}"
