"""The layer catalog: every published vector dataset, defined once, served everywhere.

A ``LayerDefinition`` says where the rows live (an SQLAlchemy selectable, so joins and
row filters are expressions, never text), which fields exist, which roles may see each
field and which rows each role may see, how time works for it, and which CRSs it is
offered in. OGC API Features, vector tiles and every later service read the same
definition, so a rule written here holds everywhere.

The dynamic facts (extent, data version) come from the database and are refreshed when
the per-table counter in ``core.data_version`` moves, i.e. after any import or edit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause, NamedFromClause, TableClause

from gis_core.errors import NotFound

ALL_ROLES = frozenset({"public", "portal", "clerk", "planner", "admin"})
STAFF = frozenset({"clerk", "planner", "admin"})
PORTAL_AND_STAFF = STAFF | {"portal"}
PERSONAL_DATA_ROLES = frozenset({"clerk", "admin"})

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
ETRS89 = 4258
WGS84 = 4326
WEB_MERCATOR = 3857
STEREO70 = 3844

RowFilter = Callable[[], ColumnElement[bool]]
# Indicator runs: when their counter moves, the indicator layers are published anew.
INDICATOR_RUNS = "analysis.indicator_run"


@dataclass(frozen=True, eq=False)
class Field:
    """One published attribute.

    ``roles`` are the roles allowed to read it; ``min_zoom`` is the first tile zoom that
    carries it (small tiles stay small); ``personal`` marks personal data, which the
    security tests check never reaches a role outside ``PERSONAL_DATA_ROLES``.
    """

    name: str
    expr: ColumnElement[object]
    type: str = "string"
    roles: frozenset[str] = ALL_ROLES
    title: str = ""
    min_zoom: int = 0
    queryable: bool = True
    sortable: bool = True
    personal: bool = False
    format: str | None = None


@dataclass(frozen=True, eq=False)
class LayerDefinition:
    """A published layer; identifiers in SQL come only from here."""

    id: str
    title: str
    source: FromClause
    main: NamedFromClause
    fields: tuple[Field, ...]
    geometry_type: str
    storage_srid: int
    abstract: str = ""
    keywords: tuple[str, ...] = ()
    id_column: str = "id"
    geom_column: str = "geom"
    etrs89_column: str | None = "geom_etrs89"
    temporal: tuple[str, str] | None = None
    roles: frozenset[str] = ALL_ROLES
    row_filters: Mapping[str, RowFilter] = field(default_factory=dict)
    base_filter: RowFilter | None = None
    extra_srids: tuple[int, ...] = ()
    tile_min_zoom: int = 0
    tile_simplify: bool = True
    # A field that identifies each feature of a tile (current versions only). Where the
    # tile carries it, the MVT feature id is left out: it would only repeat the key, at
    # about 4 bytes a feature (a tenth of a parcel tile at z14). Elsewhere the feature id
    # is the row id, which the OGC API items are addressed by.
    tile_key: str | None = None
    style: Mapping[str, object] = field(default_factory=dict)
    data_tables: tuple[str, ...] = ()

    @property
    def geom(self) -> ColumnElement[object]:
        return self.main.c[self.geom_column]

    @property
    def etrs89(self) -> ColumnElement[object] | None:
        return self.main.c[self.etrs89_column] if self.etrs89_column else None

    @property
    def id_expr(self) -> ColumnElement[object]:
        return self.main.c[self.id_column]

    def field(self, name: str) -> Field | None:
        for candidate in self.fields:
            if candidate.name == name:
                return candidate
        return None

    @property
    def srids(self) -> tuple[int, ...]:
        """EPSG codes offered besides CRS84: storage, Stereo 70, ETRS89, WGS84, Web Mercator."""
        ordered = [self.storage_srid, STEREO70, ETRS89, WGS84, WEB_MERCATOR, *self.extra_srids]
        return tuple(dict.fromkeys(ordered))

    @property
    def tables(self) -> tuple[str, ...]:
        """Qualified tables whose changes invalidate this layer's caches."""
        if self.data_tables:
            return self.data_tables
        return (self.qualified_table,)

    @property
    def qualified_table(self) -> str:
        """``schema.table`` of the main table (the alias ``t`` unwrapped)."""
        table = getattr(self.main, "element", self.main)
        return f"{table.schema}.{table.name}"


