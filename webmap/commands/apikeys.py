"""``urbangis apikeys``: keys for machine clients such as the e-services portal."""

from __future__ import annotations

import click

from gis_core.access import DEFAULT_KEY_RATE_LIMIT, ROLES, create_api_key, list_api_keys
from gis_core.access import revoke_api_key as revoke_key
from gis_core.db import engine_for
from webmap.commands.context import current_settings


@click.group(name="apikeys")
def group() -> None:
    """Create, list and revoke API keys (sent by clients as the X-API-Key header)."""


@group.command(name="create")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), default="portal", show_default=True)
@click.option(
    "--rate",
    "rate",
    type=click.IntRange(min=1),
    default=DEFAULT_KEY_RATE_LIMIT,
    show_default=True,
    help="Requests per minute the key may make (shared by all server processes).",
)
def create(name: str, role: str, rate: int) -> None:
    """Create a key for NAME (who uses it) and print it once: it is stored only hashed."""
    with engine_for(current_settings()).begin() as conn:
        key = create_api_key(conn, name, role, rate_limit_per_minute=rate)
    click.echo(key)
    click.echo(
        f"urbangis: key {key.split('.')[0]} for {name!r} (role {role}, {rate}/min) created; "
        "keep it now, it cannot be shown again",
        err=True,
    )


@group.command(name="list")
@click.option("--active", is_flag=True, help="Leave revoked keys out.")
def list_keys(active: bool) -> None:
    """One line per key: id, role, rate limit, created, revoked, name (never the secret)."""
    with engine_for(current_settings()).connect() as conn:
        keys = list_api_keys(conn, include_revoked=not active)
    for key in keys:
        revoked = key.revoked_at.strftime("%Y-%m-%d %H:%M") if key.revoked_at else "-"
        click.echo(
            f"{key.key_id}  {key.role:<7} {key.rate_limit_per_minute:>6}/min  "
            f"{key.created_at:%Y-%m-%d %H:%M}  revoked={revoked}  {key.name}"
        )


@group.command(name="revoke")
@click.argument("key_id")
def revoke(key_id: str) -> None:
    """Revoke KEY_ID (the part before the dot); servers stop accepting it within a minute."""
    with engine_for(current_settings()).begin() as conn:
        revoke_key(conn, key_id)
    click.echo(f"urbangis: key {key_id.partition('.')[0]} revoked")
