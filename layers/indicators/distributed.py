"""The same indicators on dask-geopandas, for inputs too big for one PostGIS.

Inputs are a *dataset*: a folder (local, or any fsspec URL the workers can read, e.g. a
shared file system or an object store) of GeoParquet parts per layer, written from a
database by ``export_dataset`` (``urbangis indicators dataset export``) or produced by
any other pipeline with the same columns. The spatial units stay small and travel to
every worker; the big layers (parcels, buildings) are read partition by partition, each
partition reduced to per-unit sums ``(numerator, denominator, objects)`` on a worker,
and the sums added up: the catalogue's ratios make that exact, and the assignment rules
are those of the PostGIS path (point on surface, smallest key in code-point order on a
shared edge), so both engines give the same values (the tests compare them).

The computation runs on a ``distributed`` local cluster by default, or on the Dask
scheduler given by address (``--scheduler tcp://host:8786``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask.dataframe as dd
import dask_geopandas
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa
from distributed import Client, LocalCluster
from sqlalchemy.engine import Connection

from gis_core.errors import InvalidInput
from layers.analysis.acts import ActsSource, acts_per_parcel_sql, probe_acts
from layers.analysis.basis import as_of_filter
from layers.indicators.catalogue import Indicator, IndicatorParameters
from layers.indicators.postgis import Context, Partial, green_source, prepare_population
from layers.indicators.units import read_units

LAYERS = ("parcels", "buildings", "restrictions", "features", "acts")
DEFAULT_CHUNK = 250_000
_COLUMNS = ["unit_key", "num", "den", "obj"]
_ACT_TYPES = {
    "act_id": "int64",
    "parcel_id": "int64",
    "kind": "object",
    "year": "int64",
    "days_to_issue": "float64",
}


# -- writing a dataset from the database ---------------------------------------------
_EXPORTS = {
    "parcels": "SELECT id, valid_from, valid_to, ST_AsBinary(geom) AS wkb FROM cadastre.parcel "
    "WHERE geom IS NOT NULL AND id > :last ORDER BY id LIMIT :n",
    "buildings": "SELECT id, valid_from, valid_to, footprint_area::float8 AS footprint_area, "
    "floor_area::float8 AS floor_area, levels, ST_AsBinary(geom) AS wkb FROM cadastre.building "
    "WHERE geom IS NOT NULL AND id > :last ORDER BY id LIMIT :n",
    "restrictions": "SELECT id, kind, valid_from, valid_to, ST_AsBinary(geom) AS wkb "
    "FROM urbanism.restriction WHERE id > :last ORDER BY id LIMIT :n",
    "features": "SELECT f.id, l.kind, f.value, ST_AsBinary(f.geom) AS wkb "
    "FROM analysis.input_feature f JOIN analysis.input_layer l ON l.name = f.input_layer "
    "WHERE f.id > :last ORDER BY f.id LIMIT :n",
}


def export_dataset(
    conn: Connection,
    out: Path,
    storage_srid: int,
    *,
    chunk: int = DEFAULT_CHUNK,
    acts: ActsSource | None = None,
) -> dict[str, int]:
    """Write every layer the indicators read as GeoParquet parts of ``chunk`` rows."""
    counts: dict[str, int] = {}
    for layer, statement in _EXPORTS.items():
        folder = out / layer
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("part-*.parquet"):
            old.unlink()
        last, part, total = 0, 0, 0
        while True:
            frame = pd.DataFrame(
                conn.execute(sa.text(statement), {"last": last, "n": chunk}).mappings().all()
            )
            if frame.empty:
                break
            geoms = shapely.from_wkb([bytes(w) for w in frame.pop("wkb")])
            gdf = gpd.GeoDataFrame(frame, geometry=geoms, crs=storage_srid)
            gdf.to_parquet(folder / f"part-{part:05d}.parquet", index=False)
            last, part, total = int(frame["id"].iloc[-1]), part + 1, total + len(frame)
        counts[layer] = total
    counts["acts"] = _export_acts(conn, out / "acts", acts or ActsSource())
    return counts


def _export_acts(conn: Connection, folder: Path, source: ActsSource) -> int:
    """The issued acts on their primary parcel, when the register exists."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("part-*.parquet"):
        old.unlink()
    if not probe_acts(conn, source).ok:
        return 0
    rows = conn.execute(
        sa.text(
            f"WITH parcel AS (SELECT id FROM cadastre.parcel), {acts_per_parcel_sql(source)} "
            "SELECT act_id, parcel_id, kind, year, days_to_issue::float8 AS days_to_issue "
            "FROM act_on_parcel"
        )
    ).mappings()
    frame = pd.DataFrame(list(rows), columns=list(_ACT_TYPES)).astype(_ACT_TYPES)
    frame.to_parquet(folder / "part-00000.parquet", index=False)
    return len(frame)


