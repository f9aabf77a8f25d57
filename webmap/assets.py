"""Front-end libraries served by the app itself, from ``webmap/static/vendor/``.

They are installed from npm by ``scripts/install-assets`` (never committed, never from a
CDN), so the map works on a machine with no internet. A missing install must not break
the pages: they still render, and ``/healthz`` reports ``"assets": false``.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory

from webmap.app import vendor_dir

# The files the pages load; if one is missing the install is broken.
REQUIRED_FILES = (
    "leaflet/leaflet.js",
    "leaflet/leaflet.css",
    "leaflet/images/layers.png",
    "leaflet/images/marker-icon.png",
)
# Versioned by the npm lock file, so browsers may keep them for a day without asking.
CACHE_SECONDS = 86_400

blueprint = Blueprint("assets", __name__)


def assets_installed(folder: Path) -> bool:
    """True when every file the pages need is present in ``folder``."""
    return all((folder / name).is_file() for name in REQUIRED_FILES)


@blueprint.get("/static/vendor/<path:filename>")
def vendor(filename: str) -> Response:
    """One library file; ``send_from_directory`` refuses paths leaving the folder."""
    return send_from_directory(vendor_dir(), filename, max_age=CACHE_SECONDS)
