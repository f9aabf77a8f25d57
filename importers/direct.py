"""A big first import goes straight into the target table, without a staging round trip.

When the scope (the UAT) has no current version yet, the merge has nothing to match:
every feature becomes a new version. Staging would then only cost a second copy of
every row (COPY into a temporary table, then ``INSERT … SELECT`` with the WAL and the
version check). So for a big file (``merge.BULK_ROWS`` features or more) read by a
reader that can list its keys, features are COPYed directly into the target, with the
secondary indexes dropped for the load and rebuilt after, in the import's transaction.

What staging gave is kept:
- duplicates of a key are found first, from the key column alone (one quick read of
  the file without geometries); their features go to the staging table instead and are
  merged into one multi-part feature there (``checks.merge_duplicates``), then inserted;
- the version rule holds. Its statement trigger (migration 0007) would keep every
  loaded row in a transition table and hash-join them with the table at the end of the
  COPY (about a third of the load's database time). When the indexes are dropped the
  table is locked anyway, and the load first proves the check cannot fail: it takes the
  writers' turn as the trigger does, finds no version of the scope that is current or
  ends in the future (a new version from now on could only overlap one of those), and
  the loaded keys are unique (checked again on the rows actually written, at the end).
  Then the trigger is dropped for the load and recreated from its catalog definition
  with the indexes. Otherwise the trigger stays and checks the COPY as usual;
- every row still links to an existing import run. Its foreign key would check each row
  with a query of its own (a fifth of the load's database time); with the indexes
  dropped it is dropped too and added back at the end, when PostgreSQL validates it
  with one scan. Dropping it locks the run table, so readers of the runs wait for this
  import as readers of the parcels do; when another transaction holds that table (an
  import of another kind is running) the key stays and checks the rows as usual, so
  this load never waits for, or deadlocks with, another import;
- foreign keys on columns the file leaves empty (a parcel's address) are dropped for
  the load the same way and added back, validated by one scan: PostgreSQL would queue a
  check of every inserted row and run them all at the end of the COPY, NULLs included;
- ids come from the table's sequence as before, taken as one block under the load's
  lock and sent with the rows (PostgreSQL would call the sequence once a row);
- rejections, repairs, area, sliver and overlap checks run on the batches as before.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_core.bulk import drop_secondary_indexes, recreate_indexes
from gis_core.errors import InvalidInput
from importers import merge
from importers.merge import GEOMETRY_KEY, MergeCounts, Target
from importers.staging import resolved

# A file whose duplicates are more than this share goes through staging (they are held
# in memory until the end here).
MAX_DUPLICATE_SHARE = 0.05
# How long the load waits for the run table's lock before keeping the foreign key.
RUN_LOCK_WAIT = "200ms"
LOCK_NOT_AVAILABLE = "55P03"
# Version rules checked by a statement trigger (table -> trigger, guard row, rule key):
# the no-overlap rule of parcel versions per (UAT, cadastral number), migration 0007.
VERSION_CHECKS = {
    "cadastre.parcel": ("tr_parcel_versions_inserted", ("uat_siruta",), "cadastral_number"),
}


class KeyedSource(Protocol):
    def read_column(self, name: str) -> pa.Array: ...


@dataclass
class DirectLoad:
    """The state of one direct load into ``target``."""

    target: Target
    run_id: int | None
    duplicates: pa.Array  # keys that several features share (their features are staged)
    saved: list[str] = field(default_factory=list)  # index definitions to rebuild
    held: list[dict[str, Any]] = field(default_factory=list)  # duplicates' batches
    written: int = 0
    unchecked: bool = False  # the version trigger is suspended: keys checked at the end
    written_keys: list[pa.Array] = field(default_factory=list)  # when ``unchecked``
    first_read: pa.Array | None = None  # every feature's key, as the first read found it
    matches_first_read: bool = True  # each written key was its feature's first-read key
    omitted: frozenset[str] = frozenset()  # columns the source does not feed: left NULL
    first_id: int | None = None  # ids from here on are reserved for the load
    reserved: int = 0
    sequence: str | None = None  # the id column's sequence

    @property
    def key(self) -> str:
        return next(k for k in self.target.key if k != GEOMETRY_KEY)

    def columns(self) -> list[str]:
        """The target's columns each COPY writes (valid_from takes its default, now());
        columns no source field feeds are left out, so they are neither encoded nor
        parsed: PostgreSQL fills them with NULL, their (absent) default."""
        data = [c for c in self.target.data_columns if c not in self.omitted]
        ids = ["id"] if self.first_id is not None else []
        return [*ids, *self.target.scope, *data, *self.target.geometry_columns, "import_run_id"]

    def split(self, data: Mapping[str, Any], count: int) -> tuple[dict[str, Any] | None, Any]:
        """The batch's rows for the target (with scope and run columns) and the mask of
        rows held for staging (those of duplicated keys)."""
        keys = data[self.key]
        for name in self.omitted:
            if not _all_null(data[name]):
                raise ValueError(f"{name}: values for a column left out of the load")
        held = pc.is_in(keys, value_set=self.duplicates).fill_null(False)
        held_mask = np.asarray(held.to_numpy(zero_copy_only=False), dtype=bool)
        if held_mask.any():
            self.held.append(_rows(data, np.flatnonzero(held_mask)))
        keep = np.flatnonzero(~held_mask)
        if keep.size == 0:
            return None, held_mask
        direct = _rows(data, keep) if held_mask.any() else dict(data)
        if self.unchecked:
            self.written_keys.append(direct[self.key])
            self._compare_first_read(direct[self.key], data, keep)
        for column, value in self.target.scope.items():
            direct[column] = np.full(keep.size, value)
        direct["import_run_id"] = (
            np.full(keep.size, self.run_id, dtype=np.int64)
            if self.run_id is not None
            else pa.nulls(keep.size, pa.int64())
        )
        if self.first_id is not None:
            start = self.first_id + self.written
            direct["id"] = np.arange(start, start + keep.size, dtype=np.int64)
        self.written += int(keep.size)
        return direct, held_mask

    def _compare_first_read(self, keys: pa.Array, data: Mapping[str, Any], keep: Any) -> None:
        """Whether the written keys are their features' keys of the first read (by row
        number): those were each found once in the file, so the written ones are unique
        without counting them again. Any difference (a feature GDAL skipped in one read
        only, a rewritten file) leaves it to the count at the end."""
        if not self.matches_first_read or self.first_read is None or "row_no" not in data:
            return
        rows = np.asarray(data["row_no"], dtype=np.int64)[keep]
        if rows.size and (rows.min() < 0 or rows.max() >= len(self.first_read)):
            self.matches_first_read = False
            return
        same = pc.equal(keys, self.first_read.take(pa.array(rows))).fill_null(False)
        self.matches_first_read = bool(pc.all(same).as_py() is not False)


def may_apply(conn: Connection, target: Target, expected: int) -> bool:
    """Whether a direct load of ``expected`` features can apply: one key column, a big
    file, and no current version in the scope yet (the file's keys decide the rest)."""
    keys = [k for k in target.key if k != GEOMETRY_KEY]
    if len(keys) != 1 or expected < merge.BULK_ROWS:
        return False
    scope, params = merge._scope_sql(target, "o")
    return not merge._has_current(conn, target, scope, params)


def begin(
    conn: Connection,
    target: Target,
    run_id: int | None,
    source: KeyedSource,
    key_source: str,
    expected: int,
    keys_of: Any,
    provided: Collection[str] = (),
) -> DirectLoad | None:
    """A direct load of ``expected`` features when it applies (module docstring), with
    the target's secondary indexes dropped when the load outweighs the table.
    ``provided``: the target columns the source feeds (the others are all NULL)."""
    if not may_apply(conn, target, expected):
        return None
    values = keys_of(source.read_column(key_source), expected)
    duplicates, sharing = shared_keys(values)
    if sharing > MAX_DUPLICATE_SHARE * expected:
        return None
    load = DirectLoad(
        target, run_id, duplicates, omitted=_unfed(conn, target, provided), first_read=values
    )
    if merge._bulk(conn, target, MergeCounts(inserted=expected)):
        # The GiST builds first: they run on one core, beside the overlap test in
        # Python; the B-tree builds after it take PostgreSQL's parallel workers.
        # Partial indexes of a column the file leaves empty get nothing: they stay.
        saved = drop_secondary_indexes(conn, [target.table], left_null=load.omitted)
        load.saved = sorted(saved, key=lambda statement: " USING gist " not in statement)
        recreate = _suspend_version_check(conn, target)
        load.unchecked = bool(recreate)
        load.saved.extend(recreate)
        if run_id is not None:
            load.saved.extend(_suspend_run_link(conn, target))
        load.saved.extend(_suspend_empty_links(conn, target, load.omitted))
        _reserve_ids(conn, load, expected)
    return load


def _reserve_ids(conn: Connection, load: DirectLoad, expected: int) -> None:
    """Take ``expected`` ids from the id column's sequence at once, so the COPY sends
    them instead of PostgreSQL calling the sequence for every row. Only under the load's
    lock of the table (indexes dropped): every other writer of the table, the only users
    of its sequence, waits for this import."""
    sequence = conn.execute(
        sa.text(
            "SELECT pg_get_serial_sequence(:table, 'id') FROM pg_attribute "
            "WHERE attrelid = CAST(:table AS regclass) AND attname = 'id' AND attidentity <> 'a'"
        ),
        {"table": load.target.table},
    ).scalar_one_or_none()
    if sequence is None:
        return
    first = conn.execute(
        sa.text("SELECT nextval(CAST(:sequence AS regclass))"), {"sequence": sequence}
    ).scalar_one()
    _set_sequence(conn, str(sequence), int(first) + expected - 1)
    load.first_id, load.reserved, load.sequence = int(first), expected, str(sequence)


def _set_sequence(conn: Connection, sequence: str, last: int) -> None:
    conn.execute(
        sa.text("SELECT setval(CAST(:sequence AS regclass), :last)"),
        {"sequence": sequence, "last": last},
    )


def shared_keys(values: pa.Array) -> tuple[pa.Array, int]:
    """The keys several features share and how many features carry them. Files listed
    in key order (most exports) are settled by one comparison of neighbours."""
    present = values.drop_null()
    if len(present) < 2 or pc.all(pc.less(present[:-1], present[1:])).as_py():
        return pa.array([], type=present.type), 0
    counts = pc.value_counts(present)
    shared = counts.filter(pc.greater(counts.field("counts"), 1))
    return shared.field("values"), int(pc.sum(shared.field("counts")).as_py() or 0)


def _unfed(conn: Connection, target: Target, provided: Collection[str]) -> frozenset[str]:
    """Data columns without a source field and without a default: NULL when left out."""
    defaults = set(
        conn.execute(
            sa.text(
                "SELECT attname FROM pg_attribute WHERE attrelid = CAST(:table AS regclass) "
                "AND attnum > 0 AND NOT attisdropped AND atthasdef"
            ),
            {"table": target.table},
        ).scalars()
    )
    keys = set(target.key)
    return frozenset(
        c for c in target.data_columns if c not in provided and c not in keys and c not in defaults
    )


def _all_null(values: Any) -> bool:
    if isinstance(values, pa.Array):
        return bool(values.null_count == len(values))
    if isinstance(values, np.ndarray) and values.dtype != object:
        return values.size == 0
    return all(value is None for value in values)


def _suspend_run_link(conn: Connection, target: Target) -> list[str]:
    """Drop the target's foreign key to the import runs for the load, unless its lock
    is not free at once (module docstring); returns the statement adding it back."""
    found = conn.execute(
        sa.text(
            "SELECT conname, format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, "
            "conname, pg_get_constraintdef(oid)) FROM pg_constraint WHERE contype = 'f' "
            "AND conrelid = CAST(:table AS regclass) "
            "AND confrelid = CAST('core.import_run' AS regclass) "
            "AND conkey = ARRAY[(SELECT attnum FROM pg_attribute WHERE attrelid = "
            "CAST(:table AS regclass) AND attname = 'import_run_id')]"
        ),
        {"table": target.table},
    ).one_or_none()
    if found is None:
        return []
    return _suspend_key(conn, target, str(found[0]), str(found[1]))


def _suspend_empty_links(conn: Connection, target: Target, empty: Collection[str]) -> list[str]:
    """Drop for the load the target's foreign keys on columns the file leaves NULL (a
    parcel's address): PostgreSQL queues a check for every inserted row, NULL or not,
    and runs them all when the COPY ends (a second per million parcels), where adding
    the key back checks the table with one scan. Returns the statements adding them."""
    if not empty:
        return []
    found = conn.execute(
        sa.text(
            "SELECT c.conname, format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, "
            "c.conname, pg_get_constraintdef(c.oid)) FROM pg_constraint c "
            "WHERE c.contype = 'f' AND c.conrelid = CAST(:table AS regclass) "
            "AND (SELECT array_agg(a.attname::text) FROM pg_attribute a "
            "WHERE a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)) "
            "<@ CAST(:empty AS text[]) ORDER BY c.conname"
        ),
        {"table": target.table, "empty": sorted(empty)},
    ).all()
    saved: list[str] = []
    for name, definition in found:
        saved.extend(_suspend_key(conn, target, str(name), str(definition)))
    return saved


def _suspend_key(conn: Connection, target: Target, name: str, definition: str) -> list[str]:
    """Drop the foreign key ``name`` unless the lock it needs on the referenced table
    is not free at once (another import holds it): then it stays and checks the rows."""
    saved = str(conn.execute(sa.text("SELECT current_setting('lock_timeout')")).scalar_one())
    try:
        with conn.begin_nested():
            _lock_timeout(conn, RUN_LOCK_WAIT)
            conn.execute(sa.text(f'ALTER TABLE {target.table} DROP CONSTRAINT "{name}"'))
    except sa.exc.OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise
        return []
    finally:
        _lock_timeout(conn, saved)
    return [definition]


def _lock_timeout(conn: Connection, value: str) -> None:
    conn.execute(sa.text("SELECT set_config('lock_timeout', :t, true)"), {"t": value})


def _suspend_version_check(conn: Connection, target: Target) -> list[str]:
    """Drop the target's version trigger for the load when it cannot fail (module
    docstring); returns the statement recreating it (none when it stays)."""
    check = VERSION_CHECKS.get(target.table)
    if check is None:
        return []
    trigger, scope_columns, key = check
    if tuple(target.scope) != scope_columns or target.key != (key,):
        return []
    conn.execute(
        sa.text("UPDATE core.version_guard SET writes = writes + 1 WHERE table_name = :table"),
        {"table": target.table},
    )
    scope = " AND ".join(f"o.{column} = :scope{n}" for n, column in enumerate(target.scope))
    params = {f"scope{n}": value for n, value in enumerate(target.scope.values())}
    live = conn.execute(
        sa.text(
            f"SELECT EXISTS (SELECT 1 FROM {target.table} o WHERE {scope} "  # noqa: S608
            "AND (o.valid_to IS NULL OR o.valid_to > now()))"
        ),
        params,
    ).scalar_one()
    definition = conn.execute(
        sa.text(
            "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = "
            "CAST(:table AS regclass) AND tgname = :trigger AND tgenabled <> 'D'"
        ),
        {"table": target.table, "trigger": trigger},
    ).scalar_one_or_none()
    if live or definition is None:
        return []
    conn.execute(sa.text(f"DROP TRIGGER {trigger} ON {target.table}"))
    return [str(definition)]


def held_rows(load: DirectLoad) -> dict[str, Any] | None:
    """The held batches as one (for the staging table), or None."""
    if not load.held:
        return None
    names = list(load.held[0])
    return {name: _concat([part[name] for part in load.held]) for name in names}


def finish(
    conn: Connection, load: DirectLoad, run_id: int | None, provided: Sequence[str]
) -> MergeCounts:
    """Rebuild the indexes, analyze, restore the version trigger and the foreign keys,
    insert the staged (merged duplicate) features.

    ANALYZE comes before the keys: adding a key back checks every row with one query,
    and with statistics that query finds the rows of a column the file left empty
    through that column's partial index instead of scanning the table. The features
    inserted after it (duplicates, a few per cent at most) get a second ANALYZE.
    """
    if load.unchecked:
        _require_unique_keys(load)
    if load.sequence is not None and load.first_id is not None and load.written > load.reserved:
        _set_sequence(conn, load.sequence, load.first_id + load.written - 1)  # more than counted
    indexes = [s for s in load.saved if _builds_index(s)]
    recreate_indexes(conn, indexes)
    analyze = sa.text(f"ANALYZE {load.target.table}")
    conn.execute(analyze)
    recreate_indexes(conn, [s for s in load.saved if not _builds_index(s)])
    counts = MergeCounts(inserted=load.written)
    if load.held:
        counts.inserted += merge._insert_all(conn, load.target, run_id, provided).inserted
        conn.execute(analyze)
    return counts


def _builds_index(statement: str) -> bool:
    """Whether a saved statement is an index definition (``pg_get_indexdef`` text)."""
    return statement.startswith(("CREATE INDEX ", "CREATE UNIQUE INDEX "))


def _require_unique_keys(load: DirectLoad) -> None:
    """The keys written while the version trigger was suspended are unique, as the
    first read of the key column promised (a file rewritten during the import fails);
    counted only when they were not all found at their rows of the first read."""
    if not load.written_keys or load.matches_first_read:
        return
    keys = pa.chunked_array(load.written_keys, type=pa.string())
    counts = pc.value_counts(keys)
    repeated = counts.filter(pc.greater(counts.field("counts"), 1))
    if len(repeated):
        raise InvalidInput(
            f"{load.target.key_label} {repeated.field('values')[0].as_py()!r} appears in "
            "several features that the first read of the file did not find: the file "
            "changed during the import; nothing was written"
        )


def _rows(data: Mapping[str, Any], picked: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, values in resolved(data).items():
        if isinstance(values, pa.Array):
            out[name] = values.take(pa.array(picked))
        elif isinstance(values, np.ndarray):
            out[name] = values[picked]
        else:
            out[name] = [values[i] for i in picked.tolist()]
    return out


def _concat(parts: list[Any]) -> Any:
    if all(isinstance(part, pa.Array) for part in parts):
        return pa.concat_arrays(parts)
    if all(isinstance(part, np.ndarray) for part in parts):
        return np.concatenate(parts)
    out: list[Any] = []
    for part in parts:
        out.extend(part.to_pylist() if isinstance(part, pa.Array) else list(part))
    return out
