"""Import runs and the audit log."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gis_core import audit, runs
from gis_core.errors import NotFound


def test_run_life_cycle(engine: Engine) -> None:
    run_id = runs.open_run(engine, "cadastre", "parcels.gpkg", {"mode": "append"}, actor="clerk1")
    with engine.begin() as conn:
        assert runs.get_run(conn, run_id).status == "running"
        runs.finish_run(conn, run_id, "succeeded", {"inserted": 3}, {"rejected": []})
    with engine.connect() as conn:
        record = runs.get_run(conn, run_id)
        assert record.status == "succeeded"
        assert record.counts == {"inserted": 3}
        assert record.parameters == {"mode": "append"}
        assert record.finished_at is not None
        assert run_id in [run.id for run in runs.list_runs(conn, kind="cadastre")]


def test_failed_run_keeps_its_reason(engine: Engine) -> None:
    run_id = runs.open_run(engine, "zoning", "zones.shp")
    runs.fail_run(engine, run_id, "zones.shp row 4: UTR code missing")
    with engine.connect() as conn:
        record = runs.get_run(conn, run_id)
    assert record.status == "failed"
    assert record.report == {"error": "zones.shp row 4: UTR code missing"}


def test_unknown_run_is_not_found(db: Connection) -> None:
    with pytest.raises(NotFound, match="import run 987654321"):
        runs.get_run(db, 987654321)


def test_audit_history_of_a_row(db: Connection) -> None:
    audit.record_change(
        db, actor="ana", action="insert", table="permits.act", row_id=7, after={"n": 1}
    )
    audit.record_change(
        db,
        actor="ion",
        action="update",
        table="permits.act",
        row_id=7,
        before={"n": 1},
        after={"n": 2},
        reason="typo",
    )
    changes = audit.history(db, "permits.act", 7)
    assert [c["actor"] for c in changes] == ["ana", "ion"]
    assert changes[1]["before"] == {"n": 1} and changes[1]["after"] == {"n": 2}


def test_audit_refuses_unknown_actions(db: Connection) -> None:
    with pytest.raises(sa.exc.IntegrityError):
        audit.record_change(db, actor="x", action="merge", table="t", row_id=1)  # type: ignore[arg-type]