@dataclass(frozen=True)
class LayerState:
    """What the database says about a layer now: its extent (CRS84) and data version."""

    extent: tuple[float, float, float, float] | None
    version: str
    interval: tuple[str | None, str | None] | None = None
    rows_estimate: float = 0.0


def _table(schema: str, name: str, *columns: str) -> TableClause:
    return sa.table(name, *(sa.column(c) for c in columns), schema=schema)


def _versioned(*columns: str) -> tuple[str, ...]:
    return (*columns, "id", "geom", "geom_etrs89", "valid_from", "valid_to", "import_run_id")


def parcels_layer(storage_srid: int) -> LayerDefinition:
    """Imobile; owners (personal data) only for clerks and administrators."""
    t = _table(
        "cadastre",
        "parcel",
        *_versioned(
            "uat_siruta",
            "cadastral_number",
            "land_book_number",
            "e2_identifier",
            "cad_sector",
            "topo_number",
            "measured_area",
            "legal_area",
            "use_category",
            "intravilan",
            "address_text",
            "notes",
        ),
    ).alias("t")
    owner = _table("protected", "parcel_owner", "parcel_id", "person_id").alias("o")
    person = _table("protected", "person", "id", "name").alias("pp")
    owners = (
        sa.select(sa.func.string_agg(person.c.name, sa.literal_column("'; '")))
        .select_from(owner.join(person, person.c.id == owner.c.person_id))
        .where(owner.c.parcel_id == t.c.id)
        .scalar_subquery()
    )
    return LayerDefinition(
        id="parcels",
        title="Imobile (parcele cadastrale)",
        abstract="Cadastral parcels (imobile) of the municipality, keyed by cadastral number.",
        keywords=("cadastru", "parcele", "imobile", "CadastralParcel"),
        source=t,
        main=t,
        geometry_type="MultiPolygon",
        storage_srid=storage_srid,
        temporal=("valid_from", "valid_to"),
        tile_min_zoom=13,
        tile_key="cadastral_number",
        fields=(
            Field("cadastral_number", t.c.cadastral_number, title="Număr cadastral"),
            Field("land_book_number", t.c.land_book_number, roles=PORTAL_AND_STAFF, min_zoom=16),
            Field("e2_identifier", t.c.e2_identifier, roles=STAFF, min_zoom=16),
            Field("cad_sector", t.c.cad_sector, min_zoom=16),
            Field("measured_area", t.c.measured_area, type="number", min_zoom=15),
            Field("legal_area", t.c.legal_area, type="number", min_zoom=16),
            Field("use_category", t.c.use_category, min_zoom=15),
            Field("intravilan", t.c.intravilan, type="boolean", min_zoom=15),
            Field("address", t.c.address_text, min_zoom=16),
            Field("notes", t.c.notes, roles=STAFF, min_zoom=99),
            Field(
                "owners",
                owners,
                roles=PERSONAL_DATA_ROLES,
                personal=True,
                min_zoom=99,
                sortable=False,
            ),
            Field(
                "valid_from",
                t.c.valid_from,
                type="string",
                format="date-time",
                min_zoom=99,
            ),
        ),
        data_tables=("cadastre.parcel", "protected.parcel_owner", "protected.person"),
        style={"fill": "#f4e4c1", "stroke": "#8c6d3f", "width": 0.6},
    )


