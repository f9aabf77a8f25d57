"""The one statement behind a location check: every spatial fact in one round trip.

The statement is assembled only from the constant fragments below (one ``found``
fragment per way of naming the location); every value is a bound parameter. It returns
one JSON document built by PostgreSQL, so Python never touches geometries or rows:

* ``found``/``parcels``: the imobile the request names, in the version valid at ``:t``
  (a longitude/latitude point is looked up on the parcels' indexed ETRS89 twins, so the
  request needs no TransDatRO transformation in Python);
* ``s``: the subject, i.e. the union of those parcels, or the drawn polygon, or the
  point when nothing lies under it;
* the share of the subject inside the UAT and the intravilan;
* ``zones``: the zones of the plans in force on ``:day`` that the subject touches. A
  PUZ overrides the PUG (and a PUD both) where it applies, so each zone reports the
  share of the subject it really governs and the plans that override it, and the rules
  of its own regulation, else of its plan's regulation for its UTR (looked up by index
  per zone: a join would read and hash every regulation of the municipality per call);
* ``groups``: how many groups of touching parcels, asked only of two parcels or more;
* restrictions intersecting the subject or within ``:nearby`` metres of it;
* ``acts``: the public fields of the acts about those imobile (the same rows and effective
  status as ``permits.public.public_acts_for_parcels``), so the whole answer is one
  round trip;
* provenance: the data versions and the import runs of the parcels.

Shares are computed on the storage CRS (metres), where every GiST index lives.

The statement is long (about 9 000 characters). psycopg re-parses the placeholders of
statements longer than 4 096 characters on every call, and SQLAlchemy adds its own work
per execution; so ``fetch_document`` sends the statement in PostgreSQL's own ``$n`` form,
converted once per process, prepared once per connection under a name of its own. It is
run through libpq itself (the driver's ``pgconn``): the parameters are a handful of
numbers, dates and short texts, written out as text here, and the answer is one text
value, so psycopg's cursor (adapter lookups, result loaders, its prepared-statement
bookkeeping) would cost more Python time than the rest of the call, about half of it.
libpq's blocking call waits with the GIL released, so the worker's other threads run.
"""

from __future__ import annotations

import hashlib
import re
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any, cast

import psycopg
import sqlalchemy as sa
from psycopg import errors, pq
from sqlalchemy.engine import Connection

from permits.public import EFFECTIVE_STATUS_SQL, VALID_END_SQL

# Parcel versions valid at the moment asked ("now": the current versions, valid_to NULL).
_CURRENT = "p.valid_to IS NULL AND p.valid_from <= now()"
_AS_OF = "tstzrange(p.valid_from, p.valid_to, '[)') @> CAST(:t AS timestamptz)"

_FOUND = {
    "numbers": """
        SELECT p.id, q.ord
        FROM unnest(CAST(:numbers AS text[])) WITH ORDINALITY AS q(n, ord)
        JOIN cadastre.parcel p ON p.uat_siruta = :uat AND p.cadastral_number = q.n
            AND {valid}
    """,
    "ids": """
        SELECT p.id, array_position(CAST(:ids AS bigint[]), p.id) AS ord
        FROM cadastre.parcel p
        WHERE p.id = ANY(CAST(:ids AS bigint[])) AND {valid}
    """,
    "point": """
        SELECT p.id, row_number() OVER (ORDER BY p.cadastral_number) AS ord
        FROM cadastre.parcel p, drawn d
        WHERE p.uat_siruta = :uat AND ST_Intersects(p.geom, d.geom) AND {valid}
    """,
    "lonlat": """
        SELECT p.id, row_number() OVER (ORDER BY p.cadastral_number) AS ord
        FROM cadastre.parcel p, lonlat l
        WHERE p.uat_siruta = :uat AND ST_Intersects(p.geom_etrs89, l.geom) AND {valid}
    """,
    "polygon": """
        SELECT x.id, row_number() OVER (ORDER BY x.overlap DESC, x.cadastral_number) AS ord
        FROM (
            SELECT p.id, p.cadastral_number, ST_Area(ST_Intersection(p.geom, d.geom)) AS overlap
            FROM cadastre.parcel p, drawn d
            WHERE p.uat_siruta = :uat AND ST_Intersects(p.geom, d.geom) AND {valid}
        ) x
        WHERE x.overlap >= :sliver
    """,
}

