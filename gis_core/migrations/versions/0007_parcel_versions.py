"""Parcel versions: the no-overlap rule checked set-wise by triggers, not a GiST exclusion.

Revision ID: 0007_parcel_versions
Revises: 0006_act_twins
Create Date: 2026-11-22

The rule is unchanged: two versions of one parcel (UAT, cadastral number) never have
overlapping periods ``[valid_from, valid_to)``, so "as of date X" finds at most one.
0001 enforced it with ``EXCLUDE USING gist``, whose index costs a GiST insertion per
row (~40 s per 100 000 parcels) or a full rebuild that re-checks every row (~5 min at a
million), whatever the import touched. Here the same rule is checked only where a
write can break it, in one set-based query per statement:

- after an INSERT (or COPY), a statement trigger compares the new rows, taken from its
  transition table, with the versions of the same keys (a hash join for a big import,
  probes of the cadastral-number index for a small one);
- after an UPDATE that widens a period or changes a key (``WHEN`` filters in C, so
  closing versions, the common update, costs nothing), a row trigger checks that row.

A clash raises SQLSTATE 23P01 (exclusion_violation) naming ``ex_parcel_versions``, the
parcel and both periods, like the constraint did; the statement, and with it the
import's transaction, is undone.

Concurrency, which the exclusion index handled by itself: each checking statement first
updates the table's row in ``core.version_guard``. Writers of parcel versions therefore
take turns until commit, and the check runs on a snapshot that includes every committed
version: under READ COMMITTED the check's query sees what the writer before committed;
under REPEATABLE READ or SERIALIZABLE a concurrent commit makes the guard update fail
with a serialization error instead of checking against a stale snapshot. Imports take
their own turn anyway (one import per kind at a time).
"""

from __future__ import annotations

from alembic import op

revision = "0007_parcel_versions"
down_revision = "0006_act_twins"
branch_labels = None
depends_on = None

TABLE = "cadastre.parcel"
CONSTRAINT = "ex_parcel_versions"
_RAISE = f"""
    IF clash.new_id IS NOT NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'exclusion_violation',
            CONSTRAINT = '{CONSTRAINT}',
            SCHEMA = 'cadastre',
            TABLE = 'parcel',
            MESSAGE = format(
                'versions of parcel %s (UAT %s) would overlap ({CONSTRAINT}): '
                'version %s [%s, %s) and version %s [%s, %s)',
                clash.cadastral_number, clash.uat_siruta,
                clash.new_id, clash.new_from, coalesce(clash.new_to::text, 'open'),
                clash.other_id, clash.other_from, coalesce(clash.other_to::text, 'open')),
            HINT = 'close the current version (valid_to) before adding the next one';
    END IF;
    RETURN NULL;
END
$$"""
_GUARD = f"UPDATE core.version_guard SET writes = writes + 1 WHERE table_name = '{TABLE}';"  # noqa: S608
_SELECT = (
    "SELECT n.uat_siruta, n.cadastral_number, n.id AS new_id, n.valid_from AS new_from, "
    "n.valid_to AS new_to, p.id AS other_id, p.valid_from AS other_from, "
    "p.valid_to AS other_to"
)
_OVERLAP = (
    "p.uat_siruta = n.uat_siruta AND p.cadastral_number = n.cadastral_number "
    "AND p.id <> n.id AND tstzrange(p.valid_from, p.valid_to) && tstzrange(n.valid_from, n.valid_to)"
)
# The statement check. A bulk load drops the indexes and the planner's statistics may
# still describe an empty table: a nested loop would then rescan the table for every
# new row, so without an index on the cadastral number the join is hashed instead.
# EXECUTE plans the query at each statement, with the current table and setting.
_INSERTED = f"""
DECLARE
    clash record;
    saved text := current_setting('enable_nestloop');
BEGIN
    {_GUARD}
    IF NOT EXISTS (
        SELECT 1 FROM pg_index i JOIN pg_attribute a
          ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
        WHERE i.indrelid = '{TABLE}'::regclass AND a.attname = 'cadastral_number'
          AND i.indpred IS NULL
    ) THEN
        PERFORM set_config('enable_nestloop', 'off', true);
    END IF;
    EXECUTE '{_SELECT} FROM new_versions n JOIN {TABLE} p ON {_OVERLAP} LIMIT 1' INTO clash;
    PERFORM set_config('enable_nestloop', saved, true);"""  # noqa: S608
# The row check after an UPDATE that widened a period or changed a key.
_CHANGED = f"""
DECLARE
    clash record;
BEGIN
    {_GUARD}
    {_SELECT} INTO clash FROM (SELECT NEW.*) n JOIN {TABLE} p ON {_OVERLAP} LIMIT 1;"""


def upgrade() -> None:
    op.execute(
        "CREATE TABLE core.version_guard (table_name text PRIMARY KEY, "
        "writes bigint NOT NULL DEFAULT 0)"
    )
    op.execute(
        "COMMENT ON TABLE core.version_guard IS "
        "'One row per versioned table whose no-overlap rule is checked by triggers; "
        "checking writers update it, so they take turns (see migration 0007)'"
    )
    op.execute(f"INSERT INTO core.version_guard (table_name) VALUES ('{TABLE}')")  # noqa: S608
    op.execute(f"ALTER TABLE {TABLE} DROP CONSTRAINT IF EXISTS {CONSTRAINT}")
    op.execute(
        "CREATE FUNCTION cadastre.check_inserted_parcel_versions() RETURNS trigger "
        f"LANGUAGE plpgsql AS $${_INSERTED}{_RAISE}"
    )
    op.execute(
        "CREATE FUNCTION cadastre.check_changed_parcel_version() RETURNS trigger "
        f"LANGUAGE plpgsql AS $${_CHANGED}{_RAISE}"
    )
    op.execute(
        f"CREATE TRIGGER tr_parcel_versions_inserted AFTER INSERT ON {TABLE} "
        "REFERENCING NEW TABLE AS new_versions FOR EACH STATEMENT "
        "EXECUTE FUNCTION cadastre.check_inserted_parcel_versions()"
    )
    op.execute(
        "CREATE TRIGGER tr_parcel_versions_changed AFTER UPDATE OF uat_siruta, "
        f"cadastral_number, valid_from, valid_to ON {TABLE} FOR EACH ROW WHEN ("
        "NEW.uat_siruta IS DISTINCT FROM OLD.uat_siruta "
        "OR NEW.cadastral_number IS DISTINCT FROM OLD.cadastral_number "
        "OR NEW.valid_from < OLD.valid_from "
        "OR (OLD.valid_to IS NOT NULL AND (NEW.valid_to IS NULL OR NEW.valid_to > OLD.valid_to))"
        ") EXECUTE FUNCTION cadastre.check_changed_parcel_version()"
    )


def downgrade() -> None:
    op.execute(f"DROP TRIGGER IF EXISTS tr_parcel_versions_changed ON {TABLE}")
    op.execute(f"DROP TRIGGER IF EXISTS tr_parcel_versions_inserted ON {TABLE}")
    op.execute("DROP FUNCTION IF EXISTS cadastre.check_changed_parcel_version()")
    op.execute("DROP FUNCTION IF EXISTS cadastre.check_inserted_parcel_versions()")
    op.execute(
        f"ALTER TABLE {TABLE} ADD CONSTRAINT {CONSTRAINT} EXCLUDE USING gist "
        "(uat_siruta WITH =, cadastral_number WITH =, tstzrange(valid_from, valid_to) WITH &&)"
    )
    op.execute("DROP TABLE IF EXISTS core.version_guard")