# -- the cluster ----------------------------------------------------------------------
@contextmanager
def dask_client(scheduler: str | None = None, *, workers: int = 2) -> Iterator[Client]:
    """A client of the scheduler at ``scheduler``, or of a new local cluster."""
    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        yield client


# -- computing ------------------------------------------------------------------------
@dataclass
class DaskEngine:
    """Computes ``Partial`` sums from a dataset; plugs into ``runs.compute_indicators``."""

    dataset: str
    storage_srid: int
    client: Client
    _units: gpd.GeoDataFrame | None = field(default=None, repr=False)

    def __call__(self, ctx: Context, indicator: Indicator) -> list[Partial] | None:
        if self._units is None:
            self._units = read_units(ctx.conn, self.storage_srid)
        compute = _COMPUTE[indicator.id]
        return compute(self, ctx, self._units)

    def layer(self, name: str) -> dask_geopandas.GeoDataFrame:
        path = f"{self.dataset.rstrip('/')}/{name}"
        if not path.startswith(("s3:", "gs:", "az:", "http")) and not any(
            Path(path).glob("*.parquet")
        ):
            raise InvalidInput(f"dataset {self.dataset}: no {name} parts", locator="dataset")
        return dask_geopandas.read_parquet(path)

    def small_layer(self, name: str) -> gpd.GeoDataFrame:
        """A layer small enough to send whole to every worker (empty when absent)."""
        path = Path(self.dataset) / name
        if path.is_dir() and not any(path.glob("*.parquet")):
            empty = {"kind": pd.Series(dtype="object"), "value": pd.Series(dtype="f8")}
            return gpd.GeoDataFrame(empty, geometry=[], crs=self.storage_srid)
        frame: gpd.GeoDataFrame = self.layer(name).compute()
        return frame

    def acts(self) -> dd.DataFrame | None:
        path = Path(self.dataset) / "acts"
        if path.is_dir() and not any(path.glob("*.parquet")):
            return None
        frame: dd.DataFrame = dd.read_parquet(str(path)).astype(_ACT_TYPES)
        return frame


def _as_of(frame: pd.DataFrame, instant: Any) -> pd.DataFrame:
    """Rows whose period covers the instant (the SQL path's ``as_of_filter``)."""
    start = pd.to_datetime(frame["valid_from"], utc=True)
    end = pd.to_datetime(frame["valid_to"], utc=True)
    keep = (start < instant) & (end.isna() | (end >= instant))
    return frame.loc[keep.to_numpy()]


def assign_points(points: np.ndarray, units: gpd.GeoDataFrame) -> np.ndarray:
    """For each point, the key of the unit containing it (smallest key on shared edges).

    Returns an object array with ``None`` for points outside every unit.
    """
    tree = shapely.STRtree(units.geometry.to_numpy())
    left, right = tree.query(points, predicate="intersects")
    keys = units["unit_key"].to_numpy()
    found = np.full(len(points), None, dtype=object)
    if left.size:
        pairs = pd.DataFrame({"i": left, "key": keys[right]})
        best = pairs.sort_values(["i", "key"], kind="stable").drop_duplicates("i")
        found[best["i"].to_numpy()] = best["key"].to_numpy()
    return found


def _sums(keys: np.ndarray, num: np.ndarray, den: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame({"unit_key": keys, "num": num, "den": den, "obj": 1})
    frame = frame[frame["unit_key"].notna()]
    return frame.groupby("unit_key", as_index=False)[["num", "den", "obj"]].sum()


def _reduce(engine: DaskEngine, parts: dd.DataFrame) -> pd.DataFrame:
    """Add the partitions' per-unit sums up on the cluster."""
    total = parts.groupby("unit_key")[["num", "den", "obj"]].sum()
    result: pd.DataFrame = engine.client.compute(total).result()
    return result.reset_index()


def _parcel_partial(
    frame: gpd.GeoDataFrame,
    units: gpd.GeoDataFrame,
    instant: Any,
    flag: Flag | None,
) -> pd.DataFrame:
    parcels = _as_of(frame, instant)
    geoms = parcels.geometry.to_numpy()
    keys = assign_points(shapely.point_on_surface(geoms), units)
    if flag is None:
        return _sums(keys, shapely.area(geoms), np.ones(len(geoms)))
    return _sums(keys, flag.hits(geoms).astype(float), np.ones(len(geoms)))


def _parcels(
    engine: DaskEngine,
    ctx: Context,
    units: gpd.GeoDataFrame,
    flag: Flag | None = None,
) -> list[Partial]:
    parcels = engine.layer("parcels")
    parts = parcels.map_partitions(_parcel_partial, units, ctx.as_of.instant, flag, meta=_meta())
    return _to_partials(_reduce(engine, parts))


def _meta() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "unit_key": pd.Series(dtype="object"),
            "num": pd.Series(dtype="f8"),
            "den": pd.Series(dtype="f8"),
            "obj": pd.Series(dtype="i8"),
        }
    )


