"""The PNG writer of the WMS renderer: the same pixels as Mapnik's own encoder, with
and without alpha, through ISA-L's deflate and through the zlib fallback."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from layers import render


def drawn() -> Any:
    """A small map with a half-transparent fill, a thin outline and empty corners."""
    mapnik = render._mapnik()
    canvas = mapnik.Map(203, 101, "epsg:3857")
    mapnik.load_map_from_string(
        canvas,
        '<Map srs="epsg:3857"><Style name="s"><Rule>'
        '<PolygonSymbolizer fill="#ff8000" fill-opacity="0.5" gamma="0.7"/>'
        '<LineSymbolizer stroke="#123456" stroke-width="2"/></Rule></Style></Map>',
    )
    feature = mapnik.Feature(mapnik.Context(), 1)
    feature.geometry = mapnik.Geometry.from_wkt("POLYGON((10 10,150 20,120 90,10 10))")
    source = mapnik.MemoryDatasource()
    source.add_feature(feature)
    layer = mapnik.Layer("l", "epsg:3857")
    layer.datasource = source
    layer.styles.append("s")
    canvas.layers.append(layer)
    canvas.zoom_to_box(mapnik.Box2d(0, 0, 203, 101))
    canvas.background = mapnik.Color(0, 0, 0, 0)
    image = mapnik.Image(203, 101)
    mapnik.render(canvas, image)
    return image


def pixels(data: bytes) -> np.ndarray[Any, Any]:
    picture = Image.open(io.BytesIO(data))
    picture.load()
    return np.asarray(picture)


@pytest.mark.parametrize("isal", [True, False])
def test_png_has_mapnik_pixels(isal: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not isal:
        monkeypatch.setattr(render, "_isal_zlib", None)
    image = drawn()
    expected = pixels(image.to_string("png32"))
    transparent = render.encode(image, "image/png")
    assert Image.open(io.BytesIO(transparent)).mode == "RGBA"
    assert np.array_equal(pixels(transparent), expected)
    assert (expected[..., 3] == 0).any() and (expected[..., 3] == 255).any()
    opaque = render.encode(image, "image/png", opaque=True)
    assert Image.open(io.BytesIO(opaque)).mode == "RGB"
    assert np.array_equal(pixels(opaque), expected[..., :3])
    assert np.array_equal(pixels(render.encode(image, "image/png; mode=24bit")), expected[..., :3])


def test_premultiplied_images_are_written_straight() -> None:
    image = drawn()
    expected = pixels(image.to_string("png32"))
    image.premultiply()
    assert image.premultiplied()
    written = pixels(render.png_bytes(image, alpha=True)).astype(int)
    # Premultiplying and back rounds by a unit or two; written premultiplied, the
    # half-transparent orange would come out about half as bright.
    assert np.abs(written - expected.astype(int)).max() <= 2