_SUBJECT = {
    "numbers": "SELECT ST_Union(geom) AS geom FROM parcels",
    "ids": "SELECT ST_Union(geom) AS geom FROM parcels",
    "point": """
        SELECT coalesce((SELECT ST_Union(geom) FROM parcels), (SELECT geom FROM drawn)) AS geom
    """,
    "lonlat": "SELECT ST_Union(geom) AS geom FROM parcels",
    "polygon": "SELECT geom FROM drawn",
}

_MISSING_NUMBERS = """
    SELECT q.n, q.ord, (
        SELECT json_build_object(
            'first_valid_from', min(h.valid_from),
            'last_valid_to', max(h.valid_to),
            'versions', count(*))
        FROM cadastre.parcel h
        WHERE h.uat_siruta = :uat AND h.cadastral_number = q.n
        HAVING count(*) > 0
    ) AS history
    FROM unnest(CAST(:numbers AS text[])) WITH ORDINALITY AS q(n, ord)
    WHERE NOT EXISTS (SELECT 1 FROM parcels p WHERE p.cadastral_number = q.n)
"""
_NO_MISSING = "SELECT NULL::text AS n, NULL::bigint AS ord, NULL::json AS history WHERE false"

# Whether the subject lies wholly inside {area}, proved cheaply and exactly, or not
# proved: its centre lies in the area, farther from the area's boundary than any point of
# the subject (``reach``). Both are computed by PostGIS itself (a point-in-polygon test
# and a point-to-boundary distance), several times faster than GEOS's ``ST_CoveredBy``
# or ``ST_Intersection`` on an outline of a thousand vertices, which remain for subjects
# near the boundary.
_SURELY_INSIDE = """
    ST_Intersects(s.centre, {area}) AND ST_Distance(s.centre, ST_Boundary({area})) > s.reach
"""

# The share of the subject inside {area} (a geometry expression), or 1/0 for a point.
# (The intravilan outlines are picked by their boxes alone: the share's tests do the
# rest, without a second exact test.)
_SHARE = """
    CASE WHEN {area} IS NULL OR s.geom IS NULL THEN NULL
         WHEN {inside} THEN 1.0
         WHEN ST_CoveredBy(s.geom, {area}) THEN 1.0
         WHEN NOT ST_Intersects(s.geom, {area}) THEN 0.0
         WHEN s.area > 0 THEN ST_Area(ST_Intersection({area}, s.geom)) / s.area
         ELSE 1.0 END
"""

# The part of the subject a zone governs, or NULL where the zone does not touch it. Most
# subjects lie wholly inside one zone (``_SURELY_INSIDE``): the piece is the subject
# itself. A zone farther from the centre than the subject's reach cannot touch it; only
# subjects across a zone boundary pay for the exact intersection.
ZONE_PIECE_SQL = """
    CASE WHEN s.dim < 2 THEN CASE WHEN ST_Intersects(z.geom, s.geom) THEN s.geom END
         WHEN {inside} THEN s.geom
         WHEN NOT ST_DWithin(s.centre, z.geom, s.reach) THEN NULL
         WHEN ST_Intersects(z.geom, s.geom) THEN ST_Intersection(z.geom, s.geom)
    END
""".format(inside=_SURELY_INSIDE.format(area="z.geom"))

