"""OWS plumbing shared by the WFS and WMS endpoints: the service description, KVP
parameters (names are case-insensitive), CRS names in every spelling clients send, and
the exception reports each protocol version expects.

The protocol functions never let an ``UrbanGisError`` escape: ``report_for`` turns any
of them into the report of the version asked for, with the OGC code and locator the
lower layers already attached (an unknown property is an ``InvalidParameterValue``
naming it, never an SQL error).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from sqlalchemy.engine import Engine

from gis_core.errors import UrbanGisError
from layers import features
from layers.catalog import Catalog
from layers.spatial import CRS84_SRID

XML = "text/xml; charset=UTF-8"
OWS11 = "http://www.opengis.net/ows/1.1"
OWS10 = "http://www.opengis.net/ows"
OGC = "http://www.opengis.net/ogc"
CRS84_URN = "urn:ogc:def:crs:OGC:1.3:CRS84"
_SRS_PATTERNS = (
    re.compile(r"^urn:ogc:def:crs:EPSG:[0-9.]*:(\d+)$", re.IGNORECASE),
    re.compile(r"^urn:x-ogc:def:crs:EPSG:[0-9.]*:(\d+)$", re.IGNORECASE),
    re.compile(r"^https?://www\.opengis\.net/def/crs/EPSG/0/(\d+)$", re.IGNORECASE),
    re.compile(r"^EPSG:(\d+)$", re.IGNORECASE),
)
# ``http://www.opengis.net/gml/srs/epsg.xml#4326`` is x/y (lon/lat) by convention.
_GML_SRS = re.compile(r"^https?://www\.opengis\.net/gml/srs/epsg\.xml#(\d+)$", re.IGNORECASE)
_CRS84_NAMES = frozenset(
    {
        "crs:84",
        "crs84",
        "urn:ogc:def:crs:ogc:1.3:crs84",
        "urn:ogc:def:crs:ogc::crs84",
        "http://www.opengis.net/def/crs/ogc/1.3/crs84",
        "https://www.opengis.net/def/crs/ogc/1.3/crs84",
    }
)


class OwsError(UrbanGisError):
    """An OGC exception with its code, locator and HTTP status."""

    def __init__(
        self, code: str, message: str, locator: str | None = None, status: int = 400
    ) -> None:
        super().__init__(message, locator=locator)
        self.ogc_code = code
        self.http_status = status


def invalid(message: str, locator: str) -> OwsError:
    return OwsError("InvalidParameterValue", message, locator)


def missing(name: str) -> OwsError:
    return OwsError("MissingParameterValue", f"the {name} parameter is missing", name)


@dataclass(frozen=True)
class ServiceInfo:
    """What the capabilities say about the service and who runs it."""

    title: str
    abstract: str = ""
    keywords: tuple[str, ...] = ()
    provider: str = ""
    provider_site: str = ""
    contact_email: str = ""
    fees: str = "none"
    access_constraints: str = "none"


@dataclass(frozen=True)
class OwsService:
    """One endpoint (``/ogc/wfs`` or ``/ogc/wms``) of one deployment."""

    engine: Engine
    catalog: Catalog
    url: str
    info: ServiceInfo
    timeout_ms: int | None = None
    max_count: int = 10_000
    max_size: int = 4096

    @property
    def data(self) -> features.Service:
        """The data access of OGC API Features (read-only transaction, timeouts)."""
        return features.Service(
            engine=self.engine,
            catalog=self.catalog,
            base_url=self.url,
            timeout_ms=self.timeout_ms,
        )


@dataclass(frozen=True)
class Kvp:
    """Key-value parameters: names are case-insensitive, the first of repeats wins."""

    values: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, params: Iterable[tuple[str, str]]) -> Kvp:
        found: dict[str, str] = {}
        for name, value in params:
            found.setdefault(name.lower(), value)
        return cls(found)

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.values.get(name.lower(), default)

    def text(self, name: str) -> str | None:
        """The value, or None when absent or blank."""
        value = self.values.get(name.lower())
        return value.strip() if value is not None and value.strip() else None

    def require(self, name: str) -> str:
        value = self.text(name)
        if value is None:
            raise missing(name)
        return value

    def items(self) -> Sequence[tuple[str, str]]:
        return list(self.values.items())


def parse_srs(text: str, offered: Iterable[int], locator: str) -> int:
    """A CRS name as our SRID code (``CRS84_SRID`` for CRS84); unknown or not offered → 400.

    Every EPSG spelling uses the EPSG axis order (EPSG:4326 is latitude first), as the
    WMS 1.3.0 and WFS 2.0 standards require; CRS84 is longitude first.
    """
    srid, _ = srs_and_order(text, locator)
    if srid != CRS84_SRID and srid not in tuple(offered):
        raise OwsError("InvalidParameterValue", f"{locator} {text!r} is not offered here", locator)
    return srid


def srs_and_order(text: str, locator: str) -> tuple[int, bool]:
    """The SRID code and whether the spelling forces x/y order (the ``epsg.xml#`` form)."""
    value = text.strip()
    if value.lower() in _CRS84_NAMES:
        return CRS84_SRID, True
    gml = _GML_SRS.match(value)
    if gml:
        return int(gml.group(1)), True
    for pattern in _SRS_PATTERNS:
        found = pattern.match(value)
        if found:
            return int(found.group(1)), False
    raise OwsError("InvalidParameterValue", f"{locator} {text!r} is not a known CRS", locator)


def srs_urn(srid: int) -> str:
    return CRS84_URN if srid == CRS84_SRID else f"urn:ogc:def:crs:EPSG::{srid}"


def ows_report(errors: Sequence[OwsError | UrbanGisError], version: str) -> bytes:
    """An OWS ``ExceptionReport`` (OWS 1.1 for WFS 2.0, OWS 1.0 for WFS 1.1.0), or the
    OGC ``ServiceExceptionReport`` of WFS 1.0.0."""
    if version == "1.0.0":
        return service_exception_report(errors)
    namespace, report_version = (OWS10, "1.0.0") if version.startswith("1.") else (OWS11, "2.0.0")
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<ows:ExceptionReport xmlns:ows="{namespace}" version="{report_version}" xml:lang="en">',
    ]
    for error in errors:
        locator = f" locator={quoteattr(error.locator)}" if error.locator else ""
        parts.append(
            f"<ows:Exception exceptionCode={quoteattr(error.ogc_code)}{locator}>"
            f"<ows:ExceptionText>{escape(error.message)}</ows:ExceptionText></ows:Exception>"
        )
    parts.append("</ows:ExceptionReport>")
    return "".join(parts).encode()


