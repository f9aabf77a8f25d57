"""WFS import: our own WFS 2.0 (with a small page size, so paging is exercised) serves
the fixture municipality's parcels; OWSLib reads them page by page into another database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from gis_core.db import create_engine
from gis_core.settings import Settings
from importers.cadastre import CadastreOptions, import_cadastre
from importers.runner import ImportFailed
from tests.test_layers_data import layers_app, layers_settings, live_server

__all__ = ["layers_settings"]
PAGE = 40


@pytest.fixture(scope="module")
def wfs_url(layers_settings: Settings) -> Iterator[str]:
    app = layers_app(layers_settings, URBANGIS_WFS_MAX_COUNT=PAGE)
    with live_server(app) as url:
        yield url + "/ogc/wfs"


def test_parcels_are_read_through_wfs_paging(
    wfs_url: str, layers_settings: Settings, database_factory: Callable[..., Settings]
) -> None:
    target = database_factory("import_wfs", 3844, uat_siruta=999_996)
    source_engine = create_engine(layers_settings)
    with source_engine.connect() as conn:
        expected = set(
            conn.execute(
                sa.text("SELECT cadastral_number FROM cadastre.parcel WHERE valid_to IS NULL")
            ).scalars()
        )
    source_engine.dispose()
    engine = create_engine(target)
    try:
        with pytest.raises(ImportFailed, match="several feature types"):
            import_cadastre(engine, target, [f"WFS:{wfs_url}"], CadastreOptions())
        report = import_cadastre(
            engine, target, [f"WFS:{wfs_url}"], CadastreOptions(layer="parcels")
        )
        assert report.counts["read"] == len(expected) > PAGE
        with engine.connect() as conn:
            imported = set(
                conn.execute(sa.text("SELECT cadastral_number FROM cadastre.parcel")).scalars()
            )
        assert imported == expected
    finally:
        engine.dispose()
