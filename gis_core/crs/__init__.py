"""Coordinate reference systems: the official Stereo 70 ↔ ETRS89 path (TransDatRO) and PROJ.

Import from here; ``transform`` holds the implementation. Nothing is loaded at import
time: the grids and PROJ transformers are built on first use and kept.
"""

from gis_core.crs.transform import (
    describe_transformation,
    ellipsoidal_to_normal_height,
    etrs89_to_stereo70,
    normal_to_ellipsoidal_height,
    parse_crs,
    stereo70_to_etrs89,
    transform_coords,
    transform_geometries,
    transform_geometry,
    transform_points,
)

__all__ = [
    "describe_transformation",
    "ellipsoidal_to_normal_height",
    "etrs89_to_stereo70",
    "normal_to_ellipsoidal_height",
    "parse_crs",
    "stereo70_to_etrs89",
    "transform_coords",
    "transform_geometries",
    "transform_geometry",
    "transform_points",
]