def service_exception_report(errors: Sequence[OwsError | UrbanGisError]) -> bytes:
    """WFS 1.0.0's exception document (OGC ``ServiceExceptionReport`` 1.2.0)."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<ServiceExceptionReport version="1.2.0" xmlns="{OGC}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:schemaLocation="{OGC} http://schemas.opengis.net/wfs/1.0.0/OGC-exception.xsd">',
    ]
    for error in errors:
        locator = f" locator={quoteattr(error.locator)}" if error.locator else ""
        code = error.ogc_code if isinstance(error, OwsError) else ows_code(error)
        parts.append(
            f"<ServiceException code={quoteattr(code)}{locator}>{escape(error.message)}"
            "</ServiceException>"
        )
    parts.append("</ServiceExceptionReport>")
    return "".join(parts).encode()


def ows_code(error: UrbanGisError) -> str:
    """The OWS exception code of any platform error."""
    if isinstance(error, OwsError):
        return error.ogc_code
    if error.ogc_code in ("NotFound", "NoApplicableCode", "OperationNotSupported"):
        return error.ogc_code if error.http_status != 404 else "InvalidParameterValue"
    return error.ogc_code


def as_ows_error(error: UrbanGisError) -> OwsError:
    if isinstance(error, OwsError):
        return error
    status = error.http_status if error.http_status >= 500 else 400
    return OwsError(ows_code(error), error.message, error.locator, status)