def buildings_layer(storage_srid: int) -> LayerDefinition:
    t = _table(
        "cadastre",
        "building",
        *_versioned(
            "uat_siruta",
            "cadastral_number",
            "building_number",
            "footprint_area",
            "floor_area",
            "levels",
            "height_m",
            "destination",
            "is_legal",
        ),
    ).alias("t")
    return LayerDefinition(
        id="buildings",
        title="Construcții",
        abstract="Buildings (construcții) on the imobile, from the cadastre.",
        keywords=("cadastru", "construcții", "Building"),
        source=t,
        main=t,
        geometry_type="MultiPolygon",
        storage_srid=storage_srid,
        temporal=("valid_from", "valid_to"),
        tile_min_zoom=14,
        fields=(
            Field("cadastral_number", t.c.cadastral_number),
            Field("building_number", t.c.building_number, min_zoom=16),
            Field("footprint_area", t.c.footprint_area, type="number", min_zoom=16),
            Field("floor_area", t.c.floor_area, type="number", min_zoom=16),
            Field("levels", t.c.levels, type="integer", min_zoom=15),
            Field("height_m", t.c.height_m, type="number", min_zoom=15),
            Field("destination", t.c.destination, min_zoom=16),
            Field("is_legal", t.c.is_legal, type="boolean", roles=STAFF, min_zoom=99),
        ),
        style={"fill": "#c9c9c9", "stroke": "#555555", "width": 0.5},
    )


def zones_layer(storage_srid: int) -> LayerDefinition:
    """UTR zones with their rules; draft or lapsed plans only for planners and admins."""
    t = _table(
        "urbanism", "zone", *_versioned("plan_id", "regulation_id", "utr_code", "function")
    ).alias("t")
    p = _table(
        "urbanism", "plan", "id", "title", "plan_type", "status", "hcl_number", "valid_from",
        "valid_to",
    ).alias("p")  # fmt: skip
    r = _table(
        "urbanism",
        "regulation",
        "id",
        "function",
        "pot_max",
        "cut_max",
        "height_max_m",
        "height_regime",
        "min_plot_area",
    ).alias("r")
    source = t.join(p, p.c.id == t.c.plan_id).outerjoin(r, r.c.id == t.c.regulation_id)

    def plan_in_force() -> ColumnElement[bool]:
        return sa.and_(
            p.c.status == "approved",
            sa.or_(p.c.valid_to.is_(None), p.c.valid_to >= sa.func.current_date()),
        )

    public_rule = dict.fromkeys(("public", "portal", "clerk"), plan_in_force)
    return LayerDefinition(
        id="zones",
        title="Zone funcționale (UTR)",
        abstract=(
            "Zones of the urban plans (PUG, PUZ, PUD) with their UTR rules: functions, "
            "POT, CUT and height. Without datetime: current versions; with datetime: as of."
        ),
        keywords=("urbanism", "PUG", "UTR", "ZoningElement"),
        source=source,
        main=t,
        geometry_type="MultiPolygon",
        storage_srid=storage_srid,
        temporal=("valid_from", "valid_to"),
        row_filters=public_rule,
        fields=(
            Field("utr_code", t.c.utr_code, title="Cod UTR"),
            Field("function", sa.func.coalesce(r.c.function, t.c.function), min_zoom=12),
            Field("plan", p.c.title, min_zoom=12),
            Field("plan_type", p.c.plan_type),
            Field("plan_status", p.c.status, roles=frozenset({"planner", "admin"})),
            Field("hcl_number", p.c.hcl_number, min_zoom=14),
            Field("pot_max", r.c.pot_max, type="number", min_zoom=12),
            Field("cut_max", r.c.cut_max, type="number", min_zoom=12),
            Field("height_max_m", r.c.height_max_m, type="number", min_zoom=12),
            Field("height_regime", r.c.height_regime, min_zoom=14),
            Field("min_plot_area", r.c.min_plot_area, type="number", min_zoom=14),
        ),
        data_tables=("urbanism.zone", "urbanism.plan", "urbanism.regulation"),
        style={"fill": "#9ecae1", "stroke": "#3182bd", "width": 1.0},
    )


def restrictions_layer(storage_srid: int) -> LayerDefinition:
    t = _table(
        "urbanism",
        "restriction",
        *_versioned("uat_siruta", "kind", "name", "legal_source", "plan_id", "description"),
    ).alias("t")
    return LayerDefinition(
        id="restrictions",
        title="Restricții",
        abstract="Legal restrictions overlaying the zones: heritage, flood, easements, ...",
        keywords=("urbanism", "restricții", "SupplementaryRegulation"),
        source=t,
        main=t,
        geometry_type="MultiPolygon",
        storage_srid=storage_srid,
        temporal=("valid_from", "valid_to"),
        fields=(
            Field("kind", t.c.kind),
            Field("name", t.c.name),
            Field("legal_source", t.c.legal_source, min_zoom=14),
            Field("description", t.c.description, min_zoom=14),
        ),
        style={"fill": "#fcae91", "stroke": "#de2d26", "width": 1.0},
    )


