"""The shape every vector reader hands to the pipelines: batches of features.

Readers stream: a batch holds at most a few hundred thousand features, as WKB in the
source CRS plus their attribute columns, so a file of any size is imported in bounded
memory. Each feature carries a label that messages use to point at it in the source
("feature 17", "gml:id ES.SDGC.CP.000700100XJ24B").
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pyarrow as pa

from importers.report import Finding


@dataclass
class FeatureBatch:
    """Features ``start`` … ``start + len - 1`` of one source."""

    start: int
    wkb: np.ndarray  # object array of bytes (None = no geometry)
    columns: Mapping[str, np.ndarray]  # object arrays of Python values
    labels: np.ndarray | None = None  # object array of str; None = "feature N"
    arrow: Mapping[str, pa.Array] | None = None  # the same columns, when read as Arrow

    def __len__(self) -> int:
        return int(self.wkb.shape[0])

    def label(self, index: int) -> str:
        if self.labels is not None:
            return str(self.labels[index])
        return f"feature {self.start + index}"


@dataclass
class SourceInfo:
    """What a reader knows before reading: fields, count and the declared CRS."""

    name: str
    fields: list[str]
    feature_count: int | None
    declared_epsg: int | None
    declared_text: str | None = None
    geometry_type: str | None = None
    notes: list[str] = field(default_factory=list)


class VectorSource(Protocol):
    """A vector dataset read in batches (a file layer, a WFS feature type)."""

    info: SourceInfo

    def batches(self, size: int) -> Iterator[FeatureBatch]: ...

    def findings(self) -> list[Finding]:
        """Problems found while reading (features the driver could not parse, ...)."""
        ...

    def sample(self, size: int) -> FeatureBatch: ...