def _to_partials(frame: pd.DataFrame) -> list[Partial]:
    return [
        (str(k), float(n), float(d), int(o))
        for k, n, d, o in frame[_COLUMNS].itertuples(index=False, name=None)
    ]


@dataclass(frozen=True)
class Flag:
    """Which parcels to count: those intersecting, or within ``distance`` of, ``targets``.

    Plain data, so it pickles to the workers; each builds its own index.
    """

    targets: np.ndarray
    distance: float | None = None

    def hits(self, geoms: np.ndarray) -> np.ndarray:
        hit = np.zeros(len(geoms), dtype=bool)
        if len(self.targets) == 0 or len(geoms) == 0:
            return hit
        tree = shapely.STRtree(self.targets)
        if self.distance is None:
            left, _ = tree.query(geoms, predicate="intersects")
        else:
            left, _ = tree.query(geoms, predicate="dwithin", distance=self.distance)
        hit[left] = True
        return hit


def _restrictions(engine: DaskEngine, ctx: Context, kinds: tuple[str, ...]) -> gpd.GeoDataFrame:
    frame = engine.small_layer("restrictions")
    if frame.empty:
        return frame
    frame = _as_of(frame, ctx.as_of.instant)
    return frame[frame["kind"].isin(list(kinds))]


def _features(engine: DaskEngine, kind: str) -> gpd.GeoDataFrame:
    frame = engine.small_layer("features")
    return frame[frame["kind"] == kind]


def avg_parcel_size(engine: DaskEngine, ctx: Context, units: gpd.GeoDataFrame) -> list[Partial]:
    return _parcels(engine, ctx, units)


def _restriction_share(kinds_of: Callable[[IndicatorParameters], tuple[str, ...]]) -> Any:
    def compute(engine: DaskEngine, ctx: Context, units: gpd.GeoDataFrame) -> list[Partial]:
        targets = _restrictions(engine, ctx, kinds_of(ctx.parameters))
        return _parcels(engine, ctx, units, Flag(targets.geometry.to_numpy()))

    return compute


def _access_share(kind: str) -> Any:
    def compute(engine: DaskEngine, ctx: Context, units: gpd.GeoDataFrame) -> list[Partial] | None:
        points = _features(engine, kind)
        if points.empty:
            ctx.notes[f"no_{kind}"] = f"skipped: the dataset has no {kind} features"
            return None
        flag = Flag(points.geometry.to_numpy(), ctx.parameters.distance(kind))
        return _parcels(engine, ctx, units, flag)

    return compute


def _building_partial(
    frame: gpd.GeoDataFrame, units: gpd.GeoDataFrame, instant: Any, column: str
) -> pd.DataFrame:
    buildings = _as_of(frame, instant)
    geoms = buildings.geometry.to_numpy()
    fp = buildings["footprint_area"].to_numpy(dtype=float, na_value=np.nan)
    fp = np.where(np.isnan(fp), shapely.area(geoms), fp)
    levels = buildings["levels"].to_numpy(dtype=float, na_value=np.nan)
    levels = np.maximum(np.where(np.isnan(levels), 1.0, levels), 1.0)
    gfa = buildings["floor_area"].to_numpy(dtype=float, na_value=np.nan)
    gfa = np.where(np.isnan(gfa), fp * levels, gfa)
    keys = assign_points(shapely.point_on_surface(geoms), units)
    values = gfa if column == "gfa" else fp
    return _sums(keys, values, np.zeros(len(geoms)))


def _building_sum(column: str) -> Any:
    def compute(engine: DaskEngine, ctx: Context, units: gpd.GeoDataFrame) -> list[Partial]:
        parts = engine.layer("buildings").map_partitions(
            _building_partial, units, ctx.as_of.instant, column, meta=_meta()
        )
        found = {k: (n, o) for k, n, _, o in _to_partials(_reduce(engine, parts))}
        areas = dict(zip(units["unit_key"], shapely.area(units.geometry.to_numpy()), strict=True))
        return [
            (key, found.get(key, (0.0, 0))[0], float(areas[key]), found.get(key, (0.0, 0))[1])
            for key in units["unit_key"]
        ]

    return compute


