"""FES 2.0 / Filter 1.1 parsing and compilation without a database: PropertyIsNil,
resource ids inside logical operators, GML's own properties, PropertyIsNull on the
geometry and GML 2 boxes, compiled to SQL on a catalog layer (values bound, names only
from the catalog).
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from pygeofilter import ast
from sqlalchemy.dialects import postgresql

from gis_core.errors import InvalidParameter
from layers import fes
from layers.catalog import Field, LayerDefinition

FES = 'xmlns:fes="http://www.opengis.net/fes/2.0"'


def layer() -> LayerDefinition:
    t = sa.table("thing", sa.column("id"), sa.column("geom"), sa.column("name")).alias("t")
    return LayerDefinition(
        id="things",
        title="things",
        source=t,
        main=t,
        geometry_type="Polygon",
        storage_srid=4326,
        etrs89_column=None,
        fields=(Field("name", t.c.name),),
    )


def ids_of(raw: tuple[str, ...]) -> Any:
    keys = [int(r.split(".")[1]) for r in raw if r.startswith("things.")]
    return fes.resource_condition(layer(), keys)


def sql(text: str, resolve: Any = ids_of) -> str:
    parsed = fes.parse_filter(text, "2.0.0")
    assert isinstance(parsed, fes.ParsedFilter)
    condition = fes.compile_filter(
        parsed, layer(), "public", None, lambda name: (4326, False), 4326, resolve
    )
    compiled = condition.compile(
        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
    )
    return " ".join(str(compiled).split())


def test_property_is_nil_is_parsed_and_never_true() -> None:
    text = (
        f"<fes:Filter {FES}><fes:PropertyIsNil><fes:ValueReference>name"
        "</fes:ValueReference></fes:PropertyIsNil></fes:Filter>"
    )
    parsed = fes.parse_filter(text, "2.0.0")
    assert isinstance(parsed, fes.ParsedFilter) and isinstance(parsed.tree, fes.IsNil)
    assert sql(text) == "false"
    assert (
        sql(
            text.replace("<fes:PropertyIsNil>", "<fes:Not><fes:PropertyIsNil>").replace(
                "</fes:PropertyIsNil>", "</fes:PropertyIsNil></fes:Not>"
            )
        )
        == "true"
    )


def test_property_is_nil_checks_the_property() -> None:
    text = (
        f"<fes:Filter {FES}><fes:PropertyIsNil><fes:ValueReference>secret"
        "</fes:ValueReference></fes:PropertyIsNil></fes:Filter>"
    )
    with pytest.raises(InvalidParameter):
        sql(text)


@pytest.mark.parametrize("operator", ["Not", "Or", "And"])
def test_resource_ids_inside_logical_operators(operator: str) -> None:
    other = (
        "<fes:PropertyIsEqualTo><fes:ValueReference>name</fes:ValueReference>"
        "<fes:Literal>x</fes:Literal></fes:PropertyIsEqualTo>"
    )
    inner = "<fes:ResourceId rid='things.7'/>" + ("" if operator == "Not" else other)
    text = f"<fes:Filter {FES}><fes:{operator}>{inner}</fes:{operator}></fes:Filter>"
    found = sql(text)
    if operator == "Not":
        assert found == "(t.id NOT IN (7))"
    else:
        assert f"t.id IN (7) {operator.upper()} t.name = " in found


def test_nested_resource_ids_need_a_resolver() -> None:
    text = f"<fes:Filter {FES}><fes:Not><fes:ResourceId rid='things.7'/></fes:Not></fes:Filter>"
    with pytest.raises(fes.FilterError, match="resource identifiers"):
        sql(text, resolve=None)


def test_top_level_resource_ids_stay_a_list() -> None:
    text = (
        f"<fes:Filter {FES}><fes:ResourceId rid='things.1'/><fes:ResourceId rid='things.2'/>"
        "</fes:Filter>"
    )
    assert fes.parse_filter(text, "2.0.0") == fes.ResourceIds(("things.1", "things.2"))


def test_filter_11_feature_id_inside_not() -> None:
    text = (
        "<ogc:Filter xmlns:ogc='http://www.opengis.net/ogc'><ogc:Not>"
        "<ogc:FeatureId fid='things.3'/></ogc:Not></ogc:Filter>"
    )
    parsed = fes.parse_filter(text, "1.1.0")
    assert isinstance(parsed, fes.ParsedFilter)
    assert isinstance(parsed.tree, ast.Not)
    assert isinstance(parsed.tree.sub_node, fes.ResourceIdNode)


def test_gml_properties() -> None:
    name_null = (
        f"<fes:Filter {FES}><fes:PropertyIsNull><fes:ValueReference>gml:name"
        "</fes:ValueReference></fes:PropertyIsNull></fes:Filter>"
    )
    assert sql(name_null) == "NULL IS NULL"
    bounded = name_null.replace("gml:name", "gml:boundedBy")
    assert sql(bounded) == "t.geom IS NULL"
    geometry = name_null.replace("gml:name", "geom")
    assert sql(geometry) == "t.geom IS NULL"


def test_literal_without_type_and_inherited_handlers() -> None:
    text = (
        f"<fes:Filter {FES}><fes:PropertyIsEqualTo><fes:ValueReference>name"
        "</fes:ValueReference><fes:Literal>a'b</fes:Literal></fes:PropertyIsEqualTo></fes:Filter>"
    )
    assert sql(text) == "t.name = CAST('a''b' AS TEXT)"


def test_gml2_box_is_read_as_an_envelope() -> None:
    text = (
        f"<fes:Filter {FES} xmlns:gml='http://www.opengis.net/gml'><fes:BBOX>"
        "<fes:ValueReference>geom</fes:ValueReference><gml:Box srsName='EPSG:4326'>"
        "<gml:coordinates>43,-67 48,-59</gml:coordinates></gml:Box></fes:BBOX></fes:Filter>"
    )
    parsed = fes.parse_filter(text, "2.0.0")
    assert isinstance(parsed, fes.ParsedFilter)
    assert parsed.srs_names == frozenset({"EPSG:4326"})
    condition = fes.compile_filter(
        parsed, layer(), "public", None, lambda name: (4326, False), 4326, ids_of
    )
    assert "ST_Intersects(t.geom, ST_GeomFromWKB(" in str(condition.compile())
    broken = text.replace("43,-67 48,-59", "43,-67")
    with pytest.raises(fes.FilterError, match="two corners"):
        fes.parse_filter(broken, "2.0.0")