_BODY = """
WITH drawn AS (
    SELECT ST_GeomFromEWKB(CAST(:wkb AS bytea)) AS geom
), lonlat AS (
    SELECT ST_SetSRID(ST_MakePoint(CAST(:lon AS float8), CAST(:lat AS float8)), 4258) AS geom
), found AS (
    {found}
), parcels AS (
    SELECT p.*, f.ord FROM found f JOIN cadastre.parcel p ON p.id = f.id
), subject AS (
    {subject}
), s AS (
    SELECT geom, coalesce(ST_Area(geom), 0) AS area, ST_Dimension(geom) AS dim,
           centre, ST_MaxDistance(centre, geom) AS reach
    FROM subject, ST_Centroid(subject.geom) AS centre
), missing AS (
    {missing}
), uat AS (
    SELECT geom FROM core.admin_unit WHERE siruta = :uat AND geom IS NOT NULL LIMIT 1
), intra AS (
    SELECT ST_Union(i.geom) AS geom, count(*) AS n
    FROM core.intravilan i, s
    WHERE i.uat_siruta = :uat AND i.geom && s.geom
      AND i.valid_from <= :t AND (i.valid_to IS NULL OR i.valid_to > :t)
), intra_known AS (
    SELECT EXISTS (
        SELECT 1 FROM core.intravilan i WHERE i.uat_siruta = :uat
          AND i.valid_from <= :t AND (i.valid_to IS NULL OR i.valid_to > :t)
    ) AS known
), zone_hits AS MATERIALIZED (
    SELECT z.id, z.plan_id, z.regulation_id, z.utr_code, z.function,
           CASE pl.plan_type WHEN 'PUD' THEN 3 WHEN 'PUZ' THEN 2 ELSE 1 END AS rank,
           {zone_piece} AS piece
    FROM s
    JOIN urbanism.zone z ON z.geom && s.geom
    JOIN urbanism.plan pl ON pl.id = z.plan_id
    WHERE pl.uat_siruta = :uat AND pl.status IN ('approved', 'expired')
      AND z.valid_from <= :t AND (z.valid_to IS NULL OR z.valid_to > :t)
      AND (pl.valid_from IS NULL OR pl.valid_from <= :day)
      AND (pl.valid_to IS NULL OR pl.valid_to > :day)
), zones AS (
    SELECT * FROM zone_hits WHERE piece IS NOT NULL
), over AS (
    SELECT o.rank, o.plan_id, coalesce((
        SELECT CASE WHEN s.dim = 2 THEN ST_Intersection(pl.geom, s.geom) ELSE s.geom END
        FROM urbanism.plan pl WHERE pl.id = o.plan_id AND pl.geom IS NOT NULL
          AND ST_Intersects(pl.geom, s.geom)
    ), o.geom) AS geom
    FROM (SELECT rank, plan_id, ST_Union(piece) AS geom FROM zones WHERE rank > 1
          GROUP BY rank, plan_id) o, s
), effective AS (
    SELECT z.plan_id, z.regulation_id, z.utr_code, z.function, z.rank,
           CASE WHEN s.dim = 2 THEN ST_Area(z.piece) ELSE 1.0 END AS raw,
           CASE
               WHEN NOT EXISTS (SELECT 1 FROM over o WHERE o.rank > z.rank
                                  AND ST_Intersects(o.geom, z.piece))
                   THEN CASE WHEN s.dim = 2 THEN ST_Area(z.piece) ELSE 1.0 END
               WHEN s.dim = 2 THEN ST_Area(ST_Difference(z.piece, (
                   SELECT ST_Union(o.geom) FROM over o WHERE o.rank > z.rank)))
               ELSE 0.0
           END AS eff
    FROM zones z, s
), zone_rows AS (
    SELECT plan_id, utr_code, min(regulation_id) AS regulation_id, min(function) AS function,
           min(rank) AS rank, sum(raw) AS raw, sum(eff) AS eff
    FROM effective GROUP BY plan_id, utr_code
    HAVING sum(raw) >= {min_area} OR (SELECT dim FROM s) < 2
), zone_json AS (
    SELECT coalesce(json_agg(json_build_object(
        'utr_code', zr.utr_code,
        'name', r.name,
        'function', coalesce(r.function, zr.function),
        'plan', json_build_object(
            'id', pl.id, 'type', pl.plan_type, 'title', pl.title,
            'hcl_number', pl.hcl_number, 'hcl_date', pl.hcl_date,
            'valid_from', pl.valid_from, 'valid_to', pl.valid_to, 'status', pl.status),
        'rules', json_build_object(
            'allowed_uses', r.allowed_uses, 'conditional_uses', r.conditional_uses,
            'forbidden_uses', r.forbidden_uses, 'pot_max', r.pot_max, 'cut_max', r.cut_max,
            'height_max_m', r.height_max_m, 'height_regime', r.height_regime,
            'min_plot_area', r.min_plot_area, 'min_frontage', r.min_frontage,
            'rules_text', r.rules_text),
        'area', CASE WHEN s.dim = 2 THEN round(zr.eff::numeric, 2) END,
        'share', CASE WHEN s.dim = 2 THEN round((zr.eff / nullif(s.area, 0))::numeric, 4)
                      ELSE round(zr.eff::numeric, 4) END,
        'overlap_share', CASE WHEN s.dim = 2
                              THEN round((zr.raw / nullif(s.area, 0))::numeric, 4)
                              ELSE round(zr.raw::numeric, 4) END,
        'overridden_by', (
            SELECT json_agg(op.title ORDER BY op.title) FROM urbanism.plan op
            WHERE op.id IN (SELECT o.plan_id FROM over o WHERE o.rank > zr.rank))
    ) ORDER BY zr.eff DESC, zr.rank DESC, zr.utr_code), '[]'::json) AS doc
    FROM zone_rows zr
    JOIN urbanism.plan pl ON pl.id = zr.plan_id
    LEFT JOIN LATERAL (
        SELECT rr.* FROM urbanism.regulation rr
        WHERE rr.id = coalesce(zr.regulation_id, (
            SELECT ru.id FROM urbanism.regulation ru
            WHERE ru.plan_id = zr.plan_id AND ru.utr_code = zr.utr_code))
        OFFSET 0
    ) r ON true
    CROSS JOIN s
), restriction_json AS (
    SELECT coalesce(json_agg(json_build_object(
        'id', r.id, 'kind', r.kind, 'name', r.name, 'legal_source', r.legal_source,
        'description', r.description,
        'intersects', d.distance = 0,
        'area', CASE WHEN d.distance = 0 AND s.dim = 2
                     THEN round(ST_Area(ST_Intersection(r.geom, s.geom))::numeric, 2) END,
        'distance', round(d.distance::numeric, 2)
    ) ORDER BY d.distance, r.kind, r.name), '[]'::json) AS doc
    FROM s
    JOIN urbanism.restriction r ON ST_DWithin(r.geom, s.geom, :nearby)
    CROSS JOIN LATERAL (SELECT ST_Distance(r.geom, s.geom) AS distance) d
    WHERE r.uat_siruta = :uat
      AND r.valid_from <= :t AND (r.valid_to IS NULL OR r.valid_to > :t)
), act_ids AS (
    SELECT DISTINCT ap.act_id
    FROM (SELECT DISTINCT uat_siruta, cadastral_number FROM parcels) w
    JOIN permits.act_parcel ap ON ap.cadastral_number = w.cadastral_number
    JOIN permits.act a ON a.id = ap.act_id AND a.uat_siruta = w.uat_siruta
), act_json AS (
    SELECT coalesce(json_agg(json_build_object(
        'kind', a.kind, 'number', a.number, 'issued_on', a.issued_on,
        'status', {act_status}, 'purpose', a.purpose, 'valid_until', {act_end},
        'cadastral_numbers', ARRAY(SELECT l.cadastral_number FROM permits.act_parcel l
                                   WHERE l.act_id = a.id ORDER BY l.is_primary DESC, l.id))
    ORDER BY a.issued_on DESC NULLS LAST, a.id DESC), '[]'::json) AS doc
    FROM act_ids JOIN permits.act a ON a.id = act_ids.act_id
    WHERE a.status <> 'requested' {acts_issued}
)
SELECT json_build_object(
    'parcels', (SELECT coalesce(json_agg(json_build_object(
        'id', p.id,
        'cadastral_number', p.cadastral_number,
        'land_book_number', p.land_book_number,
        'measured_area', p.measured_area,
        'legal_area', p.legal_area,
        'use_category', p.use_category,
        'intravilan', p.intravilan,
        'address', p.address_text,
        'version_valid_from', p.valid_from,
        'import_run_id', p.import_run_id,
        'geometry', CASE WHEN :with_geometry THEN ST_AsGeoJSON(
            coalesce(p.geom_etrs89, ST_Transform(p.geom, 4326)), 7)::json END
    ) ORDER BY p.ord), '[]'::json) FROM parcels p),
    'missing', (SELECT coalesce(json_agg(json_build_object('cadastral_number', m.n,
                                                           'history', m.history)
                ORDER BY m.ord), '[]'::json) FROM missing m),
    'groups', CASE WHEN (SELECT count(*) FROM parcels) > 1 THEN (
        SELECT array_length(ST_ClusterWithin(geom, {touching}), 1) FROM parcels) END,
    'subject', (SELECT json_build_object(
        'area', round(s.area::numeric, 2), 'dimension', s.dim,
        'x', ST_X(s.centre), 'y', ST_Y(s.centre)) FROM s),
    'lonlat', (SELECT json_build_object('lon', ST_X(c), 'lat', ST_Y(c))
               FROM (SELECT ST_Centroid(ST_Collect(p.geom_etrs89)) AS c FROM parcels p
                     HAVING count(p.geom_etrs89) = count(*) AND count(*) > 0) x),
    'uat_share', (SELECT {uat_share} FROM s LEFT JOIN uat ON true),
    'uat_known', EXISTS (SELECT 1 FROM uat),
    'intravilan_share', (SELECT CASE WHEN k.known THEN coalesce({intra_share}, 0.0) END
                         FROM s LEFT JOIN intra ON true CROSS JOIN intra_known k),
    'zones', (SELECT doc FROM zone_json),
    'restrictions', (SELECT doc FROM restriction_json),
    'acts', (SELECT doc FROM act_json),
    'data_versions', (SELECT json_object_agg(v.table_name, json_build_object(
                          'version', v.version, 'changed_at', v.changed_at))
                      FROM core.data_version v WHERE v.table_name = ANY({tables})),
    'import_runs', (SELECT coalesce(json_agg(json_build_object(
                        'id', ir.id, 'kind', ir.kind, 'source', ir.source,
                        'finished_at', ir.finished_at) ORDER BY ir.id), '[]'::json)
                    FROM core.import_run ir
                    WHERE ir.id IN (SELECT import_run_id FROM parcels))
)::text AS doc
"""

