"""Indicator runs: compute, store as layers, record input versions, recompute identically.

A run is one indicator on one set of units for one year. Its rows in
``analysis.indicator_result`` carry the value, the numerator and denominator it came
from and the unit's geometry (with its ETRS89 twin), so the catalog can publish the
newest run of each (indicator, units) pair as a choropleth layer. ``input_versions``
holds the as-of instant and a fingerprint of every input actually read (versioned
tables as of that instant, input files' SHA-256, the population rows); ``recompute``
checks them and computes again, which must give the stored values exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis_core.errors import Conflict, InvalidParameter, NotFound
from layers.analysis.acts import ActsSource, probe_acts
from layers.analysis.basis import AsOf, as_of_filter, fast_compression, local_settings
from layers.indicators import catalogue
from layers.indicators.catalogue import Indicator, IndicatorParameters
from layers.indicators.postgis import (
    Context,
    Partial,
    compute_partials,
    drop_fact_tables,
    skip_reason,
)
from layers.indicators.units import UnitSpec, create_unit_tables, reference_plan

BREAKS = (0.2, 0.4, 0.6, 0.8)
VERSIONED_INPUTS = (
    "cadastre.parcel",
    "cadastre.building",
    "urbanism.zone",
    "urbanism.restriction",
)
PLAIN_INPUTS = ("urbanism.plan", "urbanism.regulation")

PartialsFn = Callable[[Context, Indicator], list[Partial] | None]


@dataclass(frozen=True)
class ComputeRequest:
    """What ``urbangis indicators compute`` was asked."""

    indicators: tuple[str, ...] = ()
    units: str = "utr"
    year: int | None = None
    plan_id: int | None = None
    parameters: IndicatorParameters = field(default_factory=IndicatorParameters)
    actor: str | None = None
    # The instant to compute for, instead of the one ``year`` implies: a caller that
    # also runs the zone analysis passes the same instant, so both read one snapshot
    # (and share the parcels' facts when they run in one transaction).
    as_of: AsOf | None = None


@dataclass(frozen=True)
class RunOutcome:
    indicator: str
    units: str
    layer_id: str
    run_id: int | None
    skipped: str | None = None
    values: dict[str, float | None] = field(default_factory=dict)


def layer_id(indicator_id: str, spec: UnitSpec) -> str:
    """The catalog id of an indicator layer, e.g. ``ind_built_share_hex_500``."""
    return f"ind_{indicator_id}_{spec.slug}"


def resolve_year(year: int | None, today: date | None = None) -> tuple[int, AsOf]:
    """The year and as-of instant: now for the current year, 31 December for past ones."""
    today = today or datetime.now(UTC).date()
    if year is None or year == today.year:
        return today.year, AsOf.of(None)
    if year > today.year or year < 1900:
        raise InvalidParameter(f"year {year} is not a past or the current year", locator="year")
    return year, AsOf.of(date(year, 12, 31))


def open_context(
    conn: Connection,
    spec: UnitSpec,
    year: int,
    as_of: AsOf,
    plan_id: int | None,
    parameters: IndicatorParameters,
    acts: ActsSource,
    storage_srid: int,
) -> Context:
    """Build the unit tables (with ETRS89 twins) and the empty computation context."""
    try:
        plan = reference_plan(conn, as_of, plan_id)
    except NotFound:
        if spec.kind in ("utr", "zones"):
            raise
        plan = 0  # no plan in force: green space then comes from input layers only
    drop_fact_tables(conn)
    create_unit_tables(conn, spec, as_of, plan, storage_srid)
    return Context(conn, as_of, spec, year, plan, parameters, acts, set(), {})


def compute_indicators(
    conn: Connection,
    request: ComputeRequest,
    storage_srid: int,
    *,
    acts: ActsSource | None = None,
    engine: str = "postgis",
    partials: PartialsFn | None = None,
) -> list[RunOutcome]:
    """Compute, store and publish the requested indicators; skipped ones say why.

    ``partials`` replaces the PostGIS computation (the Dask engine passes its own);
    everything else (units, storage, versions) is shared, so both engines produce the
    same kind of run.
    """
    spec = UnitSpec.parse(request.units)
    if request.as_of is not None:
        as_of = request.as_of
        year = request.year if request.year is not None else as_of.day.year
    else:
        year, as_of = resolve_year(request.year)
    acts = acts or ActsSource()
    ctx = open_context(
        conn, spec, year, as_of, request.plan_id, request.parameters, acts, storage_srid
    )
    versions = input_versions(conn, ctx)
    outcomes = []
    for indicator in catalogue.select(request.indicators):
        found = (partials or compute_partials)(ctx, indicator)
        if found is None:
            outcomes.append(
                RunOutcome(
                    indicator.id,
                    spec.label,
                    layer_id(indicator.id, spec),
                    None,
                    skipped=skip_reason(ctx, indicator),
                )
            )
            continue
        run_id = store_run(conn, ctx, indicator, found, versions, engine, request.actor)
        outcomes.append(
            RunOutcome(
                indicator.id,
                spec.label,
                layer_id(indicator.id, spec),
                run_id,
                values=run_values(conn, run_id),
            )
        )
    return outcomes


def input_versions(conn: Connection, ctx: Context) -> dict[str, Any]:
    """Fingerprints of everything an indicator may read, as of the run's instant."""
    tables: dict[str, Any] = {}
    counters: dict[str, int] = {
        str(name): int(version)
        for name, version in conn.execute(
            sa.text("SELECT table_name, version FROM core.data_version")
        )
    }
    for qualified in VERSIONED_INPUTS:
        schema, name = qualified.split(".")
        t = sa.table(name, sa.column("id"), sa.column("valid_from"), schema=schema)
        row = conn.execute(
            sa.text(
                "SELECT count(*), coalesce(sum(hashtextextended(id::text || '@' || "
                f"valid_from::text, 0)), 0)::text FROM {t.schema}.{t.name} x "
                f"WHERE {as_of_filter('x')}"
            ),
            ctx.as_of.params(),
        ).one()
        tables[qualified] = {"rows": int(row[0]), "fingerprint": row[1]}
    for qualified in PLAIN_INPUTS:
        row = conn.execute(
            sa.text(
                "SELECT count(*), coalesce(sum(hashtextextended(x::text, 0)), 0)::text "
                f"FROM {qualified} x"
            )
        ).one()
        tables[qualified] = {"rows": int(row[0]), "fingerprint": row[1]}
    if probe_acts(conn, ctx.acts).ok:
        row = conn.execute(
            sa.text(
                "SELECT count(*), coalesce(sum(hashtextextended(a::text, 0)), 0)::text "
                f"FROM {ctx.acts.acts_table} a"
            )
        ).one()
        tables[ctx.acts.acts_table] = {"rows": int(row[0]), "fingerprint": row[1]}
    for qualified, record in tables.items():
        record["data_version"] = int(counters.get(qualified, 0))
    inputs = conn.execute(
        sa.text(
            "SELECT name, kind, source, source_sha256, version FROM analysis.input_layer "
            "ORDER BY name"
        )
    ).mappings()
    population = conn.execute(
        sa.text(
            "SELECT year, source, source_sha256, count(*) AS rows FROM analysis.population "
            "WHERE unit_set = :u GROUP BY year, source, source_sha256 ORDER BY year"
        ),
        {"u": ctx.units.population_key},
    ).mappings()
    versions: dict[str, Any] = {
        "as_of": ctx.as_of.instant.isoformat(),
        "tables": tables,
        "inputs": [dict(r) for r in inputs],
        "population": [dict(r) for r in population],
    }
    if ctx.units.kind == "boundary":
        unit_set = (
            conn.execute(
                sa.text(
                    "SELECT source, source_sha256, version FROM analysis.unit_set WHERE name = :n"
                ),
                {"n": ctx.units.name},
            )
            .mappings()
            .one()
        )
        versions["units"] = dict(unit_set)
    return versions


