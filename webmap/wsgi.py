"""WSGI entry point for gunicorn and other servers: ``webmap.wsgi:app``.

The app is built on first access of ``app`` (a module ``__getattr__``), not at import,
so importing this module never reads settings or touches a database. Each gunicorn
worker builds its own app from the same ``URBANGIS_*`` environment (the factory string
``webmap.app:create_app()`` is equivalent).
"""

from __future__ import annotations

from typing import Any

from flask import Flask

_app: Flask | None = None


def get_app() -> Flask:
    """The process's app, built once from the environment."""
    global _app  # one app per process is the point
    if _app is None:
        from webmap.app import create_app

        _app = create_app()
    return _app


def __getattr__(name: str) -> Any:
    if name in ("app", "application"):
        return get_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
