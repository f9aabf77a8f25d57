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
- the version rule holds: the target's statement trigger checks the whole COPY at its
  end (migration 0007), so a clash still fails the import and leaves nothing behind;
- rejections, repairs, area, sliver and overlap checks run on the batches as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_core.bulk import drop_secondary_indexes, recreate_indexes
from importers import merge
from importers.merge import GEOMETRY_KEY, MergeCounts, Target

# A file whose duplicates are more than this share goes through staging (they are held
# in memory until the end here).
MAX_DUPLICATE_SHARE = 0.05


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

    @property
    def key(self) -> str:
        return next(k for k in self.target.key if k != GEOMETRY_KEY)

    def columns(self) -> list[str]:
        """The target's columns each COPY writes (valid_from takes its default, now())."""
        return [
            *self.target.scope,
            *self.target.data_columns,
            *self.target.geometry_columns,
            "import_run_id",
        ]

    def split(self, data: Mapping[str, Any], count: int) -> tuple[dict[str, Any] | None, Any]:
        """The batch's rows for the target (with scope and run columns) and the mask of
        rows held for staging (those of duplicated keys)."""
        keys = data[self.key]
        held = pc.is_in(keys, value_set=self.duplicates).fill_null(False)
        held_mask = np.asarray(held.to_numpy(zero_copy_only=False), dtype=bool)
        if held_mask.any():
            self.held.append(_rows(data, np.flatnonzero(held_mask)))
        keep = np.flatnonzero(~held_mask)
        if keep.size == 0:
            return None, held_mask
        direct = _rows(data, keep) if held_mask.any() else dict(data)
        for column, value in self.target.scope.items():
            direct[column] = np.full(keep.size, value)
        direct["import_run_id"] = (
            np.full(keep.size, self.run_id, dtype=np.int64)
            if self.run_id is not None
            else pa.nulls(keep.size, pa.int64())
        )
        self.written += int(keep.size)
        return direct, held_mask


def begin(
    conn: Connection,
    target: Target,
    run_id: int | None,
    source: KeyedSource,
    key_source: str,
    expected: int,
    keys_of: Any,
) -> DirectLoad | None:
    """A direct load of ``expected`` features when it applies (module docstring), with
    the target's secondary indexes dropped when the load outweighs the table."""
    keys = [k for k in target.key if k != GEOMETRY_KEY]
    if len(keys) != 1 or expected < merge.BULK_ROWS:
        return None
    scope, params = merge._scope_sql(target, "o")
    if merge._has_current(conn, target, scope, params):
        return None
    values = keys_of(source.read_column(key_source), expected)
    counts = pc.value_counts(values.drop_null())
    shared = counts.filter(pc.greater(counts.field("counts"), 1))
    duplicates = shared.field("values")
    if int(pc.sum(shared.field("counts")).as_py() or 0) > MAX_DUPLICATE_SHARE * expected:
        return None
    load = DirectLoad(target, run_id, duplicates)
    if merge._bulk(conn, target, MergeCounts(inserted=expected)):
        load.saved = drop_secondary_indexes(conn, [target.table])
    return load


def held_rows(load: DirectLoad) -> dict[str, Any] | None:
    """The held batches as one (for the staging table), or None."""
    if not load.held:
        return None
    names = list(load.held[0])
    return {name: _concat([part[name] for part in load.held]) for name in names}


def finish(
    conn: Connection, load: DirectLoad, run_id: int | None, provided: Sequence[str]
) -> MergeCounts:
    """Rebuild the indexes, insert the staged (merged duplicate) features, analyze."""
    recreate_indexes(conn, load.saved)
    counts = MergeCounts(inserted=load.written)
    if load.held:
        counts.inserted += merge._insert_all(conn, load.target, run_id, provided).inserted
    conn.execute(sa.text(f"ANALYZE {load.target.table}"))
    return counts


def _rows(data: Mapping[str, Any], picked: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, values in data.items():
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
