"""The review queue: acts the linker could not settle, resolved by a clerk.

Resolving replaces the act's links by the clerk's choice (method ``manual``, confidence
1), closes the item and writes both to the audit log in the same transaction. Manual
links are final: a later ``permits link`` leaves such acts alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_core.audit import record_change
from gis_core.errors import Conflict, InvalidInput, NotFound
from permits.linking import refresh_geometry


def open_items(conn: Connection, *, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    """Open items, oldest first, with the act's public identification."""
    rows = conn.execute(
        sa.text(
            """
            SELECT r.id, r.act_id, r.reason, r.detail, r.candidates, r.created_at,
                   a.kind, a.number, a.issued_on, a.cited_numbers, a.address_text,
                   ARRAY(SELECT l.cadastral_number FROM permits.act_parcel l
                         WHERE l.act_id = a.id ORDER BY l.is_primary DESC, l.id) AS linked
            FROM permits.review_item r JOIN permits.act a ON a.id = r.act_id
            WHERE r.state = 'open'
            ORDER BY r.id LIMIT :limit OFFSET :offset
            """
        ),
        {"limit": limit, "offset": offset},
    ).mappings()
    return [dict(row) for row in rows]


def count_open(conn: Connection) -> dict[str, int]:
    """Open items per reason."""
    rows = conn.execute(
        sa.text(
            "SELECT reason, count(*) FROM permits.review_item WHERE state = 'open' "
            "GROUP BY reason ORDER BY count(*) DESC"
        )
    )
    return {str(reason): int(n) for reason, n in rows}


def resolve_item(
    conn: Connection,
    item_id: int,
    *,
    actor: str,
    cadastral_numbers: Sequence[str] = (),
    parcel_ids: Sequence[int] = (),
    note: str | None = None,
) -> dict[str, Any]:
    """Link the item's act to the parcels the clerk chose (the first one primary)."""
    with conn.begin_nested():
        return _resolve(conn, item_id, actor, cadastral_numbers, parcel_ids, note)


def _resolve(
    conn: Connection,
    item_id: int,
    actor: str,
    cadastral_numbers: Sequence[str],
    parcel_ids: Sequence[int],
    note: str | None,
) -> dict[str, Any]:
    item = _lock_open_item(conn, item_id)
    parcels = _chosen_parcels(conn, item["act_id"], cadastral_numbers, parcel_ids)
    before = _links(conn, item["act_id"])
    conn.execute(sa.text("DELETE FROM permits.act_parcel WHERE act_id = :a"), {"a": item["act_id"]})
    for index, (parcel_id, number) in enumerate(parcels):
        conn.execute(
            sa.text(
                "INSERT INTO permits.act_parcel (act_id, parcel_id, cadastral_number, is_primary, "
                "method, confidence, detail) VALUES (:a, :p, :n, :primary, 'manual', 1, :d)"
            ),
            {"a": item["act_id"], "p": parcel_id, "n": number, "primary": index == 0, "d": note},
        )
    conn.execute(
        sa.text(
            "UPDATE permits.act SET link_state = 'linked', version = version + 1, "
            "updated_at = now() WHERE id = :a"
        ),
        {"a": item["act_id"]},
    )
    refresh_geometry(conn, [item["act_id"]])
    resolution = {"parcels": [number for _, number in parcels], "note": note}
    _close(conn, item_id, "resolved", actor, resolution)
    record_change(
        conn,
        actor=actor,
        action="update",
        table="permits.act_parcel",
        row_id=item["act_id"],
        before={"links": before},
        after={"links": _links(conn, item["act_id"])},
        reason=f"review item {item_id} resolved",
    )
    return {"item": item_id, "act_id": item["act_id"], "state": "resolved", **resolution}


def dismiss_item(conn: Connection, item_id: int, *, actor: str, note: str) -> dict[str, Any]:
    """Close an item without links (e.g. the act is about no imobil of the register)."""
    if not note.strip():
        raise InvalidInput("note: say why the item is dismissed", locator="note")
    item = _lock_open_item(conn, item_id)
    _close(conn, item_id, "dismissed", actor, {"note": note})
    record_change(
        conn,
        actor=actor,
        action="update",
        table="permits.review_item",
        row_id=item_id,
        before={"state": "open"},
        after={"state": "dismissed", "note": note},
    )
    return {"item": item_id, "act_id": item["act_id"], "state": "dismissed"}


def _lock_open_item(conn: Connection, item_id: int) -> dict[str, Any]:
    row = (
        conn.execute(
            sa.text("SELECT id, act_id, state FROM permits.review_item WHERE id = :i FOR UPDATE"),
            {"i": item_id},
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise NotFound(f"review item {item_id} does not exist", locator="item")
    if row["state"] != "open":
        raise Conflict(f"review item {item_id} is already {row['state']}", locator="item")
    return dict(row)


def _chosen_parcels(
    conn: Connection, act_id: int, numbers: Sequence[str], parcel_ids: Sequence[int]
) -> list[tuple[int, str]]:
    """The parcel versions the clerk named, in the order named; unknown ones are an error."""
    if not numbers and not parcel_ids:
        raise InvalidInput(
            "name the imobile: cadastral_numbers or parcel_ids", locator="cadastral_numbers"
        )
    chosen: list[tuple[int, str]] = []
    for number in numbers:
        row = conn.execute(
            sa.text(
                "SELECT p.id, p.cadastral_number FROM cadastre.parcel p "
                "JOIN permits.act a ON a.id = :a AND p.uat_siruta = a.uat_siruta "
                "WHERE p.cadastral_number = :n ORDER BY p.valid_to IS NULL DESC, "
                "p.valid_from DESC LIMIT 1"
            ),
            {"a": act_id, "n": number.strip()},
        ).one_or_none()
        if row is None:
            raise InvalidInput(
                f"cadastral_numbers: no imobil {number!r} in the act's UAT",
                locator="cadastral_numbers",
            )
        chosen.append((int(row[0]), str(row[1])))
    for parcel_id in parcel_ids:
        row = conn.execute(
            sa.text(
                "SELECT p.id, p.cadastral_number FROM cadastre.parcel p "
                "JOIN permits.act a ON a.id = :a AND p.uat_siruta = a.uat_siruta WHERE p.id = :p"
            ),
            {"a": act_id, "p": parcel_id},
        ).one_or_none()
        if row is None:
            raise InvalidInput(
                f"parcel_ids: no parcel {parcel_id} in the act's UAT", locator="parcel_ids"
            )
        chosen.append((int(row[0]), str(row[1])))
    return list(dict.fromkeys(chosen))


def _links(conn: Connection, act_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.text(
            "SELECT parcel_id, cadastral_number, is_primary, method, confidence "
            "FROM permits.act_parcel WHERE act_id = :a ORDER BY is_primary DESC, id"
        ),
        {"a": act_id},
    ).mappings()
    return [dict(row) for row in rows]


def _close(
    conn: Connection, item_id: int, state: str, actor: str, resolution: dict[str, Any]
) -> None:
    conn.execute(
        sa.text(
            "UPDATE permits.review_item SET state = :state, resolved_at = now(), "
            "resolved_by = :actor, resolution = CAST(:resolution AS jsonb) WHERE id = :i"
        ),
        {
            "state": state,
            "actor": actor,
            "resolution": orjson.dumps(resolution).decode(),
            "i": item_id,
        },
    )
