"""A small typed Python client of the urbangis ``/api/v1`` for portal integrators.

Standard library only (``urllib``), so an e-services portal can vendor nothing and still
call the platform::

    from webmap.client import UrbanGisClient

    client = UrbanGisClient("https://gis.primarie.ro", api_key="k1d.s3cr3t")
    answer = client.check_numbers(["123456"], purpose="construire locuință")
    if answer.verdict == "blocked":
        print([reason.message for reason in answer.reasons])

Every error answer of the server becomes an ``ApiError`` carrying the HTTP status, the
code, the message and the field at fault (``locator``); a 429 also carries
``retry_after`` seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode
from urllib.request import Request, urlopen

API_PREFIX = "/api/v1"


class ApiError(Exception):
    """The server refused or failed a request."""

    def __init__(
        self,
        status: int,
        code: str,
        description: str,
        locator: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {description}")
        self.status = status
        self.code = code
        self.description = description
        self.locator = locator
        self.retry_after = retry_after


@dataclass(frozen=True)
class Reason:
    code: str
    severity: str  # blocked | attention | info
    message: str


@dataclass(frozen=True)
class Parcel:
    cadastral_number: str
    land_book_number: str | None
    measured_area: float | None
    address: str | None
    intravilan: bool | None
    geometry: dict[str, Any] | None = None


@dataclass(frozen=True)
class Zone:
    utr_code: str
    name: str | None
    plan_title: str
    share: float | None
    applies: bool
    rules: dict[str, Any]
    overridden_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class Restriction:
    kind: str
    name: str
    legal_source: str | None
    intersects: bool
    area: float | None
    distance: float


@dataclass(frozen=True)
class LocationAnswer:
    """The location check: typed essentials, and the whole JSON document in ``raw``."""

    verdict: str  # ok | attention | blocked
    reasons: tuple[Reason, ...]
    parcels: tuple[Parcel, ...]
    not_found: tuple[str, ...]
    zones: tuple[Zone, ...]
    restrictions: tuple[Restriction, ...]
    acts: tuple[dict[str, Any], ...]
    inside_intravilan: str
    valid_for: date
    map_url: str
    disclaimer: str
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> LocationAnswer:
        return cls(
            verdict=doc["verdict"],
            reasons=tuple(Reason(r["code"], r["severity"], r["message"]) for r in doc["reasons"]),
            parcels=tuple(_parcel(p) for p in doc["parcels"]),
            not_found=tuple(m["cadastral_number"] for m in doc["not_found"]),
            zones=tuple(
                Zone(
                    utr_code=z["utr_code"],
                    name=z.get("name"),
                    plan_title=z["plan"]["title"],
                    share=z.get("share"),
                    applies=z["applies"],
                    rules=z["rules"],
                    overridden_by=tuple(z.get("overridden_by") or ()),
                )
                for z in doc["zones"]
            ),
            restrictions=tuple(
                Restriction(
                    r["kind"],
                    r["name"],
                    r.get("legal_source"),
                    r["intersects"],
                    r.get("area"),
                    r["distance"],
                )
                for r in doc["restrictions"]
            ),
            acts=tuple(doc["acts"]),
            inside_intravilan=doc["intravilan"]["inside"],
            valid_for=date.fromisoformat(doc["valid_for"]),
            map_url=doc["map_url"],
            disclaimer=doc["disclaimer"],
            raw=doc,
        )


@dataclass(frozen=True)
class Address:
    address: str
    cadastral_number: str | None
    lon: float | None
    lat: float | None


def _parcel(p: dict[str, Any]) -> Parcel:
    return Parcel(
        cadastral_number=p["cadastral_number"],
        land_book_number=p.get("land_book_number"),
        measured_area=p.get("measured_area"),
        address=p.get("address"),
        intravilan=p.get("intravilan"),
        geometry=p.get("geometry"),
    )


class UrbanGisClient:
    """Calls one urbangis server; ``api_key`` is sent as ``X-API-Key`` when given."""

    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    # -- the location check ------------------------------------------------------------
    def check_numbers(
        self,
        numbers: list[str],
        *,
        as_of: date | None = None,
        purpose: str | None = None,
        include_geometry: bool = False,
    ) -> LocationAnswer:
        body = {"cadastral_numbers": list(numbers)}
        return self._check(body, as_of, purpose, include_geometry)

    def check_geometry(
        self,
        geometry: dict[str, Any],
        *,
        crs: str = "EPSG:4326",
        as_of: date | None = None,
        purpose: str | None = None,
        include_geometry: bool = False,
    ) -> LocationAnswer:
        body = {"geometry": geometry, "crs": crs}
        return self._check(body, as_of, purpose, include_geometry)

    def check_address(
        self, address: str, *, as_of: date | None = None, purpose: str | None = None
    ) -> LocationAnswer:
        return self._check({"address": address}, as_of, purpose, False)

    def parcel(self, cadastral_number: str, *, as_of: date | None = None) -> LocationAnswer:
        query = {"as_of": as_of.isoformat()} if as_of else {}
        path = f"/parcels/{quote(cadastral_number, safe='')}"
        return LocationAnswer.from_json(self._get(path, query))

    def parcels_at(self, lon: float, lat: float, *, as_of: date | None = None) -> list[Parcel]:
        query: dict[str, Any] = {"lon": lon, "lat": lat}
        if as_of:
            query["as_of"] = as_of.isoformat()
        return [_parcel(p) for p in self._get("/parcels", query)["parcels"]]

    def addresses(self, text: str, *, limit: int = 10) -> list[Address]:
        found = self._get("/addresses", {"q": text, "limit": limit})["addresses"]
        return [Address(a["address"], a.get("cadastral_number"), a["lon"], a["lat"]) for a in found]

    # -- transport ---------------------------------------------------------------------
    def _check(
        self,
        body: dict[str, Any],
        as_of: date | None,
        purpose: str | None,
        include_geometry: bool,
    ) -> LocationAnswer:
        if as_of:
            body["as_of"] = as_of.isoformat()
        if purpose:
            body["purpose"] = purpose
        if include_geometry:
            body["include_geometry"] = True
        return LocationAnswer.from_json(self._send("POST", "/location-check", body=body))

    def _get(self, path: str, query: dict[str, Any]) -> dict[str, Any]:
        suffix = f"?{urlencode(query)}" if query else ""
        return self._send("GET", path + suffix)

    def _send(self, method: str, path: str, *, body: Any = None) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["X-API-Key"] = self.api_key
        url = self.base_url + API_PREFIX + path
        request = Request(url, data=data, method=method, headers=headers)  # noqa: S310
        try:
            with urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                document: dict[str, Any] = json.load(response)
                return document
        except HTTPError as exc:
            raise _api_error(exc) from None
        except URLError as exc:
            raise ApiError(
                0, "Unreachable", f"cannot reach {self.base_url}: {exc.reason}"
            ) from None


def _api_error(exc: HTTPError) -> ApiError:
    try:
        body = json.loads(exc.read() or b"{}")
    except ValueError:
        body = {}
    retry = exc.headers.get("Retry-After") if exc.headers else None
    return ApiError(
        exc.code,
        str(body.get("code", "HTTPError")),
        str(body.get("description", exc.reason)),
        body.get("locator"),
        int(retry) if retry and retry.isdigit() else None,
    )
