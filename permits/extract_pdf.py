"""The printable urbanism information extract ("extras de informare urbanistică") as PDF.

Built with fpdf2 from two framework-free inputs: the parcel status (the answer of
``permits.status.parcel_status``, the same document ``GET /api/v1/parcels/{n}`` returns
and the map's card shows) and the map: the picture our WMS draws for the public
(``permits.extract_picture``) with the parcel outlined on top, or, when the WMS could not
draw it, the map geometry (``layers.extract_map``) drawn as vector paths. It states the
date and the data versions it reflects, carries a QR code to the parcel's online status
and the disclaimer. Personal data cannot appear: neither input reads the protected tables.

Text is set in DejaVu Sans (the Debian package ``fonts-dejavu-core``), which has every
Romanian letter in both the comma-below and the cedilla forms.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import segno
from fpdf import FPDF, XPos, YPos
from fpdf.drawing import DeviceRGB
from fpdf.enums import PathPaintRule
from shapely.geometry import LineString, MultiLineString, MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from gis_core.errors import UrbanGisError
from layers.extract_map import ExtractMap, MapFeature, zone_colour
from permits.extract_picture import MapPicture

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
PAGE_MARGIN = 15.0
MAP_W, MAP_H = 180.0, 112.0
MAP_ASPECT = MAP_W / MAP_H


class FontMissing(UrbanGisError):
    """The extract's font is not installed on this machine."""

    http_status = 503
    ogc_code = "NoApplicableCode"


@dataclass(frozen=True)
class ExtractContext:
    """What the extract states besides the status: when, in which language, whether the
    data are the synthetic demonstration municipality."""

    generated_at: datetime
    lang: str = "ro"
    synthetic: bool = False


LABELS: dict[str, tuple[str, str]] = {
    "title": ("EXTRAS DE INFORMARE URBANISTICĂ", "URBANISM INFORMATION EXTRACT"),
    "subtitle": (
        "Informații publice despre imobil din planurile urbanistice în vigoare",
        "Public information on the property from the urban plans in force",
    ),
    "uat": ("UAT", "Municipality"),
    "generated": ("Generat la", "Generated on"),
    "asof": ("Situația la data", "Status on"),
    "parcel": ("1. Imobilul", "1. The property"),
    "cadastral": ("Număr cadastral", "Cadastral number"),
    "landbook": ("Carte funciară", "Land book"),
    "measured": ("Suprafață măsurată", "Measured area"),
    "legal": ("Suprafață din acte", "Legal area"),
    "address": ("Adresă", "Address"),
    "use": ("Categorie de folosință", "Use category"),
    "intravilan": ("În intravilan", "Inside the built-up area"),
    "inuat": ("În UAT", "Inside the municipality"),
    "verdict": ("Situație", "Status"),
    "map": ("2. Plan de încadrare", "2. Location map"),
    "zones": ("3. Reglementări urbanistice (UTR)", "3. Zoning rules (UTR)"),
    "nozones": ("Nicio zonă a unui plan în vigoare.", "No zone of a plan in force."),
    "plan": ("Plan", "Plan"),
    "share": ("Pondere din imobil", "Share of the property"),
    "overridden": ("Înlocuită aici de", "Replaced here by"),
    "function": ("Funcțiune", "Function"),
    "pot": ("POT maxim", "Max. site coverage (POT)"),
    "cut": ("CUT maxim", "Max. floor area ratio (CUT)"),
    "height": ("Înălțime maximă", "Max. height"),
    "regime": ("Regim de înălțime", "Height regime"),
    "minplot": ("Suprafață minimă a parcelei", "Min. plot area"),
    "frontage": ("Front minim la stradă", "Min. frontage"),
    "allowed": ("Utilizări admise", "Allowed uses"),
    "conditional": ("Utilizări admise cu condiții", "Conditional uses"),
    "forbidden": ("Utilizări interzise", "Forbidden uses"),
    "rules": ("Prevederi", "Provisions"),
    "restrictions": ("4. Restricții", "4. Restrictions"),
    "norestrictions": ("Nicio restricție cunoscută.", "No known restriction."),
    "source": ("Sursă legală", "Legal source"),
    "affected": ("Suprafață afectată", "Area affected"),
    "nearby": ("În apropiere, la", "Nearby, at"),
    "acts": ("5. Acte emise pentru imobil", "5. Acts issued for the property"),
    "noacts": ("Niciun act public înregistrat.", "No public act on record."),
    "validuntil": ("valabil până la", "valid until"),
    "provenance": ("6. Proveniența datelor", "6. Data provenance"),
    "versions": ("Versiuni ale datelor", "Data versions"),
    "importrun": ("Import", "Import"),
    "computed": ("Calculat la", "Computed at"),
    "online": ("Situația actuală online", "Current status online"),
    "disclaimer": ("Notă", "Note"),
    "yes": ("da", "yes"),
    "no": ("nu", "no"),
    "partly": ("parțial", "partly"),
    "unknown": ("necunoscut", "unknown"),
    "verdict.ok": ("fără probleme", "no problems"),
    "verdict.attention": ("necesită atenție", "needs attention"),
    "verdict.blocked": ("blocat", "blocked"),
    "kind.CU": ("Certificat de urbanism", "Urbanism certificate"),
    "kind.AC": ("Autorizație de construire", "Building permit"),
    "kind.AD": ("Autorizație de desființare", "Demolition permit"),
    "status.issued": ("emis", "issued"),
    "status.extended": ("prelungit", "extended"),
    "status.expired": ("expirat", "expired"),
    "status.cancelled": ("anulat", "cancelled"),
    "status.completed": ("finalizat", "completed"),
    "legend.subject": ("imobilul", "the property"),
    "legend.parcels": ("alte imobile", "other parcels"),
    "legend.buildings": ("construcții", "buildings"),
    "legend.restrictions": ("restricții", "restrictions"),
    "legend.intravilan": ("limita intravilanului", "built-up area boundary"),
    "north": ("Nord (grid Stereo 70)", "North (Stereo 70 grid)"),
    "synthetic": (
        "Date sintetice (municipiu demonstrativ) – nu descriu imobile reale.",
        "Synthetic data (demonstration municipality) – not real properties.",
    ),
    "page": ("Pagina", "Page"),
}


