"""ETRS89 twins: written with TransDatRO for Stereo 70, with PostGIS for other CRSs."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gis_core.crs.transform import transform_geometries
from gis_core.twins import fill_missing_twins

# A small parcel near the centre of Cluj-Napoca, in Stereo 70 (easting, northing).
PARCEL = "POLYGON((391000 586000, 391030 586000, 391030 586025, 391000 586025, 391000 586000))"


def _insert(conn: Connection, wkt: str, srid: int, number: str) -> int:
    return int(
        conn.execute(
            sa.text(
                "INSERT INTO cadastre.parcel (uat_siruta, cadastral_number, geom) VALUES "
                "(54975, :n, ST_Multi(ST_GeomFromText(:wkt, :srid))) RETURNING id"
            ),
            {"n": number, "wkt": wkt, "srid": srid},
        ).scalar_one()
    )


def test_stereo70_twin_is_the_official_transformation(db: Connection) -> None:
    parcel_id = _insert(db, PARCEL, 3844, "twin-1")
    report = fill_missing_twins(db, "cadastre.parcel", 3844)
    assert report.updated >= 1
    twin = db.execute(
        sa.text(
            "SELECT ST_AsBinary(geom_etrs89), ST_SRID(geom_etrs89) "
            "FROM cadastre.parcel WHERE id = :i"
        ),
        {"i": parcel_id},
    ).one()
    assert twin[1] == 4258
    expected = transform_geometries(np.array([shapely.from_wkt(PARCEL)]), 3844, 4258)[0]
    got = shapely.from_wkb(bytes(twin[0]))
    assert shapely.equals_exact(shapely.get_geometry(got, 0), expected, tolerance=1e-9)
    # PROJ's default path (what ST_Transform would do) lands decimetres away.
    proj_default = db.execute(
        sa.text(
            "SELECT ST_Distance(ST_Transform(ST_Centroid(geom), 4258)::geography, "
            "ST_Centroid(geom_etrs89)::geography) FROM cadastre.parcel WHERE id = :i"
        ),
        {"i": parcel_id},
    ).scalar_one()
    assert proj_default > 0.05


def test_twins_are_only_filled_where_missing(db: Connection) -> None:
    _insert(db, PARCEL, 3844, "twin-2")
    fill_missing_twins(db, "cadastre.parcel", 3844)
    assert fill_missing_twins(db, "cadastre.parcel", 3844).updated == 0


def test_other_storage_crs_uses_postgis(engine_26986: Engine) -> None:
    with engine_26986.connect() as conn, conn.begin() as outer:
        _insert(
            conn,
            "POLYGON((232000 902000, 232050 902000, 232050 902040, 232000 902000))",
            26986,
            "ml-1",
        )
        assert fill_missing_twins(conn, "cadastre.parcel", 26986).updated >= 1
        lon, lat = conn.execute(
            sa.text(
                "SELECT ST_X(ST_Centroid(geom_etrs89)), ST_Y(ST_Centroid(geom_etrs89)) "
                "FROM cadastre.parcel WHERE cadastral_number = 'ml-1'"
            )
        ).one()
        outer.rollback()
    assert -71.2 < lon < -71.0 and 42.3 < lat < 42.45  # Cambridge, MA


def test_unknown_table_is_refused(db: Connection) -> None:
    with pytest.raises(ValueError, match="no ETRS89 twin"):
        fill_missing_twins(db, "protected.person", 3844)
