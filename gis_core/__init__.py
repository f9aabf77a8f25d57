"""Spatial core of urbangis: settings, database, embedded PostGIS, schema, CRS, errors.

Imports third-party packages only (see ARCHITECTURE: the one-way rule).
"""

__version__ = "0.1.0"