def addresses_layer(storage_srid: int) -> LayerDefinition:
    """Postal addresses; the floor and apartment (which point at a household) are staff only."""
    t = _table(
        "cadastre",
        "address",
        "id",
        "geom",
        "geom_etrs89",
        "uat_siruta",
        "street_type",
        "street_name",
        "number",
        "block",
        "entrance",
        "floor",
        "apartment",
        "postal_code",
        "full_text",
    ).alias("t")
    return LayerDefinition(
        id="addresses",
        title="Adrese",
        abstract="Postal addresses of the municipality.",
        keywords=("adrese", "Address"),
        source=t,
        main=t,
        geometry_type="Point",
        storage_srid=storage_srid,
        tile_min_zoom=15,
        fields=(
            Field("street_type", t.c.street_type),
            Field("street_name", t.c.street_name),
            Field("number", t.c.number),
            Field("block", t.c.block, min_zoom=17),
            Field("entrance", t.c.entrance, min_zoom=17),
            Field("floor", t.c.floor, roles=PERSONAL_DATA_ROLES, personal=True, min_zoom=99),
            Field(
                "apartment", t.c.apartment, roles=PERSONAL_DATA_ROLES, personal=True, min_zoom=99
            ),
            Field("postal_code", t.c.postal_code, min_zoom=16),
        ),
        style={"fill": "#636363", "radius": 3},
    )


def intravilan_layer(storage_srid: int) -> LayerDefinition:
    t = _table("core", "intravilan", *_versioned("uat_siruta", "name")).alias("t")
    return LayerDefinition(
        id="intravilan",
        title="Intravilan",
        abstract="The built-up area boundary of the municipality.",
        keywords=("intravilan",),
        source=t,
        main=t,
        geometry_type="MultiPolygon",
        storage_srid=storage_srid,
        temporal=("valid_from", "valid_to"),
        fields=(Field("name", t.c.name), Field("uat_siruta", t.c.uat_siruta, type="integer")),
        style={"fill": "none", "stroke": "#31a354", "width": 2.0},
    )


def admin_units_layer(storage_srid: int) -> LayerDefinition:
    t = _table(
        "core",
        "admin_unit",
        "id",
        "geom",
        "geom_etrs89",
        "siruta",
        "parent_siruta",
        "name",
        "level",
        "county_code",
    ).alias("t")
    return LayerDefinition(
        id="admin_units",
        title="Unități administrativ-teritoriale",
        abstract="The UAT and its localities, identified by SIRUTA code.",
        keywords=("UAT", "SIRUTA", "AdministrativeUnit"),
        source=t,
        main=t,
        geometry_type="MultiPolygon",
        storage_srid=storage_srid,
        fields=(
            Field("siruta", t.c.siruta, type="integer"),
            Field("name", t.c.name),
            Field("level", t.c.level),
            Field("parent_siruta", t.c.parent_siruta, type="integer"),
        ),
        style={"fill": "none", "stroke": "#000000", "width": 2.5},
    )