PROVENANCE_TABLES = [
    "cadastre.parcel",
    "core.admin_unit",
    "core.intravilan",
    "urbanism.plan",
    "urbanism.regulation",
    "urbanism.zone",
    "urbanism.restriction",
]
# Parcels closer than this (metres) count as touching: digitised neighbours leave gaps.
TOUCHING_M = 0.1
# Overlaps smaller than this (square metres) between a drawn polygon and a parcel are
# digitising noise, not a parcel the location is on.
SLIVER_M2 = 1.0
# Zone pieces smaller than this are where a zone only touches the location's edge.
MIN_ZONE_PIECE_M2 = 0.01

# A bound parameter as SQLAlchemy's ``text()`` reads it: ``:name``, but not ``::type``.
_PARAMETER = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")


@dataclass(frozen=True)
class Statement:
    """One statement with named parameters, and the same in PostgreSQL's ``$n`` form."""

    sql: str  # ``:name`` parameters, as written (what tools such as the benchmark read)
    positional: bytes  # ``$1``, ``$2``... in the order of ``names``
    names: tuple[str, ...]
    # The prepared statement's name: the same text always gets the same name, and never
    # one psycopg gives its own (``_pg3_<n>``).
    name: bytes = b""

    @property
    def text(self) -> sa.TextClause:
        return sa.text(self.sql)

    @classmethod
    def of(cls, sql: str) -> Statement:
        names: list[str] = []

        def number(found: re.Match[str]) -> str:
            if found.group(1) not in names:
                names.append(found.group(1))
            return f"${names.index(found.group(1)) + 1}"

        positional = _PARAMETER.sub(number, sql).encode()
        name = b"urbangis_" + hashlib.sha256(positional).hexdigest()[:24].encode()
        return cls(sql, positional, tuple(names), name)