def _insert_results(
    conn: Connection, run_id: int, indicator: Indicator, rows: list[Partial]
) -> None:
    """One result row per unit, with the unit's geometry and its ETRS89 twin."""
    conn.execute(
        sa.text(
            "INSERT INTO analysis.indicator_result (run_id, unit_key, unit_name, value, "
            "numerator, denominator, objects, geom, geom_etrs89) "
            "SELECT :run, u.unit_key, u.name, "
            "CASE WHEN x.den > 0 THEN :factor * x.num / x.den END, x.num, x.den, x.obj, "
            "u.geom, u.geom_etrs89 FROM _unit u LEFT JOIN unnest("
            "CAST(:keys AS text[]), CAST(:nums AS float8[]), CAST(:dens AS float8[]), "
            "CAST(:objs AS bigint[])) AS x(k, num, den, obj) ON x.k = u.unit_key"
        ),
        {
            "run": run_id,
            "factor": indicator.factor,
            "keys": [r[0] for r in rows],
            "nums": [r[1] for r in rows],
            "dens": [r[2] for r in rows],
            "objs": [r[3] for r in rows],
        },
    )


def store_run(
    conn: Connection,
    ctx: Context,
    indicator: Indicator,
    partials: Iterable[Partial],
    versions: dict[str, Any],
    engine: str,
    actor: str | None,
) -> int:
    """Insert the run and one result per unit; it becomes the layer's current run."""
    layer = layer_id(indicator.id, ctx.units)
    conn.execute(
        sa.text(
            "UPDATE analysis.indicator_run SET is_current = false WHERE layer_id = :l "
            "AND is_current"
        ),
        {"l": layer},
    )
    parameters = {**ctx.parameters.as_dict(), "plan_id": ctx.plan_id or None}
    run_id = int(
        conn.execute(
            sa.text(
                "INSERT INTO analysis.indicator_run (indicator, units, layer_id, year, as_of, "
                "engine, parameters, input_versions, actor) VALUES (:i, :u, :l, :y, :a, :e, "
                "CAST(:p AS jsonb), CAST(:v AS jsonb), :actor) RETURNING id"
            ),
            {
                "i": indicator.id,
                "u": ctx.units.label,
                "l": layer,
                "y": ctx.year,
                "a": ctx.as_of.instant,
                "e": engine,
                "p": _json(parameters),
                "v": _json(versions),
                "actor": actor,
            },
        ).scalar_one()
    )
    rows = list(partials)
    with local_settings(conn, **fast_compression(conn)):
        _insert_results(conn, run_id, indicator, rows)
    conn.execute(
        sa.text(
            "UPDATE analysis.indicator_run SET summary = (SELECT jsonb_build_object("
            "'units', count(*), 'with_value', count(value), 'min', min(value), "
            "'max', max(value), 'mean', avg(value), 'breaks', "
            "to_jsonb(percentile_cont(CAST(:breaks AS float8[])) WITHIN GROUP (ORDER BY value))"
            ", 'notes', CAST(:notes AS jsonb)) FROM analysis.indicator_result WHERE run_id = :run) "
            "WHERE id = :run"
        ),
        {"run": run_id, "breaks": list(BREAKS), "notes": _json(_public_notes(ctx))},
    )
    return run_id


