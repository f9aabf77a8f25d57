"""One palette of zone functions for the web map, the WMS and the printed extract.

``layers.styles.zone_family`` decides a zone's family (by its function's words, else by
its UTR code); the WMS's Mapnik rules must decide the same for every zone, exactly one
rule each, and the web map receives the same families in its page configuration.
"""

from __future__ import annotations

import pytest

from layers.catalog import Catalog
from layers.extract_map import zone_colour
from layers.render import _mapnik
from layers.styles import OTHER_ZONES, ZONE_FAMILIES, styles_for, zone_family

# Through the renderer's import, which keeps the process's PROJ/GDAL settings: a bare
# ``import mapnik`` points them at the wheel's data and breaks rasterio in this worker.
mapnik = _mapnik()

ZONES = [
    ("locuințe individuale", "L1a", "residential"),
    ("LOCUINȚE COLECTIVE", None, "residential"),
    ("Zonă centrală", "ZCP_C1", "central"),
    ("central", None, "central"),
    ("public services", None, "services"),
    ("instituții publice și servicii", "IS", "services"),
    ("învățământ", None, "services"),
    ("Căi de comunicație rutieră", None, "transport"),
    ("spații verzi amenajate", None, "green"),
    ("industrial", None, "economic"),
    ("funcțiune nedefinită", "M2", "mixed"),
    (None, "M2", "mixed"),
    (None, "V1a", "green"),
    (None, "ZCP_C1", "central"),
    (None, "UM2", "mixed"),
    (None, "Liu", "residential"),
    (None, "UI", "economic"),
    (None, "ZCP_IS", "services"),
    (None, "XYZ", "other"),
    (None, None, "other"),
    ("", "", "other"),
]


@pytest.mark.parametrize(("function", "code", "family"), ZONES)
def test_zone_family(function: str | None, code: str | None, family: str) -> None:
    assert zone_family(function, code).key == family
    assert zone_colour(function, code) == zone_family(function, code).colour


def test_families_have_distinct_colours() -> None:
    colours = [family.colour for family in (*ZONE_FAMILIES, OTHER_ZONES)]
    assert len(set(colours)) == len(colours)


@pytest.mark.parametrize(("function", "code", "family"), ZONES)
def test_wms_rules_decide_as_the_palette(
    function: str | None, code: str | None, family: str
) -> None:
    style = styles_for(Catalog(3844).get("zones"))[0]
    context = mapnik.Context()
    context.push("function")
    context.push("utr_code")
    feature = mapnik.Feature(context, 1)
    if function is not None:
        feature["function"] = function
    if code is not None:
        feature["utr_code"] = code
    matched = [
        rule.title
        for rule in style.rules
        if rule.legend and mapnik.Expression(rule.filter or "true").evaluate(feature)
    ]
    assert matched == [zone_family(function, code).title]


def test_loading_mapnik_leaves_rasterio_working() -> None:
    from rasterio.crs import CRS

    assert CRS.from_epsg(3844).to_epsg() == 3844