def _share(area: str) -> str:
    """``_SHARE`` of ``area``, with its ``_SURELY_INSIDE`` test."""
    return _SHARE.format(area=area, inside=_SURELY_INSIDE.format(area=area))


@cache
def location_statement(mode: str, as_of: bool) -> Statement:
    """The statement for one way of naming the location (built once per process).

    Its parameters: ``uat``, ``t`` (the moment), ``day`` (its date, also the day the
    acts' status is read on), ``nearby``, ``with_geometry``, ``wkb``, ``lon``, ``lat``,
    and ``numbers``, ``ids`` or ``sliver`` by mode.
    """
    valid = _AS_OF if as_of else _CURRENT
    sql = _BODY.format(
        found=_FOUND[mode].format(valid=valid),
        subject=_SUBJECT[mode],
        missing=_MISSING_NUMBERS if mode == "numbers" else _NO_MISSING,
        uat_share=_share("uat.geom"),
        intra_share=_share("intra.geom"),
        zone_piece=ZONE_PIECE_SQL,
        act_status=EFFECTIVE_STATUS_SQL.replace(":as_of", ":day"),
        act_end=VALID_END_SQL,
        # Asked about a past day: only the acts issued by then.
        acts_issued="AND a.issued_on <= CAST(:day AS date)" if as_of else "",
        # This module's constants are written into the statement: nothing to send per call.
        min_area=f"CAST({MIN_ZONE_PIECE_M2!r} AS float8)",
        touching=f"CAST({TOUCHING_M!r} AS float8)",
        tables="CAST(ARRAY[{}] AS text[])".format(
            ", ".join("'" + name.replace("'", "''") + "'" for name in PROVENANCE_TABLES)
        ),
    )
    return Statement.of(sql)


