"""The urbanism information extract of one imobil: its parcel status and its map, as PDF.

The extract prints the answer of ``permits.status.parcel_status``, the very function
behind ``GET /api/v1/parcels/{n}`` and the web map's parcel card, so the paper a
citizen takes home and the status the portal and the card show cannot disagree: same
zones and shares, same restrictions, same public acts, same verdict, same data versions.
The location map is the picture our WMS draws for the public (``permits.extract_picture``)
with the parcel outlined from ``layers.extract_map``. Nothing read here touches the
protected tables, whoever asks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection

from layers import wms
from layers.extract_map import ExtractMap, extract_map
from layers.wfs_ows import OwsService
from permits.extract_pdf import MAP_ASPECT, MAP_H, MAP_W, ExtractContext, build_extract
from permits.extract_picture import MapPicture, map_picture, picture_size
from permits.location import LocationContext
from permits.status import parcel_status

# What may stand in a download's file name (cadastral numbers are digits and -C1-U2).
_UNSAFE_IN_NAME = re.compile(r"[^0-9A-Za-z.-]+")


@dataclass(frozen=True)
class Extract:
    """The PDF and the cadastral number it is about (as the register writes it)."""

    cadastral_number: str
    pdf: bytes

    @property
    def filename(self) -> str:
        return f"extras-urbanistic-{_UNSAFE_IN_NAME.sub('_', self.cadastral_number)}.pdf"


@dataclass(frozen=True)
class ExtractInputs:
    """What the extract shows: the parcel status answer and the map around the imobil."""

    status: dict[str, Any]
    geometry: ExtractMap

    @property
    def cadastral_number(self) -> str:
        return str(self.status["parcels"][0]["cadastral_number"])


def extract_inputs(conn: Connection, cadastral_number: str, ctx: LocationContext) -> ExtractInputs:
    """The status and map of imobil ``cadastral_number`` today; an unknown number is a 404.

    Kept apart from the rendering so the database connection is returned to its pool
    before the PDF is drawn.
    """
    status = parcel_status(conn, cadastral_number, ctx)
    number = str(status["parcels"][0]["cadastral_number"])
    geometry = extract_map(
        conn, number, siruta=ctx.uat_siruta, srid=ctx.storage_srid, aspect=MAP_ASPECT
    )
    return ExtractInputs(status, geometry)


def extract_picture(
    service: OwsService, wms_state: wms.WmsState, inputs: ExtractInputs
) -> MapPicture | None:
    """The WMS picture of the extract's map frame (``None`` if the WMS cannot draw it)."""
    return map_picture(service, wms_state, inputs.geometry, picture_size(MAP_W, MAP_H))


def render_extract(
    inputs: ExtractInputs,
    *,
    picture: MapPicture | None = None,
    lang: str = "ro",
    synthetic: bool = False,
) -> Extract:
    """The PDF of ``inputs`` in ``lang`` (``ro`` or ``en``), stamped with the time now."""
    context = ExtractContext(generated_at=datetime.now(UTC), lang=lang, synthetic=synthetic)
    pdf = build_extract(inputs.status, inputs.geometry, context, picture)
    return Extract(inputs.cadastral_number, pdf)
