"""Every vector format GDAL/OGR reads: Shapefile (also zipped), GeoPackage, GeoJSON, DXF,
GML (INSPIRE Cadastral Parcels), OSM PBF, ... read in Arrow batches through pyogrio.

What the reader adds to GDAL is what GDAL leaves to its caller:
- a layer is chosen for the user when the choice is obvious (the only polygon layer,
  INSPIRE's CadastralParcel), otherwise the layers are listed and ``--layer`` asked for;
- XML sources are checked for a DTD before GDAL sees them (no entity expansion);
- a GML ``srsName`` that GDAL could not turn into a CRS is still reported, so the CRS
  check can say what the file claimed;
- Shapefiles without ``.cpg`` get their code page detected (UTF-8 or the Romanian
  legacy CP1250) instead of GDAL's Latin-1 guess, which turns ş into º;
- features GDAL skips (unparseable GML geometries) become rejected findings naming
  the feature, instead of silently vanishing.
"""

from __future__ import annotations

import re
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyogrio
from pyogrio import raw as ogr_raw
from pyogrio.errors import DataLayerError, DataSourceError

from gis_core.errors import InvalidInput, InvalidParameter
from importers.readers.batch import FeatureBatch, SourceInfo
from importers.readers.safexml import refuse_dtd
from importers.report import Finding
from importers.sourcecrs import epsg_of

XML_SUFFIXES = (".gml", ".xml", ".kml", ".gmlz")
POLYGONAL = ("Polygon", "MultiPolygon", "Unknown", "GeometryCollection", "CurvePolygon")
PREFERRED_LAYERS = ("CadastralParcel", "multipolygons")
LEGACY_ENCODING = "CP1250"
_SRS_NAME = re.compile(rb'srsName\s*=\s*"([^"]+)"')
_SKIPPED = re.compile(r"feature (\d+) (\S+)?")

_configured = False


def _configure_gdal() -> None:
    """Corrupt GML features are skipped with a warning (turned into findings below);
    DXF polylines flagged closed are read as polygons (a surveyor's parcel)."""
    global _configured
    if not _configured:
        pyogrio.set_gdal_config_options(
            {"GML_SKIP_CORRUPTED_FEATURES": "YES", "DXF_CLOSED_LINE_AS_POLYGON": "TRUE"}
        )
        _configured = True


def gdal_path(path: Path) -> str:
    """The path GDAL opens: a zip is read in place through /vsizip/."""
    if path.suffix.lower() == ".zip":
        return f"/vsizip/{path.resolve()}"
    return str(path)


