"""A WFS feature type read with OWSLib, page by page (``WFS:https://host/wfs``).

Servers cap the features per response (MapServer, GeoServer and ours all do), so the
reader asks for the number matched first and then walks the result with ``startIndex``
and ``count`` (WFS 2.0 paging) until a page comes back short. Each page is GML that
GDAL parses from memory into the same batches a file gives; the CRS is the one the
capabilities offer first, checked against the municipality like any source's.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
from lxml import etree
from owslib.wfs import WebFeatureService
from pyogrio import raw as ogr_raw
from pyogrio.errors import DataSourceError

from gis_core.crs import parse_crs
from gis_core.errors import InvalidInput, InvalidParameter
from importers.readers.batch import FeatureBatch, SourceInfo
from importers.readers.safexml import refuse_dtd
from importers.report import Finding

PAGE_SIZE = 1_000
_MATCHED = re.compile(rb'numberMatched="(\d+)"')


class WfsSource:
    """One feature type of a WFS 2.0 service."""

    def __init__(self, url: str, *, layer: str | None = None, page_size: int = PAGE_SIZE) -> None:
        self.url = url
        self.page_size = page_size
        self._findings: list[Finding] = []
        try:
            self.service = WebFeatureService(url, version="2.0.0", timeout=60)
        except Exception as exc:  # owslib raises requests/lxml/ServiceException errors
            raise InvalidInput(f"WFS {url}: cannot read the capabilities: {exc}") from None
        self.typename = self._choose(layer)
        content = self.service.contents[self.typename]
        offered = [str(c.getcode() if hasattr(c, "getcode") else c) for c in content.crsOptions]
        self.srs = offered[0] if offered else None
        epsg = parse_crs(self.srs) if self.srs else None
        self.info = SourceInfo(
            name=f"WFS {url} ({self.typename})",
            fields=self._fields(),
            feature_count=self._matched(),
            declared_epsg=epsg,
            declared_text=self.srs,
        )

    def _choose(self, layer: str | None) -> str:
        names = list(self.service.contents)
        if layer is not None:
            matches = [n for n in names if n == layer or n.split(":")[-1] == layer]
            if not matches:
                raise InvalidParameter(
                    f"WFS {self.url} has no feature type {layer!r}; it offers {', '.join(names)}",
                    locator="layer",
                )
            return matches[0]
        if len(names) == 1:
            return names[0]
        raise InvalidParameter(
            f"WFS {self.url} offers several feature types ({', '.join(names)}): "
            "choose one with --layer",
            locator="layer",
        )

    def _fields(self) -> list[str]:
        try:
            schema = self.service.get_schema(self.typename)
        except Exception:  # a server without DescribeFeatureType: learn fields from pages
            return []
        return [str(name) for name in (schema or {}).get("properties", {})]

    def _matched(self) -> int | None:
        try:
            response = self.service.getfeature(
                typename=[self.typename], maxfeatures=1, startindex=0
            )
            head = response.read(65536)
        except Exception:
            return None
        match = _MATCHED.search(head if isinstance(head, bytes) else head.encode())
        return int(match.group(1)) if match else None

    def findings(self) -> list[Finding]:
        return self._findings

    def batches(self, size: int) -> Iterator[FeatureBatch]:
        del size  # the server's page size rules: it may return fewer than asked
        start = 0
        matched = self.info.feature_count
        while matched is None or start < matched:
            page = self._page(start)
            if page is None or len(page) == 0:
                return
            yield page
            start += len(page)

    def sample(self, size: int) -> FeatureBatch:
        return self._page(0) or FeatureBatch(0, np.empty(0, dtype=object), {})

    def _page(self, start: int) -> FeatureBatch | None:
        try:
            response = self.service.getfeature(
                typename=[self.typename],
                startindex=start,
                maxfeatures=self.page_size,
                srsname=self.srs,
            )
            data = response.read()
        except Exception as exc:
            raise InvalidInput(f"{self.info.name}: GetFeature at {start} failed: {exc}") from None
        data = data if isinstance(data, bytes) else data.encode()
        refuse_dtd(data, self.info.name)
        if b"ExceptionReport" in data[:2048]:
            text = " ".join(etree.fromstring(data).itertext()).strip()
            raise InvalidInput(f"{self.info.name}: the server answered {text}")
        try:
            meta, _fids, geometry, values = ogr_raw.read(io.BytesIO(data))
        except DataSourceError as exc:
            if b'numberReturned="0"' in data:
                return None
            raise InvalidInput(
                f"{self.info.name}: page at {start} is not GML GDAL reads: {exc}"
            ) from None
        if len(geometry) == 0:
            return None
        columns: dict[str, Any] = {
            str(name): np.asarray(column, dtype=object)
            for name, column in zip(meta["fields"], values, strict=True)
        }
        if not self.info.fields:
            self.info.fields = list(columns)
        return FeatureBatch(start, np.asarray(list(geometry), dtype=object), columns)
