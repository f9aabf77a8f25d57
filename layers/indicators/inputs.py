"""Input layers of the indicators: parks, schools, transit stops, green areas, population.

They come from files (anything GDAL reads, through pyogrio) or from a table of the
database, are reprojected to the storage CRS and stored in ``analysis.input_feature``
under a layer name, with the file's SHA-256 (or the table's content hash) so every
indicator run can record exactly which version it read. A reload replaces the layer in
one transaction and bumps its version.

Population comes either per spatial unit (a table keyed by the unit key: CSV or any
attribute table) or as points with a count of residents (an input layer of kind
``population``), which works for any units, grids included.
"""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path

import numpy as np
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_core.errors import InvalidInput, InvalidParameter, NotFound
from layers.indicators.units import UnitSpec, file_sha256, read_vector_file

KINDS = ("park", "school", "transit_stop", "green", "population")
POINT_KINDS = ("park", "school", "transit_stop", "population")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_QUALIFIED = re.compile(r"^([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)$")


def _check_name(name: str, kind: str) -> None:
    if kind not in KINDS:
        raise InvalidParameter(f"kind must be one of {', '.join(KINDS)}", locator="kind")
    if not _NAME.match(name):
        raise InvalidParameter(
            f"input layer name {name!r} must be lower-case letters, digits and _",
            locator="name",
        )


def load_input_file(
    conn: Connection,
    path: Path,
    kind: str,
    storage_srid: int,
    *,
    name: str | None = None,
    value_field: str | None = None,
    name_field: str | None = None,
) -> int:
    """Load a vector file as input layer ``name`` (default: the kind); returns the count."""
    name = name or kind
    _check_name(name, kind)
    gdf = read_vector_file(path, storage_srid)
    for field in (value_field, name_field):
        if field is not None and field not in gdf.columns:
            raise InvalidInput(f"{path}: no field {field!r}", locator=field)
    if kind == "population" and value_field is None:
        raise InvalidParameter(
            "population points need --value-field (residents per point)", locator="value_field"
        )
    geoms = np.asarray(gdf.geometry.to_numpy())
    _check_geometries(path, geoms, kind)
    values = _values(path, gdf[value_field].to_numpy(), value_field) if value_field else None
    names = gdf[name_field].astype(str).tolist() if name_field else [None] * len(gdf)
    _replace_layer(conn, name, kind, path.name, file_sha256(path), value_field, len(gdf))
    conn.execute(
        sa.text(
            "INSERT INTO analysis.input_feature (input_layer, name, value, geom) "
            "SELECT :layer, n, v, ST_GeomFromWKB(w, :srid) FROM unnest("
            "CAST(:names AS text[]), CAST(:values AS float8[]), CAST(:wkbs AS bytea[])) "
            "AS x(n, v, w)"
        ),
        {
            "layer": name,
            "srid": storage_srid,
            "names": names,
            "values": values.tolist() if values is not None else [None] * len(gdf),
            "wkbs": [bytes(w) for w in shapely.to_wkb(geoms)],
        },
    )
    return len(gdf)


def _check_geometries(path: Path, geoms: np.ndarray, kind: str) -> None:
    kinds = shapely.get_type_id(geoms)
    allowed = (0, 4) if kind in POINT_KINDS else (3, 6)
    bad = np.flatnonzero(~np.isin(kinds, allowed) | shapely.is_empty(geoms))
    if bad.size:
        what = "points" if kind in POINT_KINDS else "polygons"
        raise InvalidInput(
            f"{path}: row {int(bad[0]) + 1}: a {kind} layer holds {what}", locator="geometry"
        )


def _values(path: Path, raw: np.ndarray, field: str | None) -> np.ndarray:
    out = np.empty(raw.size, dtype=float)
    for row, value in enumerate(raw.tolist(), start=1):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if not np.isfinite(number) or number < 0:
            raise InvalidInput(
                f"{path}: row {row}: {field} must be a non-negative number, got {value!r}",
                locator=field,
            )
        out[row - 1] = number
    return out


def _replace_layer(
    conn: Connection,
    name: str,
    kind: str,
    source: str,
    sha256: str,
    value_field: str | None,
    count: int,
) -> None:
    previous = conn.execute(
        sa.text("SELECT version FROM analysis.input_layer WHERE name = :n"), {"n": name}
    ).scalar()
    conn.execute(sa.text("DELETE FROM analysis.input_layer WHERE name = :n"), {"n": name})
    conn.execute(
        sa.text(
            "INSERT INTO analysis.input_layer (name, kind, source, source_sha256, value_field, "
            "feature_count, version) VALUES (:n, :k, :s, :h, :v, :c, :ver)"
        ),
        {
            "n": name,
            "k": kind,
            "s": source,
            "h": sha256,
            "v": value_field,
            "c": count,
            "ver": int(previous or 0) + 1,
        },
    )


