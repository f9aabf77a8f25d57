"""WSGI entry points for granian, gunicorn and other servers.

``webmap.wsgi:app`` is the Flask app; ``webmap.wsgi:logged_app`` is the same app writing
the access log (``webmap.access_log``), which ``urbangis serve`` runs. Both are built on
first access (a module ``__getattr__``), not at import, so importing this module never
reads settings or touches a database. Each server worker builds its own app from the
same ``URBANGIS_*`` environment (the factory string ``webmap.app:create_app()`` is
equivalent to ``app``).
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from webmap.access_log import AccessLog

_app: Flask | None = None
_logged: AccessLog | None = None


def get_app() -> Flask:
    """The process's app, built once from the environment."""
    global _app  # one app per process is the point
    if _app is None:
        from webmap.app import create_app

        _app = create_app()
    return _app


def get_logged_app() -> AccessLog:
    """The process's app behind the access log, built once."""
    global _logged  # one per process, like the app
    if _logged is None:
        _logged = AccessLog(get_app())
    return _logged


def __getattr__(name: str) -> Any:
    if name in ("app", "application"):
        return get_app()
    if name == "logged_app":
        return get_logged_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