def label(key: str, lang: str) -> str:
    pair = LABELS[key]
    return pair[1] if lang == "en" else pair[0]


def label_or(key: str, value: Any, lang: str) -> str:
    """The translation of a coded value (``kind.AC``), or the value itself."""
    return label(f"{key}.{value}", lang) if f"{key}.{value}" in LABELS else str(value)


def font_paths() -> dict[str, Path]:
    """The regular and bold DejaVu Sans files, or a clear error saying what to install."""
    for folder in FONT_DIRS:
        found = {style: folder / name for style, name in FONT_FILES.items()}
        if all(path.is_file() for path in found.values()):
            return found
    raise FontMissing(
        "the extract needs the DejaVu Sans font: install the Debian package fonts-dejavu-core"
    )


class _ExtractPDF(FPDF):
    def __init__(self, uat_name: str, lang: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.uat_name = uat_name
        self.lang = lang

    def footer(self) -> None:
        self.set_y(-11)
        self.set_font("DejaVu", size=7)
        self.set_text_color(90, 90, 90)
        self.cell(
            0,
            5,
            f"urbangis · {self.uat_name} · {label('page', self.lang)} {self.page_no()}/{{nb}}",
            align="C",
        )


def build_extract(
    status: dict[str, Any],
    geometry: ExtractMap,
    context: ExtractContext,
    picture: MapPicture | None = None,
) -> bytes:
    """The extract of the (single) imobil of a parcel status answer, as PDF bytes."""
    lang = context.lang
    uat = status.get("uat") or {}
    pdf = _ExtractPDF(str(uat.get("name") or ""), lang)
    for style, path in font_paths().items():
        pdf.add_font("DejaVu", style=style, fname=str(path))
    number = str(status["parcels"][0]["cadastral_number"])
    pdf.set_title(f"{label('title', lang)} – {number}")
    pdf.set_author(pdf.uat_name)
    pdf.set_creator("urbangis")
    pdf.set_lang("en" if lang == "en" else "ro")
    pdf.set_creation_date(context.generated_at)
    pdf.set_margins(PAGE_MARGIN, PAGE_MARGIN, PAGE_MARGIN)
    pdf.set_auto_page_break(True, margin=16)
    pdf.add_page()
    _header(pdf, status, context)
    _parcel_section(pdf, status, lang)
    _map_section(pdf, geometry, lang, picture)
    _zones_section(pdf, status.get("zones") or [], lang)
    _restrictions_section(pdf, status.get("restrictions") or [], lang)
    _acts_section(pdf, status.get("acts") or [], lang)
    _provenance_section(pdf, status, lang)
    return bytes(pdf.output())


# -- text sections ---------------------------------------------------------------------------
def _header(pdf: FPDF, status: dict[str, Any], context: ExtractContext) -> None:
    lang = context.lang
    uat = status.get("uat") or {}
    pdf.set_font("DejaVu", "B", 14)
    pdf.cell(0, 8, label("title", lang), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("DejaVu", size=9)
    pdf.cell(0, 5, label("subtitle", lang), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.cell(
        0,
        5,
        f"{label('uat', lang)}: {uat.get('name')} (SIRUTA {uat.get('siruta')}) · "
        f"{label('asof', lang)}: {status.get('valid_for', '')} · "
        f"{label('generated', lang)}: {context.generated_at:%Y-%m-%d %H:%M %Z}".rstrip(),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    if context.synthetic:
        pdf.set_text_color(160, 40, 40)
        pdf.cell(0, 5, label("synthetic", lang), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_text_color(0, 0, 0)
    pdf.ln(2)


def _heading(pdf: FPDF, text: str) -> None:
    if pdf.get_y() > pdf.h - 40:
        pdf.add_page()
    pdf.ln(1.5)
    pdf.set_font("DejaVu", "B", 11)
    pdf.set_fill_color(230, 236, 242)
    pdf.cell(0, 6.5, text, fill=True, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1)


def _pairs(pdf: FPDF, rows: Iterable[tuple[str, Any]]) -> None:
    """Label / value rows; empty values show as a dash, never as ``None``."""
    pdf.set_font("DejaVu", size=9)
    with pdf.table(
        col_widths=(58, 122),
        first_row_as_headings=False,
        text_align="LEFT",
        borders_layout="HORIZONTAL_LINES",
        line_height=4.8,
        padding=(0.6, 1.2, 0.6, 1.2),
    ) as table:
        for name, value in rows:
            row = table.row()
            row.cell(name)
            row.cell(_text(value))


def _text(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "–"
    if isinstance(value, list | tuple):
        return "; ".join(str(item) for item in value)
    if isinstance(value, float):
        return f"{value:,.2f}".replace(",", " ")
    return str(value)


def _area(value: Any) -> str | None:
    return None if value is None else f"{float(value):,.2f} m²".replace(",", " ")


def _inside(part: dict[str, Any] | None, lang: str) -> str:
    """``inside``/``partly``/``outside``/``unknown`` of the status, in words."""
    part = part or {}
    inside = part.get("inside")
    if inside == "inside":
        return label("yes", lang)
    if inside == "outside":
        return label("no", lang)
    if inside == "partly":
        return f"{label('partly', lang)} ({float(part.get('share') or 0) * 100:.0f} %)"
    return label("unknown", lang)


def _parcel_section(pdf: FPDF, status: dict[str, Any], lang: str) -> None:
    parcel = status["parcels"][0]
    _heading(pdf, label("parcel", lang))
    verdict = status.get("verdict")
    _pairs(
        pdf,
        [
            (label("cadastral", lang), parcel.get("cadastral_number")),
            (label("landbook", lang), parcel.get("land_book_number")),
            (label("measured", lang), _area(parcel.get("measured_area"))),
            (label("legal", lang), _area(parcel.get("legal_area"))),
            (label("address", lang), parcel.get("address")),
            (label("use", lang), parcel.get("use_category")),
            (label("inuat", lang), _inside(status.get("uat"), lang)),
            (label("intravilan", lang), _inside(status.get("intravilan"), lang)),
            (
                label("verdict", lang),
                [label_or("verdict", verdict, lang)]
                + [r.get("message") for r in status.get("reasons") or []],
            ),
        ],
    )


def _zones_section(pdf: FPDF, zones: Sequence[dict[str, Any]], lang: str) -> None:
    _heading(pdf, label("zones", lang))
    if not zones:
        _paragraph(pdf, label("nozones", lang))
        return
    for zone in zones:
        plan = zone.get("plan") or {}
        rules = zone.get("rules") or {}
        pdf.set_font("DejaVu", "B", 10)
        pdf.multi_cell(
            0, 5.5, f"UTR {zone.get('utr_code')} – {zone.get('name') or ''}".strip(" –"),
            new_x=XPos.LMARGIN, new_y=YPos.NEXT,
        )  # fmt: skip
        hcl = f"HCL {plan.get('hcl_number')}" if plan.get("hcl_number") else ""
        if plan.get("hcl_date"):
            hcl += f" / {plan.get('hcl_date')}"
        rows: list[tuple[str, Any]] = [
            (label("plan", lang), ", ".join(p for p in (plan.get("title"), hcl) if p)),
            (label("share", lang), f"{float(zone.get('share') or 0) * 100:.1f} %"),
        ]
        if zone.get("overridden_by"):
            rows.append((label("overridden", lang), zone["overridden_by"]))
        rows += [
            (label("function", lang), zone.get("function")),
            (label("pot", lang), _unit(rules.get("pot_max"), " %")),
            (label("cut", lang), _unit(rules.get("cut_max"), "")),
            (label("height", lang), _unit(rules.get("height_max_m"), " m")),
            (label("regime", lang), rules.get("height_regime")),
            (label("minplot", lang), _area(rules.get("min_plot_area"))),
            (label("frontage", lang), _unit(rules.get("min_frontage"), " m")),
            (label("allowed", lang), rules.get("allowed_uses")),
            (label("conditional", lang), rules.get("conditional_uses")),
            (label("forbidden", lang), rules.get("forbidden_uses")),
            (label("rules", lang), rules.get("rules_text")),
        ]
        _pairs(pdf, rows)
        pdf.ln(1.5)


def _unit(value: Any, unit: str) -> str | None:
    if value is None:
        return None
    number = float(value)
    text = f"{number:g}" if number == round(number, 2) else f"{number:.2f}"
    return text + unit


def _restrictions_section(pdf: FPDF, restrictions: Sequence[dict[str, Any]], lang: str) -> None:
    """Restrictions on the property first, then those within the status's nearby distance."""
    _heading(pdf, label("restrictions", lang))
    if not restrictions:
        _paragraph(pdf, label("norestrictions", lang))
        return
    for item in restrictions:
        pdf.set_font("DejaVu", "B", 9)
        pdf.multi_cell(0, 5, str(item.get("name")), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if item.get("intersects"):
            where = (label("affected", lang), _area(item.get("area")))
        else:
            where = (label("nearby", lang), _unit(item.get("distance"), " m"))
        _pairs(pdf, [(label("source", lang), item.get("legal_source")), where])


def _acts_section(pdf: FPDF, acts: Sequence[dict[str, Any]], lang: str) -> None:
    _heading(pdf, label("acts", lang))
    if not acts:
        _paragraph(pdf, label("noacts", lang))
        return
    for act in acts:
        parts = [
            f"{label_or('kind', act.get('kind'), lang)} {act.get('number')}",
            act.get("issued_on"),
            label_or("status", act.get("status"), lang),
            act.get("purpose"),
        ]
        if act.get("valid_until"):
            parts.append(f"{label('validuntil', lang)} {act['valid_until']}")
        _paragraph(pdf, " · ".join(str(p) for p in parts if p))


def _provenance_section(pdf: FPDF, status: dict[str, Any], lang: str) -> None:
    if pdf.get_y() > pdf.h - 75:
        pdf.add_page()
    _heading(pdf, label("provenance", lang))
    provenance = status.get("provenance") or {}
    versions = provenance.get("data_versions") or {}
    runs = provenance.get("import_runs") or []
    _pairs(
        pdf,
        [
            (label("asof", lang), status.get("valid_for")),
            (label("computed", lang), provenance.get("computed_at")),
            (
                label("versions", lang),
                ", ".join(f"{name} v{v.get('version')}" for name, v in sorted(versions.items())),
            ),
            (
                label("importrun", lang),
                [
                    " ".join(str(run[k]) for k in ("id", "kind", "finished_at") if run.get(k))
                    for run in runs
                ],
            ),
        ],
    )
    pdf.ln(2)
    top = pdf.get_y()
    size = 32.0
    status_url = str(status.get("map_url") or "")
    _qr(pdf, status_url, pdf.l_margin, top, size)
    pdf.set_xy(pdf.l_margin + size + 4, top)
    pdf.set_font("DejaVu", "B", 9)
    pdf.cell(0, 5, label("online", lang), new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font("DejaVu", size=8)
    pdf.multi_cell(0, 4, status_url, new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.ln(1)
    pdf.set_font("DejaVu", "B", 9)
    pdf.cell(0, 5, label("disclaimer", lang), new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font("DejaVu", size=8)
    pdf.multi_cell(0, 4, str(status.get("disclaimer") or ""), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(max(pdf.get_y(), top + size + 2))


def _paragraph(pdf: FPDF, text: str) -> None:
    pdf.set_font("DejaVu", size=9)
    pdf.multi_cell(0, 5, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _qr(pdf: FPDF, url: str, x: float, y: float, size: float) -> None:
    """The QR code drawn as filled squares: vector, so it scans at any print quality."""
    code = segno.make(url, error="m", micro=False)
    rows = [list(row) for row in code.matrix_iter(scale=1, border=2)]
    cell = size / len(rows)
    pdf.set_fill_color(0, 0, 0)
    for j, row in enumerate(rows):
        for i, dark in enumerate(row):
            if dark:
                pdf.rect(x + i * cell, y + j * cell, cell + 0.01, cell + 0.01, style="F")


# -- the map -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Frame:
    """Maps storage-CRS metres to page millimetres (north up)."""

    x: float
    y: float
    window: tuple[float, float, float, float]

    @property
    def scale(self) -> float:  # millimetres per metre
        return MAP_W / (self.window[2] - self.window[0])

    def point(self, east: float, north: float) -> tuple[float, float]:
        return (
            self.x + (east - self.window[0]) * self.scale,
            self.y + (self.window[3] - north) * self.scale,
        )


def _map_section(pdf: FPDF, geometry: ExtractMap, lang: str, picture: MapPicture | None) -> None:
    if pdf.get_y() + MAP_H + 22 > pdf.h - 16:
        pdf.add_page()
    _heading(pdf, label("map", lang))
    frame = _Frame(pdf.l_margin, pdf.get_y() + 1, geometry.window)
    with pdf.rect_clip(frame.x, frame.y, MAP_W, MAP_H):
        if picture is not None:
            pdf.image(io.BytesIO(picture.png), x=frame.x, y=frame.y, w=MAP_W, h=MAP_H)
        else:
            _vector_layers(pdf, frame, geometry)
        for subject in geometry.subject:
            _draw(
                pdf, frame, subject.geom, fill="#1f6fd1", opacity=0.18, stroke="#0b3d91", width=0.8
            )
        _labels(pdf, frame, geometry.subject, size=8, colour=(11, 61, 145), prefix="", bold=True)
    pdf.set_draw_color(0, 0, 0)
    pdf.set_line_width(0.3)
    pdf.rect(frame.x, frame.y, MAP_W, MAP_H)
    _scale_bar(pdf, frame)
    _north_arrow(pdf, frame, lang)
    pdf.set_y(frame.y + MAP_H + 1.5)
    _map_legend(pdf, geometry, lang, picture)


def _vector_layers(pdf: FPDF, frame: _Frame, geometry: ExtractMap) -> None:
    """The surroundings drawn as paths, when there is no WMS picture."""
    for zone in geometry.zones:
        _draw(
            pdf,
            frame,
            zone.geom,
            fill=zone_colour(zone.kind, zone.label),
            opacity=0.45,
            stroke="#7a7a7a",
            width=0.15,
        )
    for item in geometry.restrictions:
        _draw(
            pdf,
            frame,
            item.geom,
            fill="#c62828",
            opacity=0.10,
            stroke="#c62828",
            width=0.35,
            dash=(1.6, 0.9),
        )
    for building in geometry.buildings:
        _draw(pdf, frame, building.geom, fill="#8c8c8c", opacity=0.8, stroke="#505050", width=0.1)
    for parcel in geometry.parcels:
        _draw(pdf, frame, parcel.geom, fill=None, opacity=1, stroke="#3c3c3c", width=0.15)
    for line in geometry.intravilan:
        _draw(
            pdf,
            frame,
            line.geom,
            fill=None,
            opacity=1,
            stroke="#8c5a00",
            width=0.5,
            dash=(3, 1.2),
        )
    _labels(pdf, frame, geometry.zones, size=7, colour=(60, 20, 20), prefix="")
    _labels(pdf, frame, geometry.parcels, size=5, colour=(40, 40, 40), prefix="", min_mm2=60)


def _rings(geom: BaseGeometry) -> list[list[tuple[float, ...]]]:
    if isinstance(geom, Polygon):
        return [list(geom.exterior.coords), *(list(r.coords) for r in geom.interiors)]
    if isinstance(geom, LineString):
        return [list(geom.coords)]
    parts: Iterable[BaseGeometry] = getattr(geom, "geoms", ())
    return [ring for part in parts for ring in _rings(part)]


def _draw(
    pdf: FPDF,
    frame: _Frame,
    geom: BaseGeometry,
    *,
    fill: str | None,
    opacity: float,
    stroke: str,
    width: float,
    dash: tuple[float, float] | None = None,
) -> None:
    rings = [ring for ring in _rings(geom) if len(ring) >= 2]
    if not rings:
        return
    closed = isinstance(geom, Polygon | MultiPolygon) or (
        not isinstance(geom, LineString | MultiLineString) and fill is not None
    )
    with pdf.new_path(paint_rule=PathPaintRule.AUTO) as path:
        path.style.stroke_color = _rgb(stroke)
        path.style.stroke_width = width
        if fill is not None and closed:
            path.style.fill_color = _rgb(fill)
            path.style.fill_opacity = opacity
            path.style.paint_rule = PathPaintRule.STROKE_FILL_EVENODD
        else:
            path.style.fill_color = None
            path.style.paint_rule = PathPaintRule.STROKE
        if dash:
            path.style.stroke_dash_pattern = dash
        for ring in rings:
            first, *rest = (frame.point(xy[0], xy[1]) for xy in ring)
            path.move_to(*first)
            for point in rest:
                path.line_to(*point)
            if closed:
                path.close()


def _rgb(hex_colour: str) -> DeviceRGB:
    value = hex_colour.lstrip("#")
    r, g, b = (int(value[i : i + 2], 16) / 255 for i in (0, 2, 4))
    return DeviceRGB(r, g, b)


def _labels(
    pdf: FPDF,
    frame: _Frame,
    features: Sequence[MapFeature],
    *,
    size: float,
    colour: tuple[int, int, int],
    prefix: str,
    min_mm2: float = 0.0,
    bold: bool = False,
) -> None:
    pdf.set_font("DejaVu", "B" if bold else "", size)
    pdf.set_text_color(*colour)
    for feature in features:
        if not feature.label or feature.geom.is_empty:
            continue
        if min_mm2 and feature.geom.area * frame.scale**2 < min_mm2:
            continue
        point = feature.geom.representative_point()
        x, y = frame.point(point.x, point.y)
        text = prefix + feature.label
        width = pdf.get_string_width(text)
        if frame.x + 1 < x - width / 2 and x + width / 2 < frame.x + MAP_W - 1:
            pdf.text(x - width / 2, y + size * 0.12, text)
    pdf.set_text_color(0, 0, 0)


def _scale_bar(pdf: FPDF, frame: _Frame) -> None:
    """A bar of a round length near a fifth of the map's width, bottom left."""
    target = (frame.window[2] - frame.window[0]) / 5
    magnitude = 10 ** math.floor(math.log10(target))
    length = max(step * magnitude for step in (1, 2, 2.5, 5) if step * magnitude <= target)
    width_mm = length * frame.scale
    x, y = frame.x + 4, frame.y + MAP_H - 5
    pdf.set_fill_color(255, 255, 255)
    pdf.rect(x - 1.5, y - 5, width_mm + 14, 7.5, style="F")
    pdf.set_fill_color(0, 0, 0)
    pdf.rect(x, y, width_mm / 2, 1.2, style="F")
    pdf.set_draw_color(0, 0, 0)
    pdf.set_line_width(0.2)
    pdf.rect(x, y, width_mm, 1.2)
    pdf.set_font("DejaVu", size=6.5)
    pdf.text(x, y - 1, "0")
    pdf.text(x + width_mm - 2, y - 1, f"{length:g} m")
    scale_denominator = round(1000 / frame.scale, -1)
    pdf.text(x + width_mm + 2, y + 1.2, f"1:{scale_denominator:,.0f}".replace(",", " "))


def _north_arrow(pdf: FPDF, frame: _Frame, lang: str) -> None:
    x, y = frame.x + MAP_W - 8, frame.y + 4
    pdf.set_fill_color(255, 255, 255)
    pdf.rect(x - 4, y - 1.5, 8, 13, style="F")
    pdf.set_fill_color(0, 0, 0)
    pdf.polygon([(x, y), (x - 2.5, y + 7), (x, y + 5.5), (x + 2.5, y + 7)], style="F")
    pdf.set_font("DejaVu", "B", 7)
    pdf.text(x - 1.2, y + 10.5, "N")


# The vector drawing's colours, by layer: (colour, filled).
VECTOR_COLOURS = {
    "parcels": ("#3c3c3c", False),
    "buildings": ("#8c8c8c", True),
    "restrictions": ("#c62828", False),
    "intravilan": ("#8c5a00", False),
}


def _map_legend(pdf: FPDF, geometry: ExtractMap, lang: str, picture: MapPicture | None) -> None:
    """The subject, the layers in the map with their colours, the UTRs in the window."""
    pdf.set_font("DejaVu", size=7)
    colours = picture.colours if picture is not None else VECTOR_COLOURS
    entries: list[tuple[str, str, bool]] = [("#1f6fd1", label("legend.subject", lang), True)]
    entries.extend(
        (colour, label(f"legend.{name}", lang), filled)
        for name, (colour, filled) in colours.items()
        if name in VECTOR_COLOURS
    )
    seen: dict[str, str] = {}
    for zone in geometry.zones:
        if zone.label and zone.label not in seen:
            seen[zone.label] = zone_colour(zone.kind, zone.label)
    entries.extend((colour, f"UTR {code}", True) for code, colour in sorted(seen.items()))
    x = pdf.l_margin
    y = pdf.get_y() + 1
    for colour, text, filled in entries:
        width = pdf.get_string_width(text) + 7
        if x + width > pdf.l_margin + MAP_W:
            x, y = pdf.l_margin, y + 4.5
        r, g, b = (int(colour.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4))
        pdf.set_draw_color(r, g, b)
        pdf.set_fill_color(r, g, b)
        pdf.rect(x, y, 3.5, 2.8, style="DF" if filled else "D")
        pdf.text(x + 4.5, y + 2.5, text)
        x += width + 2
    pdf.set_draw_color(0, 0, 0)
    pdf.set_y(y + 5)
