"""``urbangis users``: staff accounts (clerks, planners, administrators)."""

from __future__ import annotations

import click
import sqlalchemy as sa

from gis_core.db import engine_for
from webmap.auth import STAFF_ROLES, create_staff_user
from webmap.commands.context import current_settings


@click.group(name="users")
def group() -> None:
    """Staff accounts that sign in at /auth/login."""


@group.command(name="create")
@click.argument("login")
@click.option("--role", type=click.Choice(STAFF_ROLES), required=True)
@click.option("--name", "full_name", default=None, help="Full name shown in the audit log.")
@click.password_option(help="Password (prompted twice when not given).")
def create(login: str, role: str, full_name: str | None, password: str) -> None:
    """Create the staff account LOGIN; only a hash of the password is stored."""
    with engine_for(current_settings()).begin() as conn:
        create_staff_user(conn, login, password, role, full_name)
    click.echo(f"urbangis: user {login} ({role}) created")


@group.command(name="list")
def list_users() -> None:
    """One line per account: login, role, active, full name."""
    with engine_for(current_settings()).connect() as conn:
        rows = conn.execute(
            sa.text("SELECT login, role, active, full_name FROM core.staff_user ORDER BY login")
        ).all()
    for login, role, active, full_name in rows:
        click.echo(
            f"{login:<20} {role:<8} {'active' if active else 'inactive':<8} {full_name or ''}"
        )