def fetch_document(conn: Connection, statement: Statement, params: Mapping[str, Any]) -> str:
    """Run ``statement`` (one row, one text column) as a prepared statement; its text.

    Errors are raised as SQLAlchemy's (``OperationalError``, ``DBAPIError``...), as if
    the statement had gone through ``conn.execute``, and a connection the server
    dropped is invalidated so the pool replaces it.
    """
    driver = cast("psycopg.Connection[Any]", conn.connection.driver_connection)
    try:
        values = [text_parameter(params[name]) for name in statement.names]
        result = _run_prepared(driver, statement, values)
    except psycopg.Error as exc:
        lost = driver.pgconn.status == pq.ConnStatus.BAD or conn.dialect.is_disconnect(
            cast(Any, exc), conn.connection.dbapi_connection, None
        )
        if lost:
            conn.invalidate(exc)
        raise sa.exc.DBAPIError.instance(
            statement.sql,
            None,
            exc,
            psycopg.Error,
            connection_invalidated=lost,
            dialect=conn.dialect,
        ) from exc
    value = result.get_value(0, 0) if result.ntuples == 1 else None
    if value is None:
        raise AssertionError("the statement answered no document")
    return bytes(value).decode()


# Names prepared on each driver connection (a connection is used by one thread at a time;
# the lock guards the table itself).
_PREPARED: weakref.WeakKeyDictionary[Any, set[bytes]] = weakref.WeakKeyDictionary()
_PREPARED_LOCK = threading.Lock()
_NOT_PREPARED = "26000"  # invalid_sql_statement_name: e.g. after a DEALLOCATE ALL
_ALREADY_PREPARED = "42P05"  # duplicate_prepared_statement


