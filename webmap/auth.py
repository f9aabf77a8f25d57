"""Who is calling: anonymous (``public``), an API key (``X-API-Key``) or a staff login.

The role found here is the only input the layer rules (``layers.roles``) take. A wrong
or revoked key is refused (401) rather than downgraded to public, so a misconfigured
portal notices at once. Key storage and verification live in ``gis_core.access`` (the
CLI shares them); verified keys are remembered for a minute per process so a busy portal
does not cost a query per request. Each key has a per-minute request budget shared by
all worker processes of the host; anonymous API callers may get one per IP address.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import sqlalchemy as sa
from flask import Blueprint, Response, g, redirect, request, session, url_for
from sqlalchemy.engine import Connection, make_url
from werkzeug.security import check_password_hash, generate_password_hash

from gis_core.access import (
    API_KEY_HEADER,
    ROLES,
    Budget,
    KeyGrant,
    RateLimiter,
    TooManyRequests,
    Unauthorized,
    create_api_key,
    sha256_hex,
    verify_api_key,
)
from gis_core.access import revoke_api_key as access_revoke
from gis_core.errors import Conflict, InvalidParameter
from gis_core.settings import Settings
from webmap.app import json_response, state

__all__ = [
    "API_KEY_HEADER",
    "KEYS",
    "ROLES",
    "STAFF_ROLES",
    "KeyGrant",
    "TooManyRequests",
    "Unauthorized",
    "check_staff_login",
    "create_api_key",
    "create_staff_user",
    "current_role",
    "revoke_api_key",
    "verify_api_key",
]

STAFF_ROLES = ("clerk", "planner", "admin")
KEY_CACHE_SECONDS = 60.0
LIMITER_EXTENSION = "urbangis_rate_limiter"

blueprint = Blueprint("auth", __name__, url_prefix="/auth")


class _KeyCache:
    """Verified keys, by the hash of the whole key, for ``KEY_CACHE_SECONDS``."""

    def __init__(self) -> None:
        self._grants: dict[str, tuple[float, KeyGrant]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str) -> KeyGrant | None:
        with self._lock:
            entry = self._grants.get(digest)
        if entry is None or time.monotonic() - entry[0] > KEY_CACHE_SECONDS:
            return None
        return entry[1]

    def put(self, digest: str, grant: KeyGrant) -> None:
        with self._lock:
            self._grants[digest] = (time.monotonic(), grant)

    def forget(self) -> None:
        """Drop every remembered grant (after a revocation in this process)."""
        with self._lock:
            self._grants.clear()


KEYS = _KeyCache()


# -- staff accounts (werkzeug hashes, so they stay in the web layer) ----------------
def create_staff_user(
    conn: Connection, login: str, password: str, role: str, full_name: str | None = None
) -> None:
    if role not in STAFF_ROLES:
        raise InvalidParameter(f"staff role must be one of {', '.join(STAFF_ROLES)}")
    taken = conn.execute(
        sa.text("SELECT 1 FROM core.staff_user WHERE login = :l"), {"l": login}
    ).first()
    if taken is not None:
        raise Conflict(f"login {login!r} is taken", locator="login")
    conn.execute(
        sa.text(
            "INSERT INTO core.staff_user (login, password_hash, full_name, role) "
            "VALUES (:login, :hash, :name, :role)"
        ),
        {
            "login": login,
            "hash": generate_password_hash(password),
            "name": full_name,
            "role": role,
        },
    )


def check_staff_login(conn: Connection, login: str, password: str) -> str | None:
    """The staff user's role when the password is right, else None."""
    row = conn.execute(
        sa.text("SELECT password_hash, role FROM core.staff_user WHERE login = :l AND active"),
        {"l": login},
    ).one_or_none()
    if row is None or not check_password_hash(str(row[0]), password):
        return None
    return str(row[1])


def revoke_api_key(conn: Connection, key_id: str) -> None:
    """Revoke a key and forget this process's cached grants at once.

    Other processes notice within ``KEY_CACHE_SECONDS``.
    """
    access_revoke(conn, key_id)
    KEYS.forget()


# -- request side ---------------------------------------------------------------------
def current_role() -> str:
    """The caller's role for this request (resolved once, kept in ``g``)."""
    cached = g.get("urbangis_role")
    if isinstance(cached, str):
        return cached
    role = _resolve_role()
    g.urbangis_role = role
    return role


