"""The audit log: who changed what, when, with the row before and after.

Every change a person makes through the platform (an act edited by a clerk, a link
resolved by hand, a plan's status changed) is written here in the same transaction as the
change itself, so the log and the data can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

Action = Literal["insert", "update", "delete"]


def record_change(
    conn: Connection,
    *,
    actor: str,
    action: Action,
    table: str,
    row_id: object,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    reason: str | None = None,
) -> int:
    """Append one entry to ``core.audit_log``; returns its id."""
    entry_id: int = conn.execute(
        sa.text(
            "INSERT INTO core.audit_log (actor, action, table_name, row_id, before, after, reason) "
            "VALUES (:actor, :action, :table, :row_id, CAST(:before AS jsonb), "
            "CAST(:after AS jsonb), :reason) RETURNING id"
        ),
        {
            "actor": actor,
            "action": action,
            "table": table,
            "row_id": str(row_id),
            "before": _json(before),
            "after": _json(after),
            "reason": reason,
        },
    ).scalar_one()
    return entry_id


def history(conn: Connection, table: str, row_id: object) -> list[dict[str, Any]]:
    """The changes of one row, oldest first."""
    rows = conn.execute(
        sa.text(
            "SELECT id, at, actor, action, before, after, reason FROM core.audit_log "
            "WHERE table_name = :table AND row_id = :row_id ORDER BY id"
        ),
        {"table": table, "row_id": str(row_id)},
    ).mappings()
    return [dict(row) for row in rows]


def _json(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else orjson.dumps(value, default=str).decode()