def acts_layer(storage_srid: int) -> LayerDefinition:
    """The public register of urbanism certificates (CU) and building/demolition permits
    (AC/AD), drawn on their site. Anybody sees what the register publishes (number, date,
    kind, effective status, purpose, validity, the imobile); applications still being
    processed are for the portal and staff; the applicant (a person) only for clerks and
    administrators. Lon/lat output reads the acts' ETRS89 twin (``geom_etrs89``, migration
    0006), like every other layer.
    """
    t = _table(
        "permits",
        "act",
        "id",
        "geom",
        "geom_etrs89",
        "uat_siruta",
        "kind",
        "number",
        "issued_on",
        "register_key",
        "status",
        "purpose",
        "address_text",
        "valid_until",
        "extended_until",
        "link_state",
    ).alias("t")
    link = _table("permits", "act_parcel", "act_id", "cadastral_number").alias("l")
    applicant = _table("protected", "act_applicant", "act_id", "name").alias("aa")
    numbers = (
        sa.select(sa.func.string_agg(link.c.cadastral_number, sa.literal_column("', '")))
        .where(link.c.act_id == t.c.id)
        .scalar_subquery()
    )
    applicants = (
        sa.select(sa.func.string_agg(applicant.c.name, sa.literal_column("'; '")))
        .where(applicant.c.act_id == t.c.id)
        .scalar_subquery()
    )
    valid_end = sa.func.coalesce(t.c.extended_until, t.c.valid_until)
    status = sa.case(
        (
            sa.and_(t.c.status.in_(("issued", "extended")), valid_end < sa.func.current_date()),
            "expired",
        ),
        else_=t.c.status,
    )

    def registered() -> ColumnElement[bool]:
        return t.c.status != "requested"

    return LayerDefinition(
        id="acts",
        title="Registrul certificatelor de urbanism și autorizațiilor",
        abstract=(
            "Urbanism certificates (CU) and building or demolition permits (AC, AD) as "
            "registered, on their site or imobile, with their effective status today."
        ),
        keywords=("autorizații", "certificate de urbanism", "registru", "permits"),
        source=t,
        main=t,
        geometry_type="MultiPolygon",
        storage_srid=storage_srid,
        row_filters={"public": registered},
        tile_min_zoom=13,
        fields=(
            Field("kind", t.c.kind, title="Tip act"),
            Field("number", t.c.number, title="Număr"),
            Field("issued_on", t.c.issued_on, format="date", min_zoom=15),
            Field("status", status, title="Stare"),
            Field("purpose", t.c.purpose, min_zoom=15),
            Field("valid_until", valid_end, format="date", min_zoom=15),
            Field("cadastral_numbers", numbers, min_zoom=16, sortable=False),
            Field("address", t.c.address_text, roles=PORTAL_AND_STAFF, min_zoom=99),
            Field("link_state", t.c.link_state, roles=STAFF, min_zoom=99),
            Field(
                "applicant",
                applicants,
                roles=PERSONAL_DATA_ROLES,
                personal=True,
                min_zoom=99,
                sortable=False,
            ),
        ),
        data_tables=("permits.act", "permits.act_parcel", "protected.act_applicant"),
        style={"fill": "#fdd0a2", "stroke": "#d94801", "width": 1.0},
    )


BUILT_IN = (
    parcels_layer,
    buildings_layer,
    zones_layer,
    restrictions_layer,
    addresses_layer,
    intravilan_layer,
    admin_units_layer,
    acts_layer,
)


