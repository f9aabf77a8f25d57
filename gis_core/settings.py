"""One typed settings object for the whole platform.

Precedence, lowest first: built-in defaults < the TOML file named by ``URBANGIS_CONFIG``
< environment variables ``URBANGIS_*`` < values passed explicitly (tests, CLI options).
Invalid values stop the program at start with a message naming the setting, so a typo in
a deployment never turns into a half-working server.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from gis_core.errors import ConfigurationError

ENV_PREFIX = "URBANGIS_"
CONFIG_ENV = "URBANGIS_CONFIG"


class Settings(BaseSettings):
    """Deployment settings; see the configuration table in the README."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    database_url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL of an external PostGIS; absent = the embedded local database",
    )
    storage_srid: int = Field(default=3844, description="EPSG code every geometry is stored in")
    uat_siruta: int = Field(default=54975, description="SIRUTA code of the municipality (UAT)")
    uat_name: str = Field(default="Cluj-Napoca", description="Name of the municipality")
    host: str = Field(default="127.0.0.1", description="Address the web server binds to")
    port: int = Field(default=5000, ge=1, le=65535, description="Port the web server binds to")
    workers: int = Field(default=2, ge=1, le=64, description="Web server worker processes")
    # One thread a worker: most requests are a millisecond or two of CPU shared by Python
    # and PostgreSQL, so on a two-core machine a second thread only adds waiting for the
    # interpreter lock and switching between threads. Alternated on two cores, 1 against 2
    # threads answered the location check 24 % more often (1283 against 1033 per second)
    # with its p95 at 10 ms instead of 17.5 (four threads did worse than two).
    threads: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Request threads per worker process (1: one request at a time)",
    )
    server: Literal["granian", "gunicorn"] = Field(
        default="granian",
        description="HTTP server of `urbangis serve`: granian (HTTP in Rust, the default) "
        "or gunicorn (pure Python, kills a worker stuck past the request timeout)",
    )
    access_log: bool = Field(
        default=True,
        description="`urbangis serve` writes one line per request to standard output",
    )
    data_dir: Path = Field(
        default=Path("var"),
        description="Folder for the embedded database, caches, rasters and exports",
    )
    embedded_os_user: str = Field(
        default="postgres",
        description="Unprivileged system user that runs the embedded database when started as root",
    )
    embedded_port: int = Field(
        default=5432,
        ge=1,
        le=65535,
        description="Port number of the embedded database (its socket lives in the data folder)",
    )
    embedded_tcp: bool = Field(
        default=False,
        description="Also listen on 127.0.0.1:embedded_port (off: private Unix socket only)",
    )
    statement_timeout_ms: int = Field(
        default=30_000, ge=100, description="Statement timeout of request queries, milliseconds"
    )
    pool_size: int = Field(default=5, ge=1, le=100, description="Database connections per process")
    secret_key: SecretStr = Field(
        default=SecretStr("change-me-in-production"),
        description="Key that signs sessions and links",
    )
    osm_tiles_url: str = Field(
        default="https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        description="Online base map tiles (the map works without them)",
    )
    disclaimer: str = Field(
        default=(
            "Informație cu caracter informativ; nu ține loc de certificat de urbanism. "
            "Information only; it does not replace an urbanism certificate."
        ),
        description="Text attached to every public status answer",
    )
    cu_validity_min_months: int = Field(
        default=6, ge=1, le=60, description="Shortest validity of an urbanism certificate"
    )
    cu_validity_max_months: int = Field(
        default=24, ge=1, le=60, description="Longest validity of an urbanism certificate"
    )
    cu_extension_max_months: int = Field(
        default=12, ge=0, le=60, description="Longest (single) extension of a certificate"
    )
    cu_extension_notice_days: int = Field(
        default=15, ge=0, description="A CU extension is asked this many days before expiry"
    )
    ac_validity_min_months: int = Field(
        default=6, ge=1, le=120, description="Shortest period to start works set by a permit"
    )
    ac_validity_max_months: int = Field(
        default=36, ge=1, le=120, description="Longest period to start works set by a permit"
    )
    ac_extension_max_months: int = Field(
        default=24, ge=0, le=120, description="Longest (single) extension of an AC/AD"
    )
    ac_extension_notice_working_days: int = Field(
        default=45, ge=0, description="An AC/AD extension is asked this many working days ahead"
    )
    publish_applicant_names: bool = Field(
        default=False, description="Show applicants' names in the public monthly register"
    )
    api_cors_origins: tuple[str, ...] = Field(
        default=(),
        description="Origins (e.g. https://portal.example.ro, or *) browsers may call /api/v1 from",
    )
    api_max_numbers: int = Field(
        default=50, ge=1, le=1000, description="Cadastral numbers accepted in one location check"
    )
    api_max_area_m2: float = Field(
        default=2_000_000.0,
        gt=0,
        description="Largest drawn polygon a location check accepts, square metres",
    )
    api_rate_limit_per_minute: int = Field(
        default=0,
        ge=0,
        description="Requests per minute one anonymous client (IP) may make; 0 = no limit",
    )
    api_statement_timeout_ms: int = Field(
        default=5_000, ge=100, description="Statement timeout of /api/v1 queries, milliseconds"
    )
    api_nearby_m: float = Field(
        default=50.0,
        ge=0,
        le=1000,
        description="Restrictions within this distance of a location are reported as nearby",
    )

    @field_validator("storage_srid")
    @classmethod
    def _known_projected_crs(cls, srid: int) -> int:
        """Accept only a projected CRS PROJ knows: areas and distances are computed in it."""
        from pyproj import CRS
        from pyproj.exceptions import CRSError

        try:
            crs = CRS.from_epsg(srid)
        except CRSError as exc:
            raise ValueError(f"EPSG:{srid} is not a CRS PROJ knows") from exc
        if not crs.is_projected:
            raise ValueError(f"EPSG:{srid} is not projected; storage needs metres")
        return srid

    @field_validator("uat_siruta")
    @classmethod
    def _positive_siruta(cls, code: int) -> int:
        if code <= 0:
            raise ValueError("a SIRUTA code is a positive number")
        return code

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, url: SecretStr | None) -> SecretStr | None:
        if url is None or not url.get_secret_value().strip():
            return None
        text = url.get_secret_value()
        if not text.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
            raise ValueError("must be a postgresql:// URL")
        return url

    @property
    def embedded(self) -> bool:
        """True when urbangis runs its own private PostgreSQL cluster."""
        return self.database_url is None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_ENV)
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    def redacted(self) -> dict[str, str]:
        """Every setting as printable text, secrets masked (for ``urbangis config show``)."""
        shown: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                shown[name] = _redact_secret(name, value)
            elif value is None:
                shown[name] = "(embedded)" if name == "database_url" else ""
            else:
                shown[name] = str(value)
        return shown


def _redact_secret(name: str, value: SecretStr) -> str:
    """Mask a secret; for URLs keep everything but the password so operators can check it."""
    if name != "database_url":
        return "********"
    from sqlalchemy.engine import make_url

    return make_url(value.get_secret_value()).render_as_string(hide_password=True)


def load_settings(**overrides: Any) -> Settings:
    """Read settings from every source, turning validation errors into one clear message."""
    config_file = os.environ.get(CONFIG_ENV)
    if config_file and not Path(config_file).is_file():
        raise ConfigurationError(f"{CONFIG_ENV}: config file {config_file} does not exist")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigurationError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    """Name each bad setting the way the operator wrote it (the environment variable)."""
    lines = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "settings"
        variable = ENV_PREFIX + field.upper()
        value = error.get("input")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        lines.append(f"invalid setting {variable}{shown}: {error['msg']}")
    return "; ".join(lines)