def _public_notes(ctx: Context) -> dict[str, str]:
    return {k: v for k, v in ctx.notes.items() if not k.startswith("no_")}


def _json(value: Any) -> str:
    import orjson

    return orjson.dumps(value).decode()


def run_values(conn: Connection, run_id: int) -> dict[str, float | None]:
    rows = conn.execute(
        sa.text("SELECT unit_key, value FROM analysis.indicator_result WHERE run_id = :r"),
        {"r": run_id},
    ).all()
    return {str(k): (None if v is None else float(v)) for k, v in rows}


def get_run(conn: Connection, run_id: int) -> dict[str, Any]:
    found = (
        conn.execute(sa.text("SELECT * FROM analysis.indicator_run WHERE id = :r"), {"r": run_id})
        .mappings()
        .first()
    )
    if found is None:
        raise NotFound(f"indicator run {run_id} does not exist", locator="run")
    return dict(found)


def recompute(
    conn: Connection, run_id: int, storage_srid: int, *, acts: ActsSource | None = None
) -> dict[str, Any]:
    """Compute a stored run again from the same inputs and compare value by value.

    Refuses (409) when an input changed since: the versions say which one.
    """
    run = get_run(conn, run_id)
    spec = UnitSpec.parse(run["units"])
    as_of = AsOf(run["as_of"])
    parameters = IndicatorParameters.from_dict(run["parameters"])
    plan_id = run["parameters"].get("plan_id")
    ctx = open_context(
        conn, spec, run["year"], as_of, plan_id, parameters, acts or ActsSource(), storage_srid
    )
    now = input_versions(conn, ctx)
    changed = _changed_inputs(run["input_versions"], now)
    if changed:
        raise Conflict(
            f"run {run_id} cannot be recomputed identically: changed since: {'; '.join(changed)}"
        )
    indicator = catalogue.get(run["indicator"])
    partials = compute_partials(ctx, indicator)
    stored = run_values(conn, run_id)
    fresh: dict[str, float | None] = {}
    for key, num, den, _ in partials or []:
        fresh[key] = indicator.factor * num / den if num is not None and den else None
    differences = [key for key in stored if stored[key] != fresh.get(key)]
    return {
        "run_id": run_id,
        "units": len(stored),
        "identical": not differences,
        "differences": differences[:50],
    }


def _changed_inputs(recorded: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """Inputs whose fingerprint differs (data-version counters alone do not count)."""
    changed = []
    for table, record in recorded.get("tables", {}).items():
        current = now["tables"].get(table)
        if current is None or (current["rows"], current["fingerprint"]) != (
            record["rows"],
            record["fingerprint"],
        ):
            changed.append(table)
    for key in ("inputs", "population", "units"):
        if recorded.get(key) != now.get(key):
            changed.append(key)
    return changed
