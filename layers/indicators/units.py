"""Spatial units indicators are computed on.

A units spec names them:

- ``utr``: the UTR codes of the PUG in force (or of ``--plan``), each code's zones merged;
- ``zones``: every zone polygon of that plan;
- ``hex:SIZE`` / ``square:SIZE``: a regular grid (hexagon edge or square side in metres)
  made in SQL with ``ST_HexagonGrid``/``ST_SquareGrid`` over the municipality and clipped
  to it, cells keyed ``i:j`` (the grid is anchored at the CRS origin, so the same cell has
  the same key in every run);
- any other name: a boundary layer imported with ``urbangis indicators units import``
  (neighbourhoods, districts, census areas...).

The units of a computation land in a temporary table ``_unit`` (key, number, name,
geometry, area, ETRS89 twin): the geometries are what gets published. Units made of
zones (UTRs, zones) place points straight from the zone table (``basis.unit_zones_sql``),
so UTRs are merged for publication only; other units place them through
``_unit_source`` (number, geometry): the unit itself, cut into pieces when it has many
vertices. ``unit_no`` follows the keys in code-point order, so "the smallest key on a
shared edge" is the smallest number. An exact partition ``_unit_piece`` (the merged
units cut into small pieces under a GiST index) is made on demand for area overlays
(green space).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyogrio
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_core.crs.transform import transform_geometries
from gis_core.errors import InvalidInput, InvalidParameter, NotFound
from layers.analysis.basis import (
    AsOf,
    as_of_filter,
    fast_compression,
    local_settings,
    pug_in_force,
)

STEREO70 = 3844
ETRS89 = 4258
GRID_KINDS = ("hex", "square")
MIN_GRID_SIZE = 10.0
MAX_GRID_CELLS = 2_000_000
PIECE_VERTICES = 64
# Units with more vertices than this are cut for point placement, so a point's
# candidates (the shapes whose box holds it) stay few even for long, winding districts.
SOURCE_VERTICES = 2048
SOURCE_PIECE_VERTICES = 256
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class UnitSpec:
    """A parsed ``--units`` value."""

    kind: str  # utr | zones | hex | square | boundary
    size: float | None = None
    name: str | None = None

    @classmethod
    def parse(cls, text: str) -> UnitSpec:
        value = (text or "").strip().lower()
        if value in ("utr", "zones"):
            return cls(value)
        head, _, tail = value.partition(":")
        if head in GRID_KINDS:
            try:
                size = float(tail)
            except ValueError:
                raise InvalidParameter(
                    f"grid size must be a number of metres, got {tail!r}", locator="units"
                ) from None
            if not MIN_GRID_SIZE <= size <= 100_000:
                raise InvalidParameter(
                    f"grid size must be between {MIN_GRID_SIZE:g} and 100000 m", locator="units"
                )
            return cls(head, size=size)
        if _NAME.match(value):
            return cls("boundary", name=value)
        raise InvalidParameter(
            f"units must be utr, zones, hex:SIZE, square:SIZE or an imported unit set name, "
            f"got {text!r}",
            locator="units",
        )

    @property
    def label(self) -> str:
        """The canonical text (``hex:500``), stored with runs."""
        if self.kind in GRID_KINDS:
            return f"{self.kind}:{self.size:g}"
        return self.name if self.kind == "boundary" and self.name else self.kind

    @property
    def slug(self) -> str:
        """The label as an identifier part (``hex_500``) for layer ids."""
        return re.sub(r"[^a-z0-9]+", "_", self.label).strip("_")

    @property
    def population_key(self) -> str:
        """The unit set name population tables are keyed by."""
        return self.label


def reference_plan(conn: Connection, as_of: AsOf, plan_id: int | None) -> int:
    """The plan whose zones make ``utr``/``zones`` units: the given one or the PUG in force."""
    if plan_id is not None:
        if conn.execute(
            sa.text("SELECT 1 FROM urbanism.plan WHERE id = :p"), {"p": plan_id}
        ).first():
            return plan_id
        raise NotFound(f"plan {plan_id} does not exist", locator="plan")
    found = pug_in_force(conn, as_of)
    if found is None:
        raise NotFound(
            f"no PUG is in force on {as_of.day.isoformat()}; pass --plan", locator="plan"
        )
    return found


def _zones_sql() -> str:
    return f"""
        SELECT z.id, z.utr_code, z.geom, z.geom_etrs89, r.name AS rule_name
        FROM urbanism.zone z LEFT JOIN urbanism.regulation r ON r.id = z.regulation_id
        WHERE z.plan_id = :plan_id AND {as_of_filter("z")} AND z.geom IS NOT NULL"""


# The zones a UTR is published from. A UTR's zones rarely touch each other, so only the
# zones touching another zone of the same UTR are unioned (``merge``); the others are
# kept as they are, with the ETRS89 twins stored with them (a zone without its twin is
# treated like a merged one, whose twin is computed). The parts of one UTR are disjoint
# by construction, so collecting them gives a valid multipolygon.
_UTR_ZONES_SQL = f"""
SELECT z.id, z.utr_code, z.rule_name, z.geom_etrs89 IS NULL OR EXISTS (
    SELECT 1 FROM urbanism.zone o
    WHERE o.plan_id = :plan_id AND {as_of_filter("o")} AND o.utr_code = z.utr_code
      AND o.id <> z.id AND o.geom && z.geom AND ST_Intersects(o.geom, z.geom)
) AS merge
FROM ({_zones_sql()}) z WHERE NOT ST_IsEmpty(z.geom)
"""
_UTR_MERGED_SQL = """
SELECT row_number() OVER () AS part_no, u.utr_code AS unit_key, max(u.rule_name) AS name,
       ST_Multi(ST_CollectionExtract(ST_Union(z.geom), 3)) AS geom, NULL::geometry AS geom_etrs89
