"""Shared access to the settings of the running command."""

from __future__ import annotations

import click

from gis_core.settings import Settings, load_settings


def current_settings() -> Settings:
    """Settings of this invocation, loaded once (lazily, so ``--help`` never fails)."""
    root = click.get_current_context().find_root()
    root.ensure_object(dict)
    if "settings" not in root.obj:
        root.obj["settings"] = load_settings()
    settings: Settings = root.obj["settings"]
    return settings
