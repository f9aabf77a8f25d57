"""ETRS89 twins of the acts' geometries: written with TransDatRO when an act is saved,
edited, linked or imported, never left stale, and read by the lon/lat outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_core.crs.transform import transform_geometries
from gis_core.db import create_engine
from gis_core.settings import Settings
from gis_core.twins import TWIN_COLUMNS, fill_missing_twins
from importers.acts.mapping import parse_map_option
from importers.acts.pipeline import ImportOptions, import_register
from permits import lifecycle
from permits.linking import link_acts
from permits.register import Month, as_geojson

# A site near the centre of Cluj-Napoca in Stereo 70 (where PROJ's default path is
# decimetres off TransDatRO, so the two cannot be confused).
POINT = [391_010.0, 586_010.0]
SQUARE = [[391_000.0, 586_000.0], [391_030.0, 586_000.0], [391_030.0, 586_025.0],
          [391_000.0, 586_025.0], [391_000.0, 586_000.0]]  # fmt: skip
MOVED = [[391_100.0, 586_100.0], [391_140.0, 586_100.0], [391_140.0, 586_130.0],
         [391_100.0, 586_100.0]]  # fmt: skip
COLUMNS = ("location", "footprint", "geom")


def _stored(conn: Connection, act_id: int) -> dict[str, Any]:
    """Each geometry and its twin (shapely), with the twin's SRID."""
    selects = ", ".join(
        f"ST_AsBinary({column}), ST_AsBinary({twin}), ST_SRID({twin})"
        for column, twin in TWIN_COLUMNS["permits.act"]
    )
    row = conn.execute(
        sa.text(f"SELECT {selects} FROM permits.act WHERE id = :id"),
        {"id": act_id},
    ).one()
    found: dict[str, Any] = {}
    for index, (column, _twin) in enumerate(TWIN_COLUMNS["permits.act"]):
        geom, twin, srid = row[3 * index : 3 * index + 3]
        found[column] = shapely.from_wkb(bytes(geom)) if geom is not None else None
        found[f"{column}_etrs89"] = shapely.from_wkb(bytes(twin)) if twin is not None else None
        found[f"{column}_srid"] = srid
    return found


def _transdatro(geom: Any) -> Any:
    return transform_geometries(np.array([geom], dtype=object), 3844, 4258)[0]


def _assert_twins_are_transdatro(stored: dict[str, Any], *columns: str) -> None:
    for column in columns:
        assert stored[column] is not None, column
        assert stored[f"{column}_srid"] == 4258, column
        expected = _transdatro(stored[column])
        assert shapely.equals_exact(stored[f"{column}_etrs89"], expected, tolerance=1e-9), column


def test_twin_catalog_names_the_acts_columns() -> None:
    assert TWIN_COLUMNS["permits.act"] == (
        ("location", "location_etrs89"),
        ("footprint", "footprint_etrs89"),
        ("geom", "geom_etrs89"),
    )
    assert TWIN_COLUMNS["cadastre.parcel"] == (("geom", "geom_etrs89"),)


def _create(db: Connection, settings: Settings, number: str, **fields: Any) -> dict[str, Any]:
    return lifecycle.create_act(
        db,
        settings,
        {"kind": "CU", "number": number, "requested_on": "2024-02-01", "crs": "EPSG:3844",
         **fields},
        actor="test",
    )  # fmt: skip


def test_a_saved_act_gets_twins_by_transdatro(db: Connection, settings: Settings) -> None:
    act = _create(
        db,
        settings,
        "7001",
        location={"type": "Point", "coordinates": POINT},
        footprint={"type": "Polygon", "coordinates": [SQUARE]},
    )
    stored = _stored(db, act["id"])
    # geom (what the public layer draws) is the footprint, linked or not.
    _assert_twins_are_transdatro(stored, *COLUMNS)
    assert shapely.equals_exact(stored["geom_etrs89"], stored["footprint_etrs89"], 1e-12)
    # The clerk's view of the act gives lon/lat from the twins.
    lon, lat = act["location"]["coordinates"]
    twin = stored["location_etrs89"]
    assert (lon, lat) == (round(twin.x, 7), round(twin.y, 7))
    assert "crs" not in act["location"] and "crs" not in act["footprint"]
    # PROJ's default path (ST_Transform) lands decimetres away: the twin is not that.
    off = db.execute(
        sa.text(
            "SELECT ST_Distance(ST_Transform(location, 4258)::geography, "
            "location_etrs89::geography) FROM permits.act WHERE id = :id"
        ),
        {"id": act["id"]},
    ).scalar_one()
    assert off > 0.05


def test_an_edited_site_gets_new_twins(db: Connection, settings: Settings) -> None:
    act = _create(db, settings, "7002", footprint={"type": "Polygon", "coordinates": [SQUARE]})
    before = _stored(db, act["id"])
    edited = lifecycle.update_act(
        db,
        settings,
        act["id"],
        act["version"],
        {"footprint": {"type": "Polygon", "coordinates": [MOVED]}, "crs": "EPSG:3844",
         "location": {"type": "Point", "coordinates": POINT}},
        actor="test",
    )  # fmt: skip
    after = _stored(db, act["id"])
    _assert_twins_are_transdatro(after, *COLUMNS)
    assert not shapely.equals_exact(after["footprint_etrs89"], before["footprint_etrs89"], 1e-9)
    assert shapely.equals_exact(after["geom_etrs89"], after["footprint_etrs89"], 1e-12)
    first_vertex = edited["footprint"]["coordinates"][0][0][0]  # MultiPolygon
    assert first_vertex == pytest.approx(
        after["footprint_etrs89"].geoms[0].exterior.coords[0], abs=1e-7
    )
    # Removing the site removes its twin.
    cleared = lifecycle.update_act(
        db, settings, act["id"], edited["version"], {"location": None}, actor="test"
    )
    assert cleared["location"] is None
    assert _stored(db, act["id"])["location_etrs89"] is None