FROM _unit_zone u JOIN urbanism.zone z ON z.id = u.id WHERE u.merge GROUP BY u.utr_code
"""
_UTR_UNITS_SQL = """
SELECT unit_key, coalesce(max(name), unit_key) AS name,
       ST_CollectionExtract(ST_Collect(geom), 3) AS geom,
       ST_Multi(ST_CollectionExtract(ST_Collect(geom_etrs89), 3)) AS geom_etrs89
FROM (SELECT u.utr_code AS unit_key, u.rule_name AS name, z.geom, z.geom_etrs89
      FROM _unit_zone u JOIN urbanism.zone z ON z.id = u.id WHERE NOT u.merge
      UNION ALL
      SELECT unit_key, name, geom, geom_etrs89 FROM _unit_part) part
GROUP BY unit_key
"""


def _zone_units_sql() -> str:
    return f"""SELECT z.id::text AS unit_key, z.utr_code AS name, z.geom, z.geom_etrs89
               FROM ({_zones_sql()}) z"""


_GRID_SQL = """
WITH area AS (
    SELECT coalesce(
        (SELECT ST_Union(geom) FROM core.admin_unit WHERE level = 'uat' AND geom IS NOT NULL),
        (SELECT ST_ConvexHull(ST_Collect(geom)) FROM cadastre.parcel
         WHERE geom IS NOT NULL AND valid_to IS NULL)
    ) AS geom
), cells AS (
    SELECT c.i, c.j, c.geom, a.geom AS area_geom
    FROM area a, LATERAL {function}(:size, a.geom) c
    WHERE a.geom IS NOT NULL AND ST_Intersects(c.geom, a.geom)
)
SELECT i || ':' || j AS unit_key, NULL::text AS name,
       ST_Multi(ST_CollectionExtract(ST_Intersection(geom, area_geom), 3)) AS geom,
       NULL::geometry AS geom_etrs89
