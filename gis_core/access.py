"""API keys and request budgets, framework-free (the web layer and the CLI share them).

A key is ``<key_id>.<secret>``; only the secret's SHA-256 is stored and compared in
constant time, so a leaked database never yields working keys. Budgets are per key (or
per anonymous client) and per minute, counted in small files under the data folder that
every worker process on the host locks and updates: two gunicorn workers share one
budget instead of each granting the full amount.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import math
import os
import re
import secrets
import struct
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_core.errors import InvalidParameter, NotFound, UrbanGisError

ROLES = ("public", "portal", "clerk", "planner", "admin")
API_KEY_HEADER = "X-API-Key"
DEFAULT_KEY_RATE_LIMIT = 600
WINDOW_SECONDS = 60.0
# Longest wait for another process's lock on a budget file (it holds it for microseconds).
LOCK_WAIT_SECONDS = 2.0


class Unauthorized(UrbanGisError):
    """The credentials sent are wrong, unknown or revoked."""

    http_status = 401
    ogc_code = "NotAuthorized"


class TooManyRequests(UrbanGisError):
    """A client used up its requests for this minute."""

    http_status = 429
    ogc_code = "TooManyRequests"

    def __init__(self, message: str, *, retry_after: int, limit: int) -> None:
        super().__init__(message, locator=API_KEY_HEADER)
        self.retry_after = retry_after
        self.limit = limit


@dataclass(frozen=True)
class KeyGrant:
    """What a verified key may do."""

    key_id: str
    role: str
    rate_limit: int


@dataclass(frozen=True)
class KeyInfo:
    """A stored key as ``apikeys list`` shows it (never the secret)."""

    key_id: str
    name: str
    role: str
    rate_limit_per_minute: int
    created_at: datetime
    revoked_at: datetime | None


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def create_api_key(
    conn: Connection, name: str, role: str, *, rate_limit_per_minute: int = DEFAULT_KEY_RATE_LIMIT
) -> str:
    """Store a new key and return it in full; it is never shown again."""
    if role not in ROLES:
        raise InvalidParameter(f"unknown role {role!r}", locator="role")
    if not name.strip():
        raise InvalidParameter("a key needs a name (who uses it)", locator="name")
    if rate_limit_per_minute < 1:
        raise InvalidParameter("the rate limit must be at least 1 per minute", locator="rate")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(24)
    conn.execute(
        sa.text(
            "INSERT INTO core.api_key (key_id, secret_sha256, name, role, rate_limit_per_minute) "
            "VALUES (:key_id, :digest, :name, :role, :limit)"
        ),
        {
            "key_id": key_id,
            "digest": sha256_hex(secret),
            "name": name.strip(),
            "role": role,
            "limit": rate_limit_per_minute,
        },
    )
    return f"{key_id}.{secret}"


def list_api_keys(conn: Connection, *, include_revoked: bool = True) -> list[KeyInfo]:
    rows = conn.execute(
        sa.text(
            "SELECT key_id, name, role, rate_limit_per_minute, created_at, revoked_at "
            "FROM core.api_key WHERE :all OR revoked_at IS NULL ORDER BY created_at, id"
        ),
        {"all": include_revoked},
    ).all()
    return [KeyInfo(*row) for row in rows]


def revoke_api_key(conn: Connection, key_id: str) -> None:
    """Mark a key revoked (kept for the record); an unknown id is an error, not a no-op."""
    found = conn.execute(
        sa.text(
            "UPDATE core.api_key SET revoked_at = coalesce(revoked_at, now()) "
            "WHERE key_id = :k RETURNING key_id"
        ),
        {"k": key_id.partition(".")[0].strip()},
    ).first()
    if found is None:
        raise NotFound(f"no API key with id {key_id!r}", locator="key_id")


def verify_api_key(conn: Connection, key: str) -> KeyGrant:
    """The grant of a valid, unrevoked key; anything else is a 401."""
    key_id, _, secret = key.strip().partition(".")
    if not key_id or not secret:
        raise Unauthorized("malformed API key", locator=API_KEY_HEADER)
    row = conn.execute(
        sa.text(
            "SELECT secret_sha256, role, rate_limit_per_minute FROM core.api_key "
            "WHERE key_id = :k AND revoked_at IS NULL"
        ),
        {"k": key_id},
    ).one_or_none()
    if row is None or not hmac.compare_digest(str(row[0]), sha256_hex(secret)):
        raise Unauthorized("unknown or revoked API key", locator=API_KEY_HEADER)
    return KeyGrant(key_id=key_id, role=str(row[1]), rate_limit=int(row[2]))


# -- request budgets -----------------------------------------------------------------
_RECORD = struct.Struct("<qqq")  # window number, calls in it, calls in the window before
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class Budget:
    """The outcome of one request against a budget."""

    allowed: bool
    limit: int
    remaining: int
    retry_after: int


class RateLimiter:
    """Sliding one-minute windows per bucket, shared by the processes of one host.

    The count is the classic two-window estimate (calls in this minute plus the previous
    minute's calls weighted by how much of it still lies in the last 60 s). Each bucket is
    a 24-byte file locked with ``flock`` while it is read and written; without a usable
    folder the counts live in this process only. A bucket whose lock cannot be had within
    ``lock_wait_s`` (a process stopped while holding it, a folder on a hung network share)
    is counted in this process for that call: a budget may then be a little generous, but
    a request never waits on it for longer than that.
    """

    def __init__(self, folder: Path | None, *, lock_wait_s: float = LOCK_WAIT_SECONDS) -> None:
        self._folder = folder
        self._lock_wait_s = lock_wait_s
        self._fds: dict[str, int] = {}
        self._pid = os.getpid()
        self._memory: dict[str, tuple[int, int, int]] = {}
        self._lock = threading.Lock()
        if folder is not None:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError:
                self._folder = None

    def spend(self, bucket: str, limit: int, now: float | None = None) -> Budget:
        """Count one call in ``bucket`` unless that would exceed ``limit`` per minute."""
        now = time.time() if now is None else now
        window = int(now // WINDOW_SECONDS)
        into = (now % WINDOW_SECONDS) / WINDOW_SECONDS
        with self._lock:
            if self._folder is None:
                return self._spend_in_memory(bucket, limit, window, into)
            fd = self._fd(bucket)
            if not _lock(fd, self._lock_wait_s):
                return self._spend_in_memory(bucket, limit, window, into)
            try:
                record = _decode(os.pread(fd, _RECORD.size, 0))
                budget, record = _decide(record, limit, window, into)
                os.pwrite(fd, _RECORD.pack(*record), 0)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        return budget

    def _spend_in_memory(self, bucket: str, limit: int, window: int, into: float) -> Budget:
        budget, record = _decide(self._memory.get(bucket), limit, window, into)
        self._memory[bucket] = record
        return budget

    def _fd(self, bucket: str) -> int:
        """The bucket's file, opened once per process (a forked child reopens its own:
        ``flock`` locks belong to the open file, which parent and child would share)."""
        if self._pid != os.getpid():
            self._fds.clear()
            self._pid = os.getpid()
        fd = self._fds.get(bucket)
        if fd is None:
            assert self._folder is not None
            name = _SAFE_NAME.sub("_", bucket)[:100] or "_"
            fd = os.open(self._folder / name, os.O_RDWR | os.O_CREAT, 0o600)
            self._fds[bucket] = fd
        return fd


# Pauses between tries for a budget lock another process holds: it is held for
# microseconds, or for as long as its holder waits for its own interpreter lock (a few
# milliseconds at worst); pauses doubling from 0.5 ms to 20 ms made a waiter oversleep
# the release by as much again (a 5 ms 99th percentile per request under load).
FIRST_PAUSE_S = 0.00005
LONGEST_PAUSE_S = 0.001


def _lock(fd: int, wait_s: float) -> bool:
    """``flock`` the file exclusively, giving up after ``wait_s`` seconds."""
    deadline = time.monotonic() + wait_s
    pause = FIRST_PAUSE_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE_S)


def _decode(data: bytes) -> tuple[int, int, int] | None:
    if len(data) != _RECORD.size:
        return None
    window, current, previous = _RECORD.unpack(data)
    return int(window), int(current), int(previous)


def _decide(
    record: tuple[int, int, int] | None, limit: int, window: int, into: float
) -> tuple[Budget, tuple[int, int, int]]:
    """The budget for one more call and the record to store."""
    current = previous = 0
    if record is not None:
        stored_window, stored_current, stored_previous = record
        if stored_window == window:
            current, previous = stored_current, stored_previous
        elif stored_window == window - 1:
            previous = stored_current
    used = previous * (1.0 - into) + current
    if used + 1 > limit:
        # Time until the weighted previous window has drained enough for one more call.
        wait = WINDOW_SECONDS * (1.0 - into)
        if previous and current < limit:
            wait = WINDOW_SECONDS * ((used + 1 - limit) / previous)
        retry = max(1, math.ceil(wait))
        return Budget(False, limit, 0, retry), (window, current, previous)
    current += 1
    remaining = max(0, math.floor(limit - used - 1))
    return Budget(True, limit, remaining, 0), (window, current, previous)
