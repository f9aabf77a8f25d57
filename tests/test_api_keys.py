"""API keys from the command line, and request budgets shared by worker processes."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import Connection

from gis_core.access import (
    RateLimiter,
    Unauthorized,
    create_api_key,
    list_api_keys,
    verify_api_key,
)
from gis_core.errors import InvalidParameter, NotFound
from gis_core.settings import Settings
from webmap.cli import main


def test_cli_creates_lists_and_revokes_keys(settings: Settings, db: Connection) -> None:
    runner = CliRunner()
    created = runner.invoke(
        main, ["apikeys", "create", "e-services portal", "--rate", "90"], obj={"settings": settings}
    )
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[0]
    key_id = key.split(".")[0]
    listed = runner.invoke(main, ["apikeys", "list"], obj={"settings": settings})
    line = next(line for line in listed.stdout.splitlines() if line.startswith(key_id))
    assert "portal" in line and "90/min" in line and "revoked=-" in line
    assert key.split(".")[1] not in listed.stdout
    with db.begin_nested():
        grant = verify_api_key(db, key)
    assert grant.role == "portal" and grant.rate_limit == 90
    revoked = runner.invoke(main, ["apikeys", "revoke", key_id], obj={"settings": settings})
    assert revoked.exit_code == 0, revoked.output
    with pytest.raises(Unauthorized):
        verify_api_key(db, key)
    active = runner.invoke(main, ["apikeys", "list", "--active"], obj={"settings": settings})
    assert key_id not in active.stdout
    unknown = runner.invoke(main, ["apikeys", "revoke", "nosuchkey"], obj={"settings": settings})
    assert unknown.exit_code == 2 and "no API key" in unknown.output


def test_key_rules(db: Connection) -> None:
    with pytest.raises(InvalidParameter, match="role"):
        create_api_key(db, "x", "superuser")
    with pytest.raises(InvalidParameter, match="name"):
        create_api_key(db, "  ", "portal")
    with pytest.raises(InvalidParameter, match="rate"):
        create_api_key(db, "x", "portal", rate_limit_per_minute=0)
    key = create_api_key(db, "stored hashed", "portal")
    stored = db.execute(
        sa.text("SELECT secret_sha256 FROM core.api_key WHERE key_id = :k"),
        {"k": key.split(".")[0]},
    ).scalar_one()
    assert key.split(".")[1] not in stored and len(stored) == 64
    assert any(k.name == "stored hashed" for k in list_api_keys(db))
    from gis_core.access import revoke_api_key

    with pytest.raises(NotFound):
        revoke_api_key(db, "missing")


def test_cli_creates_staff_users(settings: Settings, db: Connection) -> None:
    runner = CliRunner()
    arguments = ["users", "create", "clerk-cli", "--role", "clerk", "--password", "s3cret!"]
    made = runner.invoke(main, arguments, obj={"settings": settings})
    try:
        assert made.exit_code == 0, made.output
        again = runner.invoke(main, arguments, obj={"settings": settings})
        assert again.exit_code == 2 and "taken" in again.output
        listed = runner.invoke(main, ["users", "list"], obj={"settings": settings})
        assert "clerk-cli" in listed.stdout and "clerk" in listed.stdout
    finally:
        from gis_core.db import create_engine

        engine = create_engine(settings)
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM core.staff_user WHERE login = 'clerk-cli'"))
        engine.dispose()


# -- budgets ---------------------------------------------------------------------------
def test_sliding_window_budget(tmp_path: Path) -> None:
    limiter = RateLimiter(tmp_path)
    start = 600.0  # the start of a minute
    outcomes = [limiter.spend("key-a", 3, now=start + i).allowed for i in range(4)]
    assert outcomes == [True, True, True, False]
    refused = limiter.spend("key-a", 3, now=start + 5)
    assert not refused.allowed and 1 <= refused.retry_after <= 60
    assert limiter.spend("key-b", 3, now=start + 5).allowed  # buckets are separate
    # Half-way through the next minute half of the previous minute's calls still count.
    assert limiter.spend("key-a", 3, now=start + 90).allowed
    assert not limiter.spend("key-a", 3, now=start + 90.5).allowed
    assert limiter.spend("key-a", 3, now=start + 200).remaining == 2


def _spend_many(folder: str, calls: int, results: multiprocessing.Queue) -> None:
    limiter = RateLimiter(Path(folder))
    allowed = sum(limiter.spend("key-shared", 50).allowed for _ in range(calls))
    results.put(allowed)


def test_workers_share_one_budget(tmp_path: Path) -> None:
    """Three processes making 40 calls each against a budget of 50 get 50 in all."""
    context = multiprocessing.get_context("fork")
    results: multiprocessing.Queue = context.Queue()
    workers = [
        context.Process(target=_spend_many, args=(str(tmp_path), 40, results)) for _ in range(3)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert sum(results.get(timeout=5) for _ in workers) == 50


def test_without_a_folder_budgets_stay_in_the_process(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    limiter = RateLimiter(blocked / "sub")
    assert [limiter.spend("k", 1, now=0.0).allowed for _ in range(2)] == [True, False]


def test_a_budget_never_waits_long_for_a_stuck_lock(tmp_path: Path) -> None:
    """Another process holding a budget file's lock (stopped, say) delays a request by
    ``lock_wait_s`` at most; that call is counted in this process instead."""
    import fcntl
    import os
    import threading

    limiter = RateLimiter(tmp_path, lock_wait_s=0.05)
    assert limiter.spend("key-stuck", 5, now=600.0).allowed
    holder = os.open(tmp_path / "key-stuck", os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)
    outcome: list[bool] = []
    caller = threading.Thread(
        target=lambda: outcome.append(limiter.spend("key-stuck", 5, now=601.0).allowed),
        daemon=True,
    )
    try:
        caller.start()
        caller.join(timeout=60)
        assert not caller.is_alive(), "the budget waited for the lock"
    finally:
        fcntl.flock(holder, fcntl.LOCK_UN)
        os.close(holder)
    assert outcome == [True]
    # Once the lock is free the shared count is used again: it saw only the first call.
    assert limiter.spend("key-stuck", 5, now=602.0).remaining == 3


def test_a_busy_budget_lock_is_tried_again_soon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lock held briefly by another process is tried again within a millisecond at
    most: a request never sleeps far past its release."""
    import fcntl
    import os

    import gis_core.access as access

    limiter = RateLimiter(tmp_path)
    assert limiter.spend("key-busy", 5, now=600.0).allowed
    holder = os.open(tmp_path / "key-busy", os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 8:  # the other process is done
            fcntl.flock(holder, fcntl.LOCK_UN)

    monkeypatch.setattr(access.time, "sleep", pause)
    try:
        assert limiter.spend("key-busy", 5, now=601.0).remaining == 3
    finally:
        os.close(holder)
    assert len(pauses) == 8
    assert pauses[0] <= 0.0001 and max(pauses) <= 0.001
