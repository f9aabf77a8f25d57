"""The catalog: definitions, refresh on data change, streaming pages, the CLI listing."""

from __future__ import annotations

import orjson
import sqlalchemy as sa
from click.testing import CliRunner

from gis_core import twins
from gis_core.db import create_engine
from gis_core.settings import Settings
from layers import features, queries
from layers.catalog import ALL_ROLES, Catalog
from layers.spatial import StorageBox
from tests.test_layers_data import PARCEL_COUNT, layers_app, layers_settings
from webmap.cli import main

__all__ = ["layers_settings"]


def test_every_built_in_layer_is_complete() -> None:
    catalog = Catalog(3844)
    ids = [layer.id for layer in catalog.layers()]
    assert ids == [
        "parcels",
        "buildings",
        "zones",
        "restrictions",
        "addresses",
        "intravilan",
        "admin_units",
        "acts",
    ]
    for layer in catalog.layers():
        assert layer.title and layer.abstract and layer.fields
        assert {3844, 4258, 4326, 3857} <= set(layer.srids)
        assert set(layer.roles) <= ALL_ROLES
        assert len({f.name for f in layer.fields}) == len(layer.fields)


def test_storage_crs_comes_from_the_settings() -> None:
    layer = Catalog(26986).get("parcels")
    assert layer.storage_srid == 26986 and layer.srids[0] == 26986 and 3844 in layer.srids


def test_state_is_recomputed_only_after_the_data_changed(layers_settings: Settings) -> None:
    engine = create_engine(layers_settings)
    catalog = Catalog(3844, check_interval=0.0)
    layer = catalog.get("restrictions")
    with engine.connect() as conn:
        first = catalog.state(conn, layer)
        assert catalog.state(conn, layer) is first
    grow = "UPDATE urbanism.restriction SET geom = ST_Multi(ST_Buffer(geom, :d, 'join=mitre'))"
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(grow), {"d": 500})
            conn.execute(sa.text("UPDATE urbanism.restriction SET geom_etrs89 = NULL"))
            twins.fill_missing_twins(conn, "urbanism.restriction", 3844)
        with engine.connect() as conn:
            second = catalog.state(conn, layer)
        assert second.version != first.version
        assert first.extent is not None and second.extent is not None
        assert second.extent[0] < first.extent[0]
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(grow), {"d": -500})
            conn.execute(sa.text("UPDATE urbanism.restriction SET geom_etrs89 = NULL"))
            twins.fill_missing_twins(conn, "urbanism.restriction", 3844)
        engine.dispose()


def test_check_due_says_when_a_refresh_would_read_the_database(
    layers_settings: Settings,
) -> None:
    engine = create_engine(layers_settings)
    catalog = Catalog(3844, check_interval=3600.0)
    assert catalog.check_due()
    with engine.connect() as conn:
        catalog.refresh(conn)
    assert not catalog.check_due()
    assert catalog.fresh_version(catalog.get("parcels")) is None  # no state read yet
    engine.dispose()


def test_big_pages_are_streamed_and_still_valid_geojson(layers_settings: Settings) -> None:
    client = layers_app(layers_settings).test_client()
    limit = features.STREAM_ABOVE + 1
    response = client.get(f"/ogc/features/collections/parcels/items?limit={limit}")
    assert response.is_streamed
    body = orjson.loads(response.data)
    assert body["numberReturned"] == PARCEL_COUNT == body["numberMatched"]
    assert not any(link["rel"] == "next" for link in body["links"])


def test_number_matched_is_never_a_count_of_a_big_table(layers_settings: Settings) -> None:
    engine = create_engine(layers_settings)
    layer = Catalog(3844).get("parcels")
    query = queries.FeatureQuery(layer=layer, role="public", limit=5)
    with engine.connect() as conn:
        assert queries.number_matched(conn, query, rows_estimate=queries.EXACT_COUNT_LIMIT) is None
        assert queries.number_matched(conn, query, rows_estimate=100.0) == PARCEL_COUNT
    engine.dispose()


def test_layers_list_command(layers_settings: Settings) -> None:
    runner = CliRunner()
    public = runner.invoke(main, ["layers", "list"], obj={"settings": layers_settings})
    assert public.exit_code == 0, public.output
    assert "parcels" in public.output and "owners" not in public.output
    clerk = runner.invoke(
        main, ["layers", "list", "--role", "clerk", "--extent"], obj={"settings": layers_settings}
    )
    assert clerk.exit_code == 0, clerk.output
    assert "owners" in clerk.output and "extent=23.5" in clerk.output


def test_page_sql_is_compiled_once_per_request_shape(layers_settings: Settings) -> None:
    """Same shape, other values: the same SQL text (server-side prepared), new values."""
    engine = create_engine(layers_settings)
    layer = Catalog(3844).get("parcels")
    near = StorageBox((23.0, 46.0, 24.0, 47.0), geographic=True)
    far = StorageBox((-100.0, 40.0, -90.0, 45.0), geographic=True)
    with engine.connect() as conn:
        first = queries.compiled_page(conn, queries.FeatureQuery(layer, "public", box=near))
        second = queries.compiled_page(
            conn, queries.FeatureQuery(layer, "public", box=far, limit=7, offset=3)
        )
        assert first is not None and second is not None
        assert first[0] is second[0]
        assert second[1]["box_minx"] == -100.0 and second[1]["page_limit"] == 8
        near_rows = queries.fetch_page(conn, queries.FeatureQuery(layer, "public", box=near))
        far_rows = queries.fetch_page(conn, queries.FeatureQuery(layer, "public", box=far))
        assert len(near_rows) == 11 and far_rows == []
        filtered = queries.FeatureQuery(layer, "public", conditions=(sa.true(),))
        assert queries.compiled_page(conn, filtered) is None
        clerk = queries.compiled_page(conn, queries.FeatureQuery(layer, "clerk", box=near))
        assert clerk is not None and clerk[0] != first[0] and "owners" in clerk[1].values()
    engine.dispose()
