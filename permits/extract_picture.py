"""The extract's map picture, drawn by our own WMS exactly as it serves the public.

A GetMap request through ``layers.wms.handle`` (the code path of ``/ogc/wms``), as the
public role, over the extract's window in the storage CRS: the orthophotos when some
are imported, then zones coloured by function, restrictions, buildings, parcels with
their cadastral numbers and the intravilan line. What a clerk sees in QGIS through the
WMS and what the citizen's paper shows are therefore the same picture. The legend under
it takes its colours from the same catalog styles.

When the WMS cannot draw (a timeout, a renderer failure), the answer is ``None`` and the
PDF draws the layers as vector paths itself, so an extract is never refused for its map.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from layers import wms
from layers.catalog import LayerDefinition
from layers.extract_map import ExtractMap
from layers.roles import visible_layers
from layers.styles import DEFAULT_STYLE, OUTLINE_STYLE
from layers.wfs_ows import OwsService

log = logging.getLogger(__name__)

PUBLIC = "public"
# Bottom to top, after the orthophotos, with their WMS style: zones filled by function,
# everything above them as outlines so the zone colours (or the photo) show through. A
# layer the public may not see is left out.
PICTURE_LAYERS = (
    ("zones", DEFAULT_STYLE),
    ("restrictions", OUTLINE_STYLE),
    ("buildings", DEFAULT_STYLE),
    ("parcels", OUTLINE_STYLE),
    ("intravilan", DEFAULT_STYLE),
)
# Print resolution of the picture: sharp on paper, small enough to render quickly.
PICTURE_DPI = 150
MM_PER_INCH = 25.4


@dataclass(frozen=True)
class MapPicture:
    """The PNG the WMS drew and the legend colours of its layers: layer id → (colour,
    filled). Zones take the shared palette's colours (``layers.styles.zone_family``)."""

    png: bytes
    colours: dict[str, tuple[str, bool]] = field(default_factory=dict)


def picture_size(width_mm: float, height_mm: float) -> tuple[int, int]:
    """Pixels for a frame of ``width_mm`` × ``height_mm`` at the print resolution."""
    return (
        round(width_mm / MM_PER_INCH * PICTURE_DPI),
        round(height_mm / MM_PER_INCH * PICTURE_DPI),
    )


def map_picture(
    service: OwsService,
    wms_state: wms.WmsState,
    geometry: ExtractMap,
    size: tuple[int, int],
) -> MapPicture | None:
    """The WMS picture of ``geometry``'s window at ``size`` pixels, or ``None``."""
    visible = {layer.id: layer for layer in visible_layers(service.catalog, PUBLIC)}
    vectors = [(name, style) for name, style in PICTURE_LAYERS if name in visible]
    rasters = [(raster.name, "") for raster in wms_state.current_rasters(service)]
    params = _getmap_params([*rasters, *vectors], geometry, size)
    answer = wms.handle(service, wms_state, PUBLIC, params)
    body = b"".join(answer.body or ())
    if answer.media_type != "image/png" or not body.startswith(b"\x89PNG"):
        log.warning("the extract's map falls back to vector drawing: %s", body[:300])
        return None
    return MapPicture(body, {name: legend_colour(visible[name], style) for name, style in vectors})


def legend_colour(layer: LayerDefinition, style: str) -> tuple[str, bool]:
    """(colour, filled) of ``layer`` drawn in WMS ``style``, from its catalog style."""
    fill = str(layer.style.get("fill", "none"))
    stroke = str(layer.style.get("stroke", fill))
    if style == OUTLINE_STYLE or fill == "none":
        return (stroke, False)
    return (fill, True)


def _getmap_params(
    layers: Sequence[tuple[str, str]], geometry: ExtractMap, size: tuple[int, int]
) -> list[tuple[str, str]]:
    # WMS 1.1.1: the box is always x (east), y (north), whatever the CRS's axis order.
    return [
        ("service", "WMS"),
        ("version", "1.1.1"),
        ("request", "GetMap"),
        ("layers", ",".join(name for name, _ in layers)),
        ("styles", ",".join(style for _, style in layers)),
        ("srs", f"EPSG:{geometry.srid}"),
        ("bbox", ",".join(repr(float(v)) for v in geometry.window)),
        ("width", str(size[0])),
        ("height", str(size[1])),
        ("format", "image/png"),
        ("transparent", "FALSE"),
    ]