class Catalog:
    """The layers of one deployment plus their database state, refreshed on data change.

    Reading ``core.data_version`` costs one tiny query; it is done at most every
    ``check_interval`` seconds per process, and the extents are recomputed only for
    layers whose version moved.
    """

    def __init__(
        self,
        storage_srid: int,
        extra: Iterable[LayerDefinition] = (),
        *,
        built_in: bool = True,
        check_interval: float = 1.0,
    ) -> None:
        self.storage_srid = storage_srid
        self.check_interval = check_interval
        self._layers: dict[str, LayerDefinition] = {}
        if built_in:
            for make in BUILT_IN:
                self.register(make(storage_srid))
        for layer in extra:
            self.register(layer)
        self._states: dict[str, LayerState] = {}
        self._versions: dict[str, int] = {}
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    def register(self, layer: LayerDefinition) -> None:
        """Add a layer (deployments and tests publish extra tables this way)."""
        self._layers[layer.id] = layer
        self._checked_at = float("-inf")

    def layers(self) -> list[LayerDefinition]:
        return list(self._layers.values())

    def get(self, layer_id: str) -> LayerDefinition:
        found = self._layers.get(layer_id)
        if found is None:
            raise NotFound(f"collection {layer_id!r} does not exist", locator="collectionId")
        return found

    def state(self, conn: Connection, layer: LayerDefinition) -> LayerState:
        """The layer's extent and version, recomputed only after its data changed."""
        self.refresh(conn)
        current = self._states.get(layer.id)
        if current is None:
            current = self._compute_state(conn, layer)
            self._states[layer.id] = current
        return current

    def refresh(self, conn: Connection, *, force: bool = False) -> None:
        """Drop the cached state of layers whose tables changed since the last check."""
        now = time.monotonic()
        if not force and now - self._checked_at < self.check_interval:
            return
        with self._lock:
            versions = read_versions(conn)
            if versions.get(INDICATOR_RUNS) != self._versions.get(INDICATOR_RUNS):
                self._sync_indicator_layers(conn)
            for layer in self._layers.values():
                if any(versions.get(t) != self._versions.get(t) for t in layer.tables):
                    self._states.pop(layer.id, None)
            self._versions = versions
            self._checked_at = now

    def _sync_indicator_layers(self, conn: Connection) -> None:
        """Publish the current indicator runs (``layers.indicators.publish``) as layers."""
        from layers.indicators.publish import PREFIX, indicator_layers

        for layer_id in [i for i in self._layers if i.startswith(PREFIX)]:
            del self._layers[layer_id]
            self._states.pop(layer_id, None)
        for layer in indicator_layers(conn, self.storage_srid):
            self._layers[layer.id] = layer

    def check_due(self) -> bool:
        """Whether ``refresh`` would read the database now: callers that refresh before
        every request (a before-request hook) can skip taking a connection when not,
        which a cache hit then never needs."""
        return time.monotonic() - self._checked_at >= self.check_interval

    def fresh_version(self, layer: LayerDefinition) -> str | None:
        """The version without touching the database, while the last check is recent."""
        if time.monotonic() - self._checked_at >= self.check_interval:
            return None
        current = self._states.get(layer.id)
        return current.version if current is not None else None

    def version(self, conn: Connection, layer: LayerDefinition) -> str:
        """A short key that changes whenever any table behind ``layer`` changes."""
        return self.state(conn, layer).version

    def _compute_state(self, conn: Connection, layer: LayerDefinition) -> LayerState:
        version = "-".join(str(self._versions.get(t, 0)) for t in layer.tables)
        return LayerState(
            extent=layer_extent(conn, layer),
            version=version,
            interval=_interval(conn, layer),
            rows_estimate=estimated_rows(conn, layer),
        )


def read_versions(conn: Connection) -> dict[str, int]:
    """Every table's change counter (empty before the access migration ran)."""
    rows = conn.execute(sa.text("SELECT table_name, version FROM core.data_version"))
    return {str(name): int(version) for name, version in rows}


def estimated_rows(conn: Connection, layer: LayerDefinition) -> float:
    """The planner's row estimate for the layer's main table (free, from pg_class)."""
    value = conn.execute(
        sa.text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:name)"),
        {"name": layer.qualified_table},
    ).scalar()
    return float(value) if value is not None else 0.0


def layer_extent(
    conn: Connection, layer: LayerDefinition
) -> tuple[float, float, float, float] | None:
    """The CRS84 bounding box of the layer's rows (from the ETRS89 twin when it exists)."""
    geographic = (
        layer.etrs89
        if layer.etrs89 is not None
        else sa.func.ST_Transform(layer.geom, sa.literal(WGS84))
    )
    box = sa.func.ST_Extent(geographic)
    inner = sa.select(box.label("b")).select_from(layer.main).subquery()
    query = sa.select(
        sa.func.ST_XMin(inner.c.b),
        sa.func.ST_YMin(inner.c.b),
        sa.func.ST_XMax(inner.c.b),
        sa.func.ST_YMax(inner.c.b),
    )
    row = conn.execute(query).one()
    if row[0] is None:
        return None
    return (float(row[0]), float(row[1]), float(row[2]), float(row[3]))


def _interval(conn: Connection, layer: LayerDefinition) -> tuple[str | None, str | None] | None:
    """The temporal extent: first version's start, open end while versions are current."""
    if layer.temporal is None:
        return None
    start = conn.execute(sa.select(sa.func.min(layer.main.c[layer.temporal[0]]))).scalar()
    return (start.isoformat() if start is not None else None, None)