def _population(ctx: Context) -> dict[str, float] | None:
    """Residents per unit: the same table the PostGIS path prepares (it is small)."""
    if not prepare_population(ctx):
        return None
    rows = ctx.conn.execute(sa.text("SELECT unit_key, population FROM _population")).all()
    return {str(k): float(v) for k, v in rows}


def green_per_inhabitant(
    engine: DaskEngine, ctx: Context, units: gpd.GeoDataFrame
) -> list[Partial] | None:
    population = _population(ctx)
    if population is None:
        return None
    if green_source(ctx.conn) == "input":
        green = _features(engine, "green").geometry.to_numpy()
    else:
        green = _green_zones(ctx)
    merged = shapely.union_all(shapely.make_valid(green)) if len(green) else None
    areas = (
        shapely.area(shapely.intersection(units.geometry.to_numpy(), merged))
        if merged is not None
        else np.zeros(len(units))
    )
    return [
        (str(key), float(area), population.get(str(key)), None)
        for key, area in zip(units["unit_key"], areas, strict=True)
    ]


def _green_zones(ctx: Context) -> np.ndarray:
    """The green UTR zones of the reference plan (a few polygons, read from the plan)."""
    rows = ctx.conn.execute(
        sa.text(
            "SELECT ST_AsBinary(z.geom) FROM urbanism.zone z WHERE z.plan_id = :plan_id "
            f"AND {as_of_filter('z')} AND z.utr_code LIKE ANY(CAST(:patterns AS text[]))"
        ),
        {
            **ctx.as_of.params(),
            "plan_id": ctx.plan_id,
            "patterns": [f"{p}%" for p in ctx.parameters.green_utr_prefixes],
        },
    ).scalars()
    return np.asarray(shapely.from_wkb([bytes(r) for r in rows]))


def _parcel_units(frame: gpd.GeoDataFrame, units: gpd.GeoDataFrame, instant: Any) -> pd.DataFrame:
    parcels = _as_of(frame, instant)
    keys = assign_points(shapely.point_on_surface(parcels.geometry.to_numpy()), units)
    out = pd.DataFrame({"parcel_id": parcels["id"].to_numpy(), "unit_key": keys})
    return out[out["unit_key"].notna()]


def _acts_by_unit(engine: DaskEngine, ctx: Context, units: gpd.GeoDataFrame) -> pd.DataFrame | None:
    acts = engine.acts()
    if acts is None:
        ctx.notes["no_acts"] = "skipped: the dataset has no acts"
        return None
    meta = pd.DataFrame({"parcel_id": pd.Series(dtype="i8"), "unit_key": pd.Series(dtype="object")})
    placed = engine.layer("parcels").map_partitions(
        _parcel_units, units, ctx.as_of.instant, meta=meta
    )
    joined = acts[acts["year"] == ctx.year].merge(placed, on="parcel_id")
    result: pd.DataFrame = engine.client.compute(joined).result()
    return result


def acts_per_1000(
    engine: DaskEngine, ctx: Context, units: gpd.GeoDataFrame
) -> list[Partial] | None:
    acts = _acts_by_unit(engine, ctx, units)
    population = _population(ctx) if acts is not None else None
    if acts is None or population is None:
        return None
    counts = acts.groupby("unit_key").size().to_dict()
    return [
        (str(k), float(counts.get(k, 0)), population.get(str(k)), int(counts.get(k, 0)))
        for k in units["unit_key"]
    ]


def time_to_issue(
    engine: DaskEngine, ctx: Context, units: gpd.GeoDataFrame
) -> list[Partial] | None:
    acts = _acts_by_unit(engine, ctx, units)
    if acts is None:
        return None
    out: list[Partial] = []
    for key, group in acts.groupby("unit_key"):
        days = group["days_to_issue"].dropna()
        out.append((str(key), float(days.sum()), float(len(days)), len(group)))
    return out


_COMPUTE: dict[str, Callable[[DaskEngine, Context, gpd.GeoDataFrame], list[Partial] | None]] = {
    "built_density": _building_sum("gfa"),
    "built_share": _building_sum("fp"),
    "green_per_inhabitant": green_per_inhabitant,
    "park_access_share": _access_share("park"),
    "school_access_share": _access_share("school"),
    "transit_access_share": _access_share("transit_stop"),
    "acts_per_1000": acts_per_1000,
    "flood_share": _restriction_share(lambda p: p.flood_kinds),
    "protected_share": _restriction_share(lambda p: p.protected_kinds),
    "avg_parcel_size": avg_parcel_size,
    "time_to_issue": time_to_issue,
}
