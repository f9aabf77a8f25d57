"""Map styles of the catalog layers, as Mapnik XML, and the legends drawn from them.

Every style is a list of rules (title, optional filter, symbolizers, scale range): the
renderer loads them into Mapnik once per process and the legend draws one row per
rule, so the legend cannot disagree with the map. Zones are coloured by the family of
their function (``ZONE_FAMILIES``, the palette the web map and the extract use too; the
UTR code's letter when the function says nothing), and labelled with the code; parcels
carry their cadastral number at large scales. The fields a style reads are public ones,
so a rendered image never carries more than the public may see.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from layers.catalog import LayerDefinition

FONT = "DejaVu Sans Book"
DEFAULT_STYLE = "default"
OUTLINE_STYLE = "outline"
# Parcels are labelled from 1:2500, zones from 1:25000, addresses from 1:2000.
PARCEL_LABELS_SCALE = 2_500.0
ZONE_LABELS_SCALE = 25_000.0
ADDRESS_LABELS_SCALE = 2_000.0


@dataclass(frozen=True)
class ZoneFamily:
    """A family of zone functions, with the one colour the web map, the WMS and the
    extract give it.

    ``words`` is searched, ignoring case and Romanian diacritics, in the zone's function
    text (the regulation's "funcțiune dominantă"); ``codes`` is matched against the whole
    UTR code of a zone whose function names no family (plans often carry only the code,
    whose first letter is the function by convention: L, M, C, A, IS, V, T; Cluj-Napoca
    prefixes protected areas with ``ZCP_`` and some units with ``U``).
    """

    key: str
    title: str
    colour: str
    words: str
    codes: str = ""


_PREFIX = "(?:ZCP_|U)?"
ZONE_FAMILIES = (
    ZoneFamily(
        "transport",
        "Transport, căi de comunicație",
        "#9a9a9a",
        "transport|c[aă]i de|circula|str[aă]z|strad|ferovia|aeroport|road|rail",
        f"{_PREFIX}T.*",
    ),
    ZoneFamily("central", "Zonă centrală", "#d1495b", "centr", f"{_PREFIX}C.*"),
    ZoneFamily("residential", "Locuire", "#f2c14e", "locu|residen|housing", f"{_PREFIX}L.*"),
    ZoneFamily("mixed", "Funcțiuni mixte", "#e8845c", "mixt|mixed", f"{_PREFIX}M.*"),
    ZoneFamily("agricultural", "Agricol", "#c7df8f", "agric|farm"),
    ZoneFamily(
        "economic",
        "Activități economice",
        "#8e6bbf",
        "industr|produc|econom|depozit|logist",
        f"{_PREFIX}A.*|UI.*",
    ),
    ZoneFamily(
        "services",
        "Instituții și servicii",
        "#cf5c9e",
        "servic|comer|institu|echipam|public|social|cultur|s[aă]n[aă]t|[iî]nv[aă][tț]|educat"
        "|health",
        "(?:ZCP_)?I.*",
    ),
    ZoneFamily(
        "green",
        "Spații verzi, sport, agrement",
        "#5aa75a",
        "verde|verzi|green|parc|park|agrement|sport|recrea|p[aă]dur|forest",
        f"{_PREFIX}V.*",
    ),
    ZoneFamily("water", "Ape", "#6fa8dc", "^ape|hidro|luciu|water"),
    ZoneFamily(
        "technical",
        "Gospodărie comunală, tehnico-edilitare",
        "#8a8a5c",
        "gospod|tehnic|edilit|cimitir|utilit|cemeter",
        f"{_PREFIX}G.*",
    ),
)
OTHER_ZONES = ZoneFamily("other", "Alte funcțiuni", "#b0b0b0", "")


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def zone_family(function: str | None, utr_code: str | None = None) -> ZoneFamily:
    """The family of a zone: by its function's words, else by its UTR code."""
    if function:
        text = _plain(function)
        for family in ZONE_FAMILIES:
            if re.search(family.words, text):
                return family
    for family in ZONE_FAMILIES:
        if family.codes and utr_code and re.fullmatch(family.codes, utr_code):
            return family
    return OTHER_ZONES


@dataclass(frozen=True)
class Rule:
    """One legend row: a filter (Mapnik expression), symbolizers and a scale range."""

    title: str
    symbolizers: str
    filter: str | None = None
    else_filter: bool = False
    max_scale: float | None = None
    legend: bool = True


@dataclass(frozen=True)
class LayerStyle:
    """A named WMS style of a layer; ``fields`` are the attributes its rules read."""

    name: str
    title: str
    rules: tuple[Rule, ...]
    fields: tuple[str, ...] = ()


def _fill(color: str, opacity: float = 0.65) -> str:
    return f'<PolygonSymbolizer fill="{color}" fill-opacity="{opacity}" gamma="0.7"/>'


def _line(color: str, width: float, dash: str | None = None) -> str:
    dashes = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<LineSymbolizer stroke="{color}" stroke-width="{width}"{dashes}/>'


def _marker(color: str, radius: float) -> str:
    size = radius * 2
    return (
        f'<MarkersSymbolizer fill="{color}" width="{size}" height="{size}" '
        'stroke="#ffffff" stroke-width="0.5" allow-overlap="true"/>'
    )


def _label(field: str, color: str, size: float, placement: str = "interior") -> str:
    return (
        f'<TextSymbolizer face-name="{FONT}" size="{size}" fill="{color}" '
        f'halo-fill="#ffffff" halo-radius="1.2" placement="{placement}" '
        f'wrap-width="80" avoid-edges="false">[{field}]</TextSymbolizer>'
    )


def _simple(layer: LayerDefinition) -> tuple[Rule, ...]:
    """The catalog's ``style`` (fill, stroke, width, radius) as one rule."""
    style: Mapping[str, object] = layer.style
    fill = str(style.get("fill", "#9ecae1"))
    stroke = str(style.get("stroke", "#333333"))
    width = float(str(style.get("width", 1.0)))
    if layer.geometry_type.endswith("Point"):
        return (Rule(layer.title, _marker(fill, float(str(style.get("radius", 3))))),)
    parts = ("" if fill == "none" else _fill(fill)) + _line(stroke, width)
    return (Rule(layer.title, parts),)


def _outline(layer: LayerDefinition) -> tuple[Rule, ...]:
    stroke = str(layer.style.get("stroke", "#333333"))
    if layer.geometry_type.endswith("Point"):
        return (Rule(layer.title, _marker(stroke, 2.0)),)
    return (Rule(layer.title, _line(stroke, 1.2)),)


def _zones() -> tuple[Rule, ...]:
    """One rule per family; each filter is exclusive, as ``zone_family`` decides."""
    words = [f"[function].match('(?i).*(?:{f.words}).*')" for f in ZONE_FAMILIES]
    codes = [f"[utr_code].match('{f.codes}')" if f.codes else "false" for f in ZONE_FAMILIES]
    no_words = f"not ({' or '.join(words)})"
    rules = []
    for index, family in enumerate(ZONE_FAMILIES):
        by_words = " and ".join([words[index], *(f"not {w}" for w in words[:index])])
        by_code = " and ".join([no_words, codes[index], *(f"not {c}" for c in codes[:index])])
        rules.append(
            Rule(
                family.title,
                _fill(family.colour) + _line("#3182bd", 0.8),
                filter=f"({by_words}) or ({by_code})",
            )
        )
    other = f"{no_words} and not ({' or '.join(codes)})"
    rules.append(Rule(OTHER_ZONES.title, _fill(OTHER_ZONES.colour) + _line("#3182bd", 0.8), other))
    # "others" is spelled out because the label rule below always matches, which would
    # silence an ElseFilter.
    rules.append(
        Rule(
            "Cod UTR",
            _label("utr_code", "#08306b", 11),
            max_scale=ZONE_LABELS_SCALE,
            legend=False,
        )
    )
    return tuple(rules)


def styles_for(layer: LayerDefinition) -> tuple[LayerStyle, ...]:
    """The layer's WMS styles; the first is the default."""
    if layer.id == "zones":
        default = LayerStyle(
            DEFAULT_STYLE, "Zone colorate după funcțiune", _zones(), ("utr_code", "function")
        )
    elif layer.id == "parcels":
        numbers = Rule(
            "Număr cadastral",
            _label("cadastral_number", "#3b2a14", 9),
            max_scale=PARCEL_LABELS_SCALE,
            legend=False,
        )
        default = LayerStyle(
            DEFAULT_STYLE, layer.title, (*_simple(layer), numbers), ("cadastral_number",)
        )
        # Over zones or an orthophoto: the limits and the numbers, no fill.
        outline = LayerStyle(
            OUTLINE_STYLE,
            f"{layer.title} (contur)",
            (*_outline(layer), numbers),
            ("cadastral_number",),
        )
        return (default, outline)
    elif layer.id == "addresses":
        rules = (
            *_simple(layer),
            Rule(
                "Număr poștal",
                _label("number", "#252525", 8, "point").replace(
                    "avoid-edges", 'dy="-6" avoid-edges'
                ),
                max_scale=ADDRESS_LABELS_SCALE,
                legend=False,
            ),
        )
        default = LayerStyle(DEFAULT_STYLE, layer.title, rules, ("number",))
    else:
        default = LayerStyle(DEFAULT_STYLE, layer.title, _simple(layer))
    outline = LayerStyle(OUTLINE_STYLE, f"{layer.title} (contur)", _outline(layer))
    return (default, outline)


def find_style(layer: LayerDefinition, name: str | None) -> LayerStyle | None:
    """The named style (empty or ``default`` → the first); None when it does not exist."""
    styles = styles_for(layer)
    if not name or name.lower() == DEFAULT_STYLE:
        return styles[0]
    for style in styles:
        if style.name == name:
            return style
    return None


def style_name(layer_id: str, style: LayerStyle) -> str:
    return f"{layer_id}:{style.name}"


def style_xml(name: str, style: LayerStyle, *, legend: bool = False) -> str:
    """A Mapnik ``<Style>``; ``legend`` keeps only the rows a legend shows, unfiltered."""
    rules = []
    for rule in style.rules:
        if legend and not rule.legend:
            continue
        parts = ["<Rule>"]
        if rule.max_scale is not None and not legend:
            parts.append(f"<MaxScaleDenominator>{rule.max_scale}</MaxScaleDenominator>")
        if rule.filter and not legend:
            parts.append(f"<Filter>{escape(rule.filter)}</Filter>")
        if rule.else_filter and not legend:
            parts.append("<ElseFilter/>")
        parts.append(rule.symbolizers)
        parts.append("</Rule>")
        rules.append("".join(parts))
    return f"<Style name={quoteattr(name)}>{''.join(rules)}</Style>"


def legend_rules(style: LayerStyle) -> tuple[Rule, ...]:
    return tuple(rule for rule in style.rules if rule.legend)