def _run_prepared(
    driver: psycopg.Connection[Any], statement: Statement, values: Sequence[bytes | None]
) -> pq.abc.PGresult:
    """Execute, preparing first on a connection that has not seen the statement yet.

    psycopg forgets every prepared statement (``DEALLOCATE ALL``) when it rolls back a
    transaction that had its own; a name found missing is prepared again, once.
    """
    with _PREPARED_LOCK:
        prepared = _PREPARED.setdefault(driver, set())
    for attempt in (1, 2):
        if statement.name not in prepared:
            _prepare(driver, statement)
            prepared.add(statement.name)
        # None is a NULL (libpq's own convention; psycopg's stubs leave it out)
        result = driver.pgconn.exec_prepared(statement.name, cast(Sequence[bytes], values))
        if result.status == pq.ExecStatus.TUPLES_OK:
            return result
        error = _error(driver, result)
        if error.sqlstate != _NOT_PREPARED or attempt == 2:
            raise error
        prepared.discard(statement.name)
    raise AssertionError("unreachable")


def _prepare(driver: psycopg.Connection[Any], statement: Statement) -> None:
    # Parameter types are left to the server: it takes each from the column or the cast
    # the parameter meets, so indexes are used as written.
    result = driver.pgconn.prepare(statement.name, statement.positional)
    if result.status != pq.ExecStatus.COMMAND_OK:
        error = _error(driver, result)
        if error.sqlstate != _ALREADY_PREPARED:
            raise error


def _error(driver: psycopg.Connection[Any], result: pq.abc.PGresult) -> psycopg.Error:
    """psycopg's exception for a failed result; a broken connection is an OperationalError."""
    encoding = driver.info.encoding
    if driver.pgconn.status == pq.ConnStatus.BAD and not result.error_field(
        pq.DiagnosticField.SQLSTATE
    ):
        return psycopg.OperationalError(pq.error_message(driver.pgconn, encoding=encoding))
    return errors.error_from_result(result, encoding=encoding)


def text_parameter(value: Any) -> bytes | None:
    """A parameter in PostgreSQL's text input form (the server knows its type).

    Only what the location statements take: None, booleans, numbers, text, bytes (a
    bytea), dates and moments (ISO 8601), and one-dimensional lists of text or numbers.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return b"t" if value else b"f"
    if isinstance(value, bytes | bytearray | memoryview):
        return b"\\x" + bytes(value).hex().encode()
    if isinstance(value, int | float | str):
        text = str(value)
    elif isinstance(value, datetime | date):
        text = value.isoformat()
    elif isinstance(value, list | tuple):
        text = "{" + ",".join(_array_element(item) for item in value) + "}"
    else:
        raise TypeError(f"cannot send a {type(value).__name__} as a statement parameter")
    if "\x00" in text:
        # libpq ends a text parameter at its first NUL: refused, as psycopg refuses it.
        raise psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
    return text.encode()


def _array_element(item: Any) -> str:
    if item is None:
        return "NULL"
    if isinstance(item, bool) or not isinstance(item, int | float | str):
        raise TypeError(f"cannot send a list of {type(item).__name__} as a parameter")
    text = str(item).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