class OgrSource:
    """One layer of one OGR dataset, read in batches of WKB and attribute arrays."""

    def __init__(
        self,
        path: Path,
        *,
        layer: str | None = None,
        encoding: str | None = None,
        where: str | None = None,
        display: str | None = None,
    ) -> None:
        _configure_gdal()
        self.path = path
        self.display = display or str(path)
        self.where = where
        self._findings: list[Finding] = []
        if not path.exists():
            raise InvalidInput(f"{self.display}: no such file or folder")
        self._check_xml()
        self.source = gdal_path(path)
        self.layer = self._choose_layer(layer)
        self.encoding, encoding_note = self._choose_encoding(encoding)
        self.info = self._read_info()
        if encoding_note:
            self.info.notes.append(encoding_note)

    # --- opening -------------------------------------------------------------------

    def _check_xml(self) -> None:
        members = self._xml_members()
        for name, head in members:
            refuse_dtd(head, name)

    def _xml_members(self) -> list[tuple[str, bytes]]:
        if self.path.is_file() and self.path.suffix.lower() in XML_SUFFIXES:
            with self.path.open("rb") as stream:
                return [(self.display, stream.read(65536))]
        if self.path.is_file() and self.path.suffix.lower() == ".zip":
            heads = []
            with zipfile.ZipFile(self.path) as archive:
                for member in archive.namelist():
                    if Path(member).suffix.lower() in XML_SUFFIXES:
                        with archive.open(member) as stream:
                            heads.append((f"{self.display}!{member}", stream.read(65536)))
            return heads
        return []

    def _choose_layer(self, wanted: str | None) -> str:
        try:
            layers = pyogrio.list_layers(self.source)
        except (DataSourceError, DataLayerError) as exc:
            raise InvalidInput(f"{self.display}: GDAL cannot open it: {exc}") from None
        names = [str(name) for name, _ in layers]
        if wanted is not None:
            if wanted not in names:
                raise InvalidParameter(
                    f"{self.display} has no layer {wanted!r}; its layers: {', '.join(names)}",
                    locator="layer",
                )
            return wanted
        if len(names) == 1:
            return names[0]
        for preferred in PREFERRED_LAYERS:
            if preferred in names:
                return preferred
        polygonal = [str(name) for name, kind in layers if kind in POLYGONAL]
        if len(polygonal) == 1:
            return polygonal[0]
        raise InvalidParameter(
            f"{self.display} holds several layers ({', '.join(names)}): choose one with --layer",
            locator="layer",
        )

    def _choose_encoding(self, wanted: str | None) -> tuple[str | None, str | None]:
        if wanted is not None:
            return wanted, f"attributes read as {wanted} (--encoding)"
        if self.path.suffix.lower() != ".shp":
            return None, None
        if self.path.with_suffix(".cpg").exists() or self.path.with_suffix(".CPG").exists():
            return None, None
        dbf = next(
            (
                p
                for p in (self.path.with_suffix(".dbf"), self.path.with_suffix(".DBF"))
                if p.exists()
            ),
            None,
        )
        if dbf is None:
            return None, None
        detected = detect_dbf_encoding(dbf)
        if detected is None:
            return None, None
        return detected, f"no .cpg file: attributes detected as {detected}"

    def _read_info(self) -> SourceInfo:
        try:
            info = pyogrio.read_info(self.source, layer=self.layer, encoding=self.encoding)
        except (DataSourceError, DataLayerError) as exc:
            raise InvalidInput(
                f"{self.display}: GDAL cannot read layer {self.layer}: {exc}"
            ) from None
        declared_text = info.get("crs")
        srs_name = self._srs_name() if declared_text is None else None
        count = int(info.get("features", -1))
        return SourceInfo(
            name=f"{self.display}" + (f" (layer {self.layer})" if self.layer else ""),
            fields=[str(name) for name in info["fields"]],
            feature_count=count if count >= 0 else None,
            declared_epsg=epsg_of(declared_text or srs_name),
            declared_text=declared_text or srs_name,
            geometry_type=info.get("geometry_type"),
        )

    def _srs_name(self) -> str | None:
        for _, head in self._xml_members():
            match = _SRS_NAME.search(head)
            if match:
                return match.group(1).decode("ascii", "replace")
        return None

    # --- reading --------------------------------------------------------------------

    def findings(self) -> list[Finding]:
        return self._findings

    def batches(self, size: int) -> Iterator[FeatureBatch]:
        start = 0
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                with ogr_raw.open_arrow(
                    self.source,
                    layer=self.layer,
                    encoding=self.encoding,
                    where=self.where,
                    batch_size=size,
                    use_pyarrow=True,
                ) as (meta, reader):
                    geometry_name = meta.get("geometry_name") or "wkb_geometry"
                    for table in reader:
                        self._collect(caught)
                        batch = _to_batch(table, geometry_name, start)
                        start += len(batch)
                        yield batch
            except (DataSourceError, DataLayerError) as exc:
                raise InvalidInput(f"{self.display}: GDAL stopped reading: {exc}") from None
            self._collect(caught)

    def read_column(self, name: str) -> pa.Array:
        """One attribute column of every feature, without geometries (a quick pass)."""
        try:
            _, table = ogr_raw.read_arrow(
                self.source,
                layer=self.layer,
                encoding=self.encoding,
                where=self.where,
                columns=[name],
                read_geometry=False,
            )
        except (DataSourceError, DataLayerError) as exc:
            raise InvalidInput(f"{self.display}: GDAL stopped reading: {exc}") from None
        return table.column(name).combine_chunks()

    def sample(self, size: int) -> FeatureBatch:
        for batch in self.batches(size):
            return batch
        return FeatureBatch(0, np.empty(0, dtype=object), {})

    def _collect(self, caught: list[warnings.WarningMessage]) -> None:
        for warning in caught:
            text = str(warning.message)
            if "Skipping" in text or "cannot be parsed" in text:
                match = _SKIPPED.search(text)
                feature = match.group(2) or f"feature {match.group(1)}" if match else None
                self._findings.append(
                    Finding(
                        "unreadable_feature",
                        f"GDAL could not parse the feature and skipped it: {text}",
                        feature=feature,
                        rejected=True,
                    )
                )
        caught.clear()


def _to_batch(table: Any, geometry_name: str, start: int) -> FeatureBatch:
    batch = table if isinstance(table, pa.Table) else pa.Table.from_batches([table])
    names = batch.column_names
    wkb = (
        np.asarray(batch.column(geometry_name).to_numpy(zero_copy_only=False), dtype=object)
        if geometry_name in names
        else np.full(batch.num_rows, None, dtype=object)
    )
    arrow = {name: batch.column(name).combine_chunks() for name in names if name != geometry_name}
    return FeatureBatch(start, wkb, _PythonColumns(arrow), arrow=arrow)


class _PythonColumns(Mapping[str, np.ndarray]):
    """Arrow columns as object arrays of Python values, converted when first asked for
    (the vectorised converters read the Arrow arrays and never ask)."""

    def __init__(self, arrow: dict[str, pa.Array]) -> None:
        self._arrow = arrow
        self._converted: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._converted:
            self._converted[name] = np.asarray(self._arrow[name].to_pylist(), dtype=object)
        return self._converted[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrow)

    def __len__(self) -> int:
        return len(self._arrow)


def detect_dbf_encoding(dbf: Path, sample_bytes: int = 4 * 1024 * 1024) -> str | None:
    """UTF-8 when the text is valid UTF-8, else CP1250 when it has any non-ASCII byte.

    Only used when neither a ``.cpg`` file nor the DBF's language-driver byte says it;
    Romanian data of that age is CP1250 (ISO-8859-2 agrees with it on ă â î ş ţ).
    """
    with dbf.open("rb") as stream:
        header = stream.read(32)
        if len(header) < 32:
            return None
        language_driver = header[29]
        if language_driver != 0:
            return None  # GDAL reads the code page from the DBF itself
        header_length = int.from_bytes(header[8:10], "little")
        stream.seek(header_length)
        data = stream.read(sample_bytes)
    if all(byte < 0x80 for byte in data):
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(data) - 4:  # not just a character cut by the sample's end
            return LEGACY_ENCODING
    return "UTF-8"