def test_a_geometry_changed_behind_the_writers_back_loses_its_stale_twin(
    db: Connection, settings: Settings
) -> None:
    act = _create(
        db,
        settings,
        "7003",
        location={"type": "Point", "coordinates": POINT},
        footprint={"type": "Polygon", "coordinates": [SQUARE]},
    )
    db.execute(
        sa.text(
            "UPDATE permits.act SET location = ST_Translate(location, 50, 0), "
            "purpose = 'x' WHERE id = :id"
        ),
        {"id": act["id"]},
    )
    stale = _stored(db, act["id"])
    assert stale["location_etrs89"] is None  # cleared by the trigger of 0006
    assert stale["footprint_etrs89"] is not None and stale["geom_etrs89"] is not None
    report = fill_missing_twins(db, "permits.act", 3844, ids=[act["id"]])
    assert report.updated == 1
    _assert_twins_are_transdatro(_stored(db, act["id"]), *COLUMNS)
    # A writer that sets a geometry and its twin together keeps the twin it wrote.
    db.execute(
        sa.text(
            "UPDATE permits.act SET location = ST_Translate(location, 5, 0), "
            "location_etrs89 = ST_SetSRID('POINT(23 46)'::geometry, 4258) WHERE id = :id"
        ),
        {"id": act["id"]},
    )
    assert _stored(db, act["id"])["location_etrs89"].x == 23


def test_fill_limited_to_ids_leaves_other_rows(db: Connection, settings: Settings) -> None:
    first = _create(db, settings, "7004", location={"type": "Point", "coordinates": POINT})
    second = _create(db, settings, "7005", location={"type": "Point", "coordinates": POINT})
    db.execute(
        sa.text("UPDATE permits.act SET location_etrs89 = NULL WHERE id IN (:a, :b)"),
        {"a": first["id"], "b": second["id"]},
    )
    assert fill_missing_twins(db, "permits.act", 3844, ids=[]).updated == 0
    assert fill_missing_twins(db, "permits.act", 3844, ids=[first["id"]]).updated == 1
    assert _stored(db, first["id"])["location_etrs89"] is not None
    assert _stored(db, second["id"])["location_etrs89"] is None


def _register(tmp_path: Path, rows: list[tuple[str, float, float]]) -> Path:
    path = tmp_path / "registru.csv"
    lines = ["Numar;Data;X;Y", *(f"{n};2024-02-{10 + i:02d};{x};{y}" for i, (n, x, y) in
             enumerate(rows))]  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _import(settings: Settings, path: Path, srid: int) -> None:
    engine = create_engine(settings)
    try:
        import_register(
            engine,
            settings,
            path,
            ImportOptions(
                mapping=parse_map_option("number=Numar,issued_on=Data,x=X,y=Y"),
                kind="CU",
                source_crs=f"EPSG:{srid}",
            ),
        )
    finally:
        engine.dispose()


def test_an_imported_act_gets_twins_and_the_register_serves_them(
    database_factory: Any, tmp_path: Path
) -> None:
    settings = database_factory("act_twins", 3844)
    _import(
        settings,
        _register(tmp_path, [("61", POINT[0], POINT[1]), ("62", 391_050.0, 586_040.0)]),
        3844,
    )
    engine = create_engine(settings)
    try:
        with engine.begin() as conn:
            ids = conn.execute(
                sa.text("SELECT id FROM permits.act ORDER BY number")
            ).scalars().all()  # fmt: skip
            for act_id in ids:
                _assert_twins_are_transdatro(_stored(conn, act_id), "location")
            # The audit entry of the import keeps geometries out, twins included.
            after = conn.execute(
                sa.text("SELECT after FROM core.audit_log WHERE table_name = 'permits.act'")
            ).scalars().all()  # fmt: skip
            assert after and all("location_etrs89" not in entry for entry in after)
            collection = orjson.loads(as_geojson(conn, settings, Month.parse(2024, 2, "CU")))
            for feature, act_id in zip(collection["features"], ids, strict=True):
                twin = _stored(conn, act_id)["location_etrs89"]
                assert feature["geometry"] == {
                    "type": "Point",
                    "coordinates": [round(twin.x, 7), round(twin.y, 7)],
                }
            # Linking (no parcels here) keeps the site's twins.
            link_acts(conn, settings)
            _assert_twins_are_transdatro(_stored(conn, ids[0]), "location")
    finally:
        engine.dispose()


def test_other_storage_crs_twins_come_from_postgis(database_factory: Any, tmp_path: Path) -> None:
    settings = database_factory("act_twins_26986", 26986, uat_siruta=2513, uat_name="Cambridge")
    _import(settings, _register(tmp_path, [("71", 232_000.0, 902_000.0)]), 26986)
    engine = create_engine(settings)
    try:
        with engine.connect() as conn:
            lon, lat, same = conn.execute(
                sa.text(
                    "SELECT ST_X(location_etrs89), ST_Y(location_etrs89), "
                    "ST_Equals(location_etrs89, ST_Transform(location, 4258)) FROM permits.act"
                )
            ).one()
    finally:
        engine.dispose()
    assert -71.2 < lon < -71.0 and 42.3 < lat < 42.45  # Cambridge, MA
    assert same