FROM cells
"""


def _grid_sql(kind: str) -> str:
    function = "ST_HexagonGrid" if kind == "hex" else "ST_SquareGrid"
    return _GRID_SQL.format(function=function)


def create_unit_tables(
    conn: Connection, spec: UnitSpec, as_of: AsOf, plan_id: int | None, storage_srid: int
) -> int:
    """Fill ``_unit`` (and ``_unit_source`` but for zones) for the computation; the count.

    ``_unit`` carries each unit's ETRS89 twin (``geom_etrs89``) for publication.
    """
    conn.execute(
        sa.text("DROP TABLE IF EXISTS _unit_piece, _unit_source, _unit, _unit_part, _unit_zone")
    )
    params: dict[str, Any] = {**as_of.params()}
    if spec.kind in ("utr", "zones"):
        params["plan_id"] = reference_plan(conn, as_of, plan_id)
    if spec.kind == "utr":
        conn.execute(
            sa.text(f"CREATE TEMP TABLE _unit_zone ON COMMIT DROP AS {_UTR_ZONES_SQL}"), params
        )
        conn.execute(sa.text(f"CREATE TEMP TABLE _unit_part ON COMMIT DROP AS {_UTR_MERGED_SQL}"))
        fill_twins(conn, "_unit_part", "part_no", storage_srid)
        source = _UTR_UNITS_SQL
    elif spec.kind == "zones":
        source = _zone_units_sql()
    elif spec.kind in GRID_KINDS:
        params["size"] = spec.size
        source = _grid_sql(spec.kind)
    else:
        _check_unit_set(conn, spec)
        params["unit_set"] = spec.name
        source = (
            "SELECT unit_key, name, geom, NULL::geometry AS geom_etrs89 FROM analysis.unit "
            "WHERE unit_set = :unit_set"
        )
    with local_settings(conn, **fast_compression(conn)):
        conn.execute(
            sa.text(
                "CREATE TEMP TABLE _unit ON COMMIT DROP AS "
                'SELECT unit_key, row_number() OVER (ORDER BY unit_key COLLATE "C")::int '
                "AS unit_no, name, ST_Multi(geom) AS geom, ST_Area(geom) AS area, geom_etrs89 "
                f"FROM ({source}) s WHERE geom IS NOT NULL AND NOT ST_IsEmpty(geom)"
            ),
            params,
        )
    count = int(conn.execute(sa.text("SELECT count(*) FROM _unit")).scalar_one())
    if count == 0:
        raise NotFound(f"units {spec.label!r} are empty (nothing loaded?)", locator="units")
    if count > MAX_GRID_CELLS:
        raise InvalidParameter(f"{count} units is too many; use a larger grid", locator="units")
    conn.execute(sa.text("ALTER TABLE _unit ADD PRIMARY KEY (unit_key)"))
    if spec.kind != "utr":
        fill_twins(conn, "_unit", "unit_key", storage_srid)
    if spec.kind in ("utr", "zones"):
        # Units made of zones place their points straight from the zone table.
        conn.execute(sa.text("ANALYZE _unit"))
        return count
    conn.execute(
        sa.text(
            "CREATE TEMP TABLE _unit_source ON COMMIT DROP AS "
            "SELECT s.unit_no, c.geom FROM _unit s CROSS JOIN LATERAL ("
            "SELECT ST_Subdivide(s.geom, :piece) AS geom WHERE ST_NPoints(s.geom) > :most "
            "UNION ALL SELECT s.geom WHERE ST_NPoints(s.geom) <= :most) c"
        ),
        {"piece": SOURCE_PIECE_VERTICES, "most": SOURCE_VERTICES},
    )
    conn.execute(sa.text("CREATE INDEX ON _unit_source USING gist (geom)"))
    conn.execute(sa.text("ANALYZE _unit; ANALYZE _unit_source"))
    return count


def fill_twins(conn: Connection, table: str, key: str, storage_srid: int) -> None:
    """Fill the missing ``geom_etrs89`` of temporary ``table`` (rows keyed by ``key``).

    TransDatRO (in Python, vectorised) for Stereo 70, PostGIS's transform otherwise, as
    ``gis_core.twins`` does for the stored layers.
    """
    for name in (table, key):
        if not name.isidentifier():
            raise ValueError(f"bad identifier {name!r}")
    if storage_srid != STEREO70:
        conn.execute(
            sa.text(
                f"UPDATE {table} SET geom_etrs89 = ST_Multi(ST_Transform(geom, {ETRS89})) "
                "WHERE geom_etrs89 IS NULL"
            )
        )
        return
    rows = conn.execute(
        sa.text(f"SELECT {key}, ST_AsBinary(geom) FROM {table} WHERE geom_etrs89 IS NULL")
    ).all()
    if not rows:
        return
    geoms = shapely.from_wkb([bytes(r[1]) for r in rows])
    twins = transform_geometries(geoms, STEREO70, ETRS89)
    conn.execute(
        sa.text(
            f"UPDATE {table} t SET geom_etrs89 = ST_Multi(ST_GeomFromWKB(x.w, {ETRS89})) "
            f"FROM unnest(CAST(:keys AS text[]), CAST(:wkbs AS bytea[])) AS x(k, w) "
            f"WHERE t.{key}::text = x.k"
        ),
        {"keys": [str(r[0]) for r in rows], "wkbs": [bytes(w) for w in shapely.to_wkb(twins)]},
    )


def create_unit_pieces(conn: Connection) -> None:
    """``_unit_piece`` (key, geometry): the units cut into small pieces, for area overlays."""
    conn.execute(sa.text("DROP TABLE IF EXISTS _unit_piece"))
    conn.execute(
        sa.text(
            "CREATE TEMP TABLE _unit_piece ON COMMIT DROP AS "
            "SELECT unit_key, ST_Subdivide(geom, :v) AS geom FROM _unit"
        ),
        {"v": PIECE_VERTICES},
    )
    conn.execute(sa.text("CREATE INDEX ON _unit_piece USING gist (geom)"))
    conn.execute(sa.text("ANALYZE _unit_piece"))


def place_points(
    conn: Connection, points: str, out: str, id_as: str, columns: tuple[str, ...] = ()
) -> None:
    """Temporary ``out`` (``id_as``, unit_key[, columns]): the unit of each point of ``points``.

    ``points`` is a temporary table (id, pt, ...) with a GiST index on ``pt``. The join
    runs unit shape by unit shape over that index, so each shape is prepared once
    (PostGIS caches it while it repeats) and each candidate point costs one cheap
    point-in-polygon test. A point on a shared edge goes to the smallest key.
    """
    for name in (points, out, id_as, *columns):
        if not name.isidentifier():
            raise ValueError(f"bad identifier {name!r}")
    inner = "".join(f", p.{c}" for c in columns)
    outer = "".join(f", x.{c}" for c in columns)
    conn.execute(
        sa.text(
            f"CREATE TEMP TABLE {out} ON COMMIT DROP AS "
            f"SELECT x.id AS {id_as}, u.unit_key{outer} FROM ("
            f"SELECT DISTINCT ON (p.id) p.id, s.unit_no{inner} FROM _unit_source s "
            f"JOIN {points} p ON s.geom && p.pt AND ST_Intersects(s.geom, p.pt) "
            "ORDER BY p.id, s.unit_no) x JOIN _unit u ON u.unit_no = x.unit_no"
        )
    )


def _check_unit_set(conn: Connection, spec: UnitSpec) -> None:
    found = conn.execute(
        sa.text("SELECT 1 FROM analysis.unit_set WHERE name = :n"), {"n": spec.name}
    ).first()
    if found is None:
        raise NotFound(
            f"unknown units {spec.name!r}: use utr, zones, hex:SIZE, square:SIZE or import a "
            "boundary layer with 'urbangis indicators units import'",
            locator="units",
        )


def read_units(conn: Connection, storage_srid: int) -> gpd.GeoDataFrame:
    """The current ``_unit`` table as a GeoDataFrame (for the Dask path and reports)."""
    rows = conn.execute(
        sa.text("SELECT unit_key, name, ST_AsBinary(geom) AS wkb FROM _unit ORDER BY unit_key")
    ).all()
    return gpd.GeoDataFrame(
        {"unit_key": [r.unit_key for r in rows], "name": [r.name for r in rows]},
        geometry=shapely.from_wkb([bytes(r.wkb) for r in rows]),
        crs=storage_srid,
    )


# -- imported boundary layers ----------------------------------------------------------
def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_vector_file(
    path: Path, storage_srid: int, *, layer: str | None = None
) -> gpd.GeoDataFrame:
    """A vector file in the storage CRS; clear errors for unreadable or CRS-less files."""
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file", locator=str(path))
    try:
        gdf = pyogrio.read_dataframe(path, layer=layer)
    except Exception as exc:  # pyogrio raises several types for unreadable data
        raise InvalidInput(f"{path}: cannot be read as a vector file ({exc})") from None
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry.isna().all():
        raise InvalidInput(f"{path}: has no geometries", locator=str(path))
    if gdf.crs is None:
        raise InvalidInput(f"{path}: has no coordinate reference system", locator=str(path))
    return gdf.to_crs(storage_srid)


def import_unit_set(
    conn: Connection,
    path: Path,
    name: str,
    storage_srid: int,
    *,
    key_field: str | None = None,
    name_field: str | None = None,
    title: str | None = None,
) -> int:
    """Load (or replace) a boundary layer as unit set ``name``; returns the unit count."""
    if not _NAME.match(name) or name in ("utr", "zones") or name.split(":")[0] in GRID_KINDS:
        raise InvalidParameter(
            f"unit set name {name!r} must be lower-case letters, digits and _ and not a "
            "built-in units name",
            locator="name",
        )
    gdf = read_vector_file(path, storage_srid)
    for field in (key_field, name_field):
        if field is not None and field not in gdf.columns:
            raise InvalidInput(
                f"{path}: no field {field!r} (fields: {', '.join(map(str, gdf.columns[:-1]))})",
                locator=field,
            )
    keys = (
        gdf[key_field].astype(str).str.strip().to_numpy()
        if key_field
        else np.asarray([str(i + 1) for i in range(len(gdf))])
    )
    _check_keys(path, keys, key_field)
    geoms = _polygons(path, gdf)
    names = gdf[name_field].astype(str).to_numpy() if name_field else np.full(len(gdf), None)
    conn.execute(sa.text("DELETE FROM analysis.unit_set WHERE name = :n"), {"n": name})
    conn.execute(
        sa.text(
            "INSERT INTO analysis.unit_set (name, title, source, source_sha256, key_field, "
            "name_field, feature_count) VALUES (:n, :t, :s, :h, :k, :nf, :c)"
        ),
        {
            "n": name,
            "t": title or name,
            "s": path.name,
            "h": file_sha256(path),
            "k": key_field,
            "nf": name_field,
            "c": len(gdf),
        },
    )
    conn.execute(
        sa.text(
            "INSERT INTO analysis.unit (unit_set, unit_key, name, geom) "
            "SELECT :n, k, nm, ST_Multi(ST_CollectionExtract(ST_MakeValid("
            "ST_GeomFromWKB(w, :srid)), 3)) FROM unnest(CAST(:keys AS text[]), "
            "CAST(:names AS text[]), CAST(:wkbs AS bytea[])) AS x(k, nm, w)"
        ),
        {
            "n": name,
            "srid": storage_srid,
            "keys": keys.tolist(),
            "names": names.tolist(),
            "wkbs": [bytes(w) for w in shapely.to_wkb(geoms)],
        },
    )
    return len(gdf)


def _check_keys(path: Path, keys: np.ndarray, key_field: str | None) -> None:
    seen: dict[str, int] = {}
    for row, key in enumerate(keys.tolist(), start=1):
        if not key or key.lower() in ("nan", "none"):
            raise InvalidInput(f"{path}: row {row}: empty {key_field}", locator=key_field)
        if key in seen:
            raise InvalidInput(
                f"{path}: row {row}: {key_field} {key!r} repeats row {seen[key]}",
                locator=key_field,
            )
        seen[key] = row


def _polygons(path: Path, gdf: gpd.GeoDataFrame) -> np.ndarray:
    geoms = np.asarray(gdf.geometry.to_numpy())
    kinds = shapely.get_type_id(geoms)
    bad = np.flatnonzero(~np.isin(kinds, (3, 6)))
    if bad.size:
        row = int(bad[0]) + 1
        raise InvalidInput(f"{path}: row {row}: units must be polygons", locator="geometry")
    return geoms