def load_input_table(
    conn: Connection,
    qualified: str,
    kind: str,
    storage_srid: int,
    *,
    name: str | None = None,
    value_column: str | None = None,
) -> int:
    """Copy an existing table's geometries (and a value column) into an input layer.

    The table and columns are checked against the database catalog before any SQL uses
    them; the content hash of what was copied is the version recorded by runs.
    """
    name = name or kind
    _check_name(name, kind)
    match = _QUALIFIED.match(qualified or "")
    if match is None:
        raise InvalidParameter("table must be schema.table (lower case)", locator="table")
    schema, table = match.groups()
    geometry = conn.execute(
        sa.text(
            "SELECT f_geometry_column FROM geometry_columns "
            "WHERE f_table_schema = :s AND f_table_name = :t ORDER BY f_geometry_column LIMIT 1"
        ),
        {"s": schema, "t": table},
    ).scalar()
    if geometry is None:
        raise NotFound(f"table {qualified} does not exist or has no geometry", locator="table")
    columns = set(
        conn.execute(
            sa.text(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = :s AND table_name = :t"
            ),
            {"s": schema, "t": table},
        ).scalars()
    )
    if value_column is not None and value_column not in columns:
        raise InvalidParameter(f"{qualified} has no column {value_column!r}", locator="value")
    source = sa.table(table, sa.column(geometry), schema=schema)
    geom = sa.func.ST_Transform(source.c[geometry], storage_srid)
    value = sa.cast(sa.column(value_column), sa.Float) if value_column else sa.null()
    rows = conn.execute(
        sa.select(sa.func.ST_AsBinary(geom), value)
        .select_from(source)
        .where(source.c[geometry].is_not(None))
    ).all()
    digest = hashlib.sha256()
    for wkb, number in rows:
        digest.update(bytes(wkb))
        digest.update(repr(number).encode())
    geoms = shapely.from_wkb([bytes(r[0]) for r in rows])
    _check_geometries(Path(qualified), np.asarray(geoms), kind)
    _replace_layer(
        conn, name, kind, f"table {qualified}", digest.hexdigest(), value_column, len(rows)
    )
    conn.execute(
        sa.text(
            "INSERT INTO analysis.input_feature (input_layer, value, geom) "
            "SELECT :layer, v, ST_GeomFromWKB(w, :srid) FROM unnest("
            "CAST(:values AS float8[]), CAST(:wkbs AS bytea[])) AS x(v, w)"
        ),
        {
            "layer": name,
            "srid": storage_srid,
            "values": [None if r[1] is None else float(r[1]) for r in rows],
            "wkbs": [bytes(r[0]) for r in rows],
        },
    )
    return len(rows)


def import_population(
    conn: Connection,
    path: Path,
    units: str,
    year: int,
    *,
    key_field: str,
    population_field: str,
) -> int:
    """Residents per unit from a CSV (``;`` or ``,`` separated); replaces that year's rows."""
    spec = UnitSpec.parse(units)
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file", locator=str(path))
    if not 1900 <= year <= 2200:
        raise InvalidParameter("year must be between 1900 and 2200", locator="year")
    text = path.read_text(encoding="utf-8-sig")
    dialect = csv.Sniffer().sniff(text.splitlines()[0] if text else ",", delimiters=",;\t")
    reader = csv.DictReader(text.splitlines(), dialect=dialect)
    fields = reader.fieldnames or []
    for field in (key_field, population_field):
        if field not in fields:
            raise InvalidInput(
                f"{path}: no column {field!r} (columns: {', '.join(fields)})", locator=field
            )
    keys: list[str] = []
    values: list[float] = []
    seen: set[str] = set()
    for row_number, row in enumerate(reader, start=2):
        key = (row.get(key_field) or "").strip()
        if not key:
            raise InvalidInput(f"{path}: row {row_number}: empty {key_field}", locator=key_field)
        if key in seen:
            raise InvalidInput(
                f"{path}: row {row_number}: {key_field} {key!r} appears twice", locator=key_field
            )
        seen.add(key)
        raw = (row.get(population_field) or "").strip().replace(" ", "")
        try:
            number = float(raw)
        except ValueError:
            number = -1.0
        if not np.isfinite(number) or number < 0:
            raise InvalidInput(
                f"{path}: row {row_number}: {population_field} must be a non-negative number, "
                f"got {raw!r}",
                locator=population_field,
            )
        keys.append(key)
        values.append(number)
    conn.execute(
        sa.text("DELETE FROM analysis.population WHERE unit_set = :u AND year = :y"),
        {"u": spec.population_key, "y": year},
    )
    conn.execute(
        sa.text(
            "INSERT INTO analysis.population (unit_set, unit_key, year, population, source, "
            "source_sha256) SELECT :u, k, :y, p, :s, :h FROM unnest(CAST(:keys AS text[]), "
            "CAST(:values AS float8[])) AS x(k, p)"
        ),
        {
            "u": spec.population_key,
            "y": year,
            "s": path.name,
            "h": file_sha256(path),
            "keys": keys,
            "values": values,
        },
    )
    return len(keys)


def input_layers(conn: Connection) -> list[dict[str, object]]:
    """What is loaded, for ``indicators inputs list`` and the run records."""
    rows = conn.execute(
        sa.text(
            "SELECT name, kind, source, source_sha256, feature_count, version "
            "FROM analysis.input_layer ORDER BY kind, name"
        )
    ).mappings()
    return [dict(r) for r in rows]