def current_key_id() -> str | None:
    """The id of the API key this request came with (after ``current_role``), if any."""
    current_role()
    key_id = g.get("urbangis_key_id")
    return key_id if isinstance(key_id, str) else None


def _resolve_role() -> str:
    key = request.headers.get(API_KEY_HEADER)
    if key:
        grant = _grant_for(key)
        g.urbangis_key_id = grant.key_id
        spend_budget(f"key-{grant.key_id}", grant.rate_limit, who="this API key")
        return grant.role
    role = session.get("role")
    if isinstance(role, str) and role in STAFF_ROLES:
        return role
    return "public"


def _grant_for(key: str) -> KeyGrant:
    digest = sha256_hex(key)
    grant = KEYS.get(digest)
    if grant is None:
        with state().connect() as conn:
            grant = verify_api_key(conn, key)
        KEYS.put(digest, grant)
    return grant


_LIMITERS: dict[Path, RateLimiter] = {}
# Settings objects already looked up, by identity (resolving the folder costs system calls;
# not something to repeat per request), with the settings kept so an id is never reused.
_LIMITER_OF: dict[int, tuple[Settings, RateLimiter]] = {}
_LIMITERS_LOCK = threading.Lock()


def budget_folder(settings: Settings) -> Path:
    """Where the budgets of a deployment are counted: ``<data dir>/ratelimit/<database>``.

    The workers of one deployment share it. Keys and their budgets belong to a database,
    so deployments (or concurrent test runs) that share a data folder but not a database
    never count each other's requests.
    """
    folder = Path(settings.data_dir).resolve() / "ratelimit"
    if settings.database_url is None:
        return folder / "embedded"
    url = make_url(settings.database_url.get_secret_value())
    where = "|".join(
        str(part)
        for part in (url.host, url.port, url.query.get("host"), url.database, url.username)
    )
    return folder / f"db-{sha256_hex(where)[:16]}"


def rate_limiter() -> RateLimiter:
    """The limiter of this app's deployment (see ``budget_folder``)."""
    settings = state().settings
    found = _LIMITER_OF.get(id(settings))
    if found is not None and found[0] is settings:
        return found[1]
    folder = budget_folder(settings)
    with _LIMITERS_LOCK:
        limiter = _LIMITERS.get(folder)
        if limiter is None:
            limiter = _LIMITERS[folder] = RateLimiter(folder)
        _LIMITER_OF[id(settings)] = (settings, limiter)
    return limiter


def spend_budget(bucket: str, limit: int, *, who: str) -> Budget:
    """Count this request against ``bucket``; a 429 with ``Retry-After`` when used up."""
    budget = rate_limiter().spend(bucket, limit)
    g.urbangis_budget = budget
    if not budget.allowed:
        raise TooManyRequests(
            f"{who} may make {limit} requests per minute; retry in {budget.retry_after} s",
            retry_after=budget.retry_after,
            limit=limit,
        )
    return budget


@blueprint.after_app_request
def budget_headers(response: Response) -> Response:
    """``X-RateLimit-*`` (and ``Retry-After`` on a 429) for requests that spent a budget."""
    budget = g.get("urbangis_budget")
    if isinstance(budget, Budget):
        response.headers["X-RateLimit-Limit"] = str(budget.limit)
        response.headers["X-RateLimit-Remaining"] = str(budget.remaining)
        if not budget.allowed:
            response.headers["Retry-After"] = str(budget.retry_after)
    return response


@blueprint.post("/login")
def login() -> Response:
    """Form or JSON login; the session cookie then carries the staff role."""
    data = request.get_json(silent=True) or request.form
    user, password = str(data.get("login", "")), str(data.get("password", ""))
    with state().connect() as conn:
        role = check_staff_login(conn, user, password)
    if role is None:
        raise Unauthorized("wrong login or password")
    session.clear()
    session["login"] = user
    session["role"] = role
    return json_response({"login": user, "role": role})


@blueprint.post("/logout")
def logout() -> Response:
    session.clear()
    if request.accept_mimetypes.accept_html and not request.accept_mimetypes.accept_json:
        return redirect(url_for("first_map.map_page"))  # type: ignore[return-value]
    return json_response({"role": "public"})


@blueprint.get("/whoami")
def whoami() -> Response:
    return json_response({"role": current_role(), "login": session.get("login")})
