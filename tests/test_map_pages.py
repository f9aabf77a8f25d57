"""The web map's server side on the demo municipality: page and deep links, search, the
parcel card (the API's parcel status) and the urbanism extract printing the same status,
public acts, labels, Stereo 70 read-out, draft plans for planners, the orthophoto base
layer, languages, and that no personal data leaves through any of them."""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask.testing import FlaskClient
from pypdf import PdfReader
from sqlalchemy.engine import URL

from gis_core.crs import transform_coords
from gis_core.db import create_engine
from gis_core.settings import Settings
from layers.extract_map import window_around
from permits.extract_pdf import MAP_ASPECT
from tests.browser.demo import (
    ACT_NUMBER,
    APPLICANT,
    APPLICANT_CNP,
    DRAFT_PLAN,
    DRAFT_UTR,
    OWNER,
    OWNER_CNP,
    PASSWORD,
    MapFacts,
    demo_settings,
    drop,
    map_facts,
)
from tests.conftest import _worker_suffix
from webmap.app import create_app
from webmap.map_pages import parse_deep_link

SIRUTA = 54975


@pytest.fixture(scope="module")
def settings_demo(server_url: URL) -> Iterator[Settings]:
    name = f"urbangis_map_{_worker_suffix()}"
    yield demo_settings(server_url, name)
    drop(server_url, name)


@pytest.fixture(scope="module")
def facts(settings_demo: Settings) -> MapFacts:
    return map_facts(settings_demo)


@pytest.fixture
def client(settings_demo: Settings, facts: MapFacts) -> FlaskClient:
    app = create_app(settings_demo)
    app.config.update(TESTING=True)
    return app.test_client()


def page_config(html: str) -> dict[str, Any]:
    found = re.search(r'data-config="([^"]*)"', html)
    assert found is not None
    text = found.group(1).replace("&#34;", '"').replace("&quot;", '"').replace("&amp;", "&")
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&#39;", "'")
    return dict(orjson.loads(text))


def pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


def login(client: FlaskClient, user: str) -> None:
    answer = client.post("/auth/login", json={"login": user, "password": PASSWORD})
    assert answer.status_code == 200, answer.get_data(as_text=True)


# -- deep links -------------------------------------------------------------------------
def test_deep_link_forms() -> None:
    assert parse_deep_link({"parcel": " 315814 "}) == {"parcels": ["315814"]}
    assert parse_deep_link({"parcel": "315814-C1"}) == {"parcels": ["315814"]}, "as the API does"
    assert parse_deep_link({"parcels": "1, 2;3 2"}) == {"parcels": ["1", "2", "3"]}
    assert parse_deep_link({"lon": "23.6", "lat": "46.77", "z": "18"}) == {
        "lon": 23.6,
        "lat": 46.77,
        "z": 18.0,
    }
    assert parse_deep_link({"lon": "23.6", "lat": "46.77"}) == {
        "lon": 23.6,
        "lat": 46.77,
        "z": 17.0,
    }
    assert parse_deep_link({}) is None


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("parcel=", "parcel"),
        ("parcel=12%3B%20DROP", "parcel"),
        ("parcel=1%2C2", "parcel"),
        ("parcels=" + ",".join(str(n) for n in range(51)), "parcels"),
        ("lon=23.6", "lat"),
        ("lon=abc&lat=46", "lon"),
        ("lon=23.6&lat=46.7&z=40", "z"),
        ("lon=inf&lat=46.7", "lon"),
    ],
)
def test_bad_deep_links_say_what_is_wrong(client: FlaskClient, query: str, named: str) -> None:
    response = client.get("/map?" + query)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'role="alert"' in html
    assert named in html
    assert 'id="map"' in html, "the map stays usable"


def test_page_carries_the_checked_deep_link(client: FlaskClient, facts: MapFacts) -> None:
    html = client.get(f"/map?parcels={facts.pair[0]},{facts.pair[1]}").get_data(as_text=True)
    config = page_config(html)
    assert config["deepLink"] == {"parcels": list(facts.pair)}
    assert config["lang"] == "ro"
    assert config["parcelTilesUrl"].startswith("/tiles/parcels/")
    assert config["actsTilesUrl"] == "/tiles/acts/{z}/{x}/{y}.mvt"
    assert config["cardUrl"] == "/api/v1/parcels/{cadastral_number}"
    assert config["atUrl"] == "/api/v1/parcels"
    assert config["extractUrl"] == "/parcels/{number}/extract.pdf"
    assert config["validationUrl"] == "/api/v1/validations/location"
    assert config["queueUrl"] == "/clerk/queue"
    assert config["analysisUrl"] == "/api/v1/analysis/zones"
    assert config["orthophotos"] == []
    assert OWNER not in html


# -- search -----------------------------------------------------------------------------
def test_search_by_cadastral_number(client: FlaskClient, facts: MapFacts) -> None:
    results = client.get("/map/search", query_string={"q": facts.owned}).get_json()["results"]
    assert results[0] == {**results[0], "kind": "parcel", "cadastral_number": facts.owned}
    prefix = client.get("/map/search", query_string={"q": facts.owned[:3]}).get_json()
    assert all(hit["cadastral_number"].startswith(facts.owned[:3]) for hit in prefix["results"])
    assert len(prefix["results"]) == 8


def _variants(address: str) -> list[str]:
    """The stored address, with cedilla letters, and lower case without any diacritics."""
    street = address.split(",")[0]
    cedilla = street.translate(str.maketrans("șțȘȚ", "şţŞŢ"))
    decomposed = unicodedata.normalize("NFKD", street)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return [street, cedilla, plain.replace("strada", "str.")]


def test_search_by_address_is_diacritic_insensitive(client: FlaskClient, facts: MapFacts) -> None:
    variants = _variants(facts.diacritic_address)
    assert len(set(variants)) == 3
    for query in variants:
        results = client.get("/map/search", query_string={"q": query}).get_json()["results"]
        addresses = [hit for hit in results if hit["kind"] == "address"]
        assert addresses, query
        assert addresses[0]["label"] == facts.diacritic_address, query
        assert addresses[0]["cadastral_number"] == facts.diacritic, query


def test_search_completes_street_names(client: FlaskClient, facts: MapFacts) -> None:
    street = facts.diacritic_address.split(" nr.")[0]
    word = street.split()[-1][:5]
    results = client.get("/map/search", query_string={"q": word}).get_json()["results"]
    streets = [hit for hit in results if hit["kind"] == "street"]
    assert any(hit["label"] == street for hit in streets)
    assert all(len(hit["bbox"]) == 4 for hit in streets)


@pytest.mark.parametrize("query", [{}, {"q": " "}, {"q": "x" * 121}, {"q": "ab", "limit": "0"}])
def test_bad_searches_are_400(client: FlaskClient, query: dict[str, str]) -> None:
    response = client.get("/map/search", query_string=query)
    assert response.status_code == 400
    assert response.get_json()["code"] in {"MissingParameterValue", "InvalidParameterValue"}


def test_like_wildcards_are_literal(client: FlaskClient) -> None:
    assert client.get("/map/search", query_string={"q": "%%"}).get_json()["results"] == []
    assert client.get("/map/search", query_string={"q": "__"}).get_json()["results"] == []


# -- the card and the extract: one status ------------------------------------------------
def test_extract_prints_the_api_parcel_status(client: FlaskClient, facts: MapFacts) -> None:
    """The card shows ``/api/v1/parcels/{n}``; the PDF prints the very same answer."""
    status = client.get(f"/api/v1/parcels/{facts.restricted}").get_json()
    assert sorted({z["utr_code"] for z in status["zones"]}) == sorted(facts.zones[facts.restricted])
    assert facts.restriction_name in [r["name"] for r in status["restrictions"]]
    [act] = [a for a in status["acts"] if a["number"] == ACT_NUMBER]
    assert (act["kind"], act["status"]) == ("CU", "issued")
    pdf = pdf_text(client.get(f"/parcels/{facts.restricted}/extract.pdf").get_data())
    text = " ".join(pdf.split())  # lines wrap wherever the page width says
    for zone in status["zones"]:
        assert f"UTR {zone['utr_code']}" in text
        assert f"{float(zone['share']) * 100:.1f} %" in text, "the same share as the API"
    for item in status["restrictions"]:
        assert item["name"].split(" – ")[0] in text
    assert f"Certificat de urbanism {ACT_NUMBER}" in text
    assert f"valabil până la {act['valid_until']}" in text
    verdict = {"ok": "fără probleme", "attention": "necesită atenție", "blocked": "blocat"}
    assert verdict[status["verdict"]] in text
    for name, version in status["provenance"]["data_versions"].items():
        assert f"{name} v{version['version']}" in text
    assert status["valid_for"] in text
    assert status["map_url"] in pdf.replace("\n", ""), "the QR code's address is printed"


def test_card_and_extract_never_carry_personal_data_even_for_clerks(
    client: FlaskClient, facts: MapFacts
) -> None:
    login(client, "clerk8")
    for number in (facts.owned, facts.restricted):
        body = client.get(f"/api/v1/parcels/{number}").get_data(as_text=True)
        text = pdf_text(client.get(f"/parcels/{number}/extract.pdf").get_data())
        for secret in (OWNER, OWNER_CNP, APPLICANT, APPLICANT_CNP):
            assert secret not in body
            assert secret not in text
    assert facts.owned in text or facts.restricted in text


def test_unknown_and_malformed_numbers(client: FlaskClient) -> None:
    missing = client.get("/parcels/999999999/extract.pdf")
    assert missing.status_code == 404
    assert "999999999" in missing.get_json()["description"]
    bad = client.get("/parcels/a%20b%20c/extract.pdf")
    assert bad.status_code == 400
    assert bad.get_json()["locator"] == "cadastral_number"
    assert client.get("/map/parcels/1.json").status_code == 404, "the duplicate report is gone"


def test_selection(client: FlaskClient, facts: MapFacts) -> None:
    numbers = f"{facts.pair[0]},999999999,{facts.pair[1]}"
    selection = client.get("/map/selection.geojson", query_string={"parcels": numbers}).get_json()
    assert [f["id"] for f in selection["features"]] == list(facts.pair)
    assert selection["not_found"] == ["999999999"]
    x0, y0, x1, y1 = selection["bbox"]
    for feature in selection["features"]:
        for lon, lat in feature["geometry"]["coordinates"][0][0]:
            assert x0 - 1e-6 <= lon <= x1 + 1e-6 and y0 - 1e-6 <= lat <= y1 + 1e-6
    assert set(selection["features"][0]["properties"]) == {
        "cadastral_number",
        "measured_area",
        "address",
    }


def test_labels_and_stereo70_readout(client: FlaskClient, facts: MapFacts) -> None:
    lon, lat = facts.inside[facts.owned]
    bbox = f"{lon - 0.002},{lat - 0.002},{lon + 0.002},{lat + 0.002}"
    labels = client.get("/map/labels.geojson", query_string={"bbox": bbox}).get_json()
    assert facts.owned in {f["properties"]["n"] for f in labels["features"]}
    assert (
        client.get("/map/labels.geojson", query_string={"bbox": "23,46,24,47"}).status_code == 400
    )
    xy = client.get("/map/coords", query_string={"lon": lon, "lat": lat}).get_json()
    east, north = transform_coords(4258, 3844, lon, lat)
    assert (xy["x"], xy["y"]) == pytest.approx((float(east), float(north)), abs=0.01)
    assert client.get("/map/coords", query_string={"lon": 0, "lat": 0}).status_code == 400


# -- the extract ------------------------------------------------------------------------
def test_extract_pdf_is_a_download_with_the_parcel_rules(
    client: FlaskClient, facts: MapFacts
) -> None:
    response = client.get(f"/parcels/{facts.restricted}/extract.pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    disposition = response.headers["Content-Disposition"]
    assert disposition == f'attachment; filename="extras-urbanistic-{facts.restricted}.pdf"'
    data = response.get_data()
    assert data.startswith(b"%PDF-")
    text = pdf_text(data)
    assert "EXTRAS DE INFORMARE URBANISTICĂ" in text
    assert facts.restricted in text
    for code in facts.zones[facts.restricted]:
        assert f"UTR {code}" in text
    assert "Cluj-Napoca (SIRUTA 54975)" in text
    assert f"/map?parcels={facts.restricted}" in text
    assert "Date sintetice" in text
    assert "urbanism.zone v" in text, "the data versions are stated"


def test_extract_in_english(client: FlaskClient, facts: MapFacts) -> None:
    text = pdf_text(client.get(f"/parcels/{facts.diacritic}/extract.pdf?lang=en").get_data())
    assert "URBANISM INFORMATION EXTRACT" in text
    assert "Cadastral number" in text
    assert facts.diacritic_address.split(",")[0] in text, "Romanian letters survive the font"


def test_extract_map_window_keeps_the_frame_shape() -> None:
    window = window_around((1000.0, 2000.0, 1030.0, 2010.0), MAP_ASPECT)
    width, height = window[2] - window[0], window[3] - window[1]
    assert width / height == pytest.approx(MAP_ASPECT)
    assert width >= 120.0
    assert (window[0] + window[2]) / 2 == pytest.approx(1015.0)


# -- languages and staff ----------------------------------------------------------------
def test_romanian_by_default_english_on_request(client: FlaskClient) -> None:
    html = client.get("/map").get_data(as_text=True)
    assert '<html lang="ro">' in html
    assert "Caută" in html
    english = client.get("/map?lang=en")
    assert '<html lang="en">' in english.get_data(as_text=True)
    assert "urbangis_lang=en" in english.headers["Set-Cookie"]
    remembered = client.get("/map").get_data(as_text=True)
    assert '<html lang="en">' in remembered
    assert page_config(remembered)["messages"]["card.title"] == "Parcel"
    assert client.get("/map?lang=xx").status_code == 200


def test_page_and_tiles_are_public_while_owners_are_for_clerks(
    client: FlaskClient, facts: MapFacts
) -> None:
    query = {
        "filter": f"cadastral_number='{facts.owned}'",
        "filter-lang": "cql2-text",
        "properties": "cadastral_number,owners",
    }
    public = client.get("/ogc/features/collections/parcels/items", query_string=query)
    assert OWNER not in public.get_data(as_text=True)
    login(client, "planner8")
    assert OWNER not in client.get(
        "/ogc/features/collections/parcels/items", query_string=query
    ).get_data(as_text=True)
    login(client, "clerk8")
    clerk = client.get("/ogc/features/collections/parcels/items", query_string=query).get_json()
    assert [f["properties"]["owners"] for f in clerk["features"]] == [OWNER]
    assert OWNER not in client.get("/map").get_data(as_text=True)


# -- planners' draft plans, clerks' tools -----------------------------------------------
def test_draft_plans_reach_planners_only(client: FlaskClient) -> None:
    drafts_url = page_config(client.get("/map").get_data(as_text=True))["draftsUrl"]
    public = client.get(drafts_url)
    assert DRAFT_UTR not in public.get_data(as_text=True)
    login(client, "clerk8")
    assert DRAFT_UTR not in client.get(drafts_url).get_data(as_text=True)
    login(client, "planner8")
    drafts = client.get(drafts_url).get_json()
    assert [(f["properties"]["utr_code"], f["properties"]["plan"]) for f in drafts["features"]] == [
        (DRAFT_UTR, DRAFT_PLAN)
    ]
    analysis = client.get(page_config(client.get("/map").get_data(as_text=True))["analysisUrl"])
    assert analysis.status_code == 200
    assert analysis.get_json()["zones"], "the planner panel has rows to show"


def test_the_clerk_validation_the_page_sends(client: FlaskClient, facts: MapFacts) -> None:
    """The body the page's footprint form posts, as a signed-in clerk sends it."""
    url = page_config(client.get("/map").get_data(as_text=True))["validationUrl"]
    ring = [[lon, lat] for lon, lat in facts.footprint]
    body = {
        "kind": "AC",
        "footprint": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
        "proposed": {"height_m": 7.5, "levels": 2},
        "cadastral_numbers": [facts.restricted],
        "intended_use": "locuință individuală",
    }
    assert client.post(url, json=body).status_code in (401, 403), "staff only"
    login(client, "clerk8")
    report = client.post(url, json=body).get_json()
    checks = {c["rule"]: c["result"] for c in report["checks"]}
    assert checks["parcels_exist"] == "pass"
    assert checks["footprint_on_parcels"] == "pass"
    assert checks["valid_certificate"] == "pass", "the certificate registered for the parcel"
    assert report["figures"]["proposed_built_m2"] > 0


# -- the orthophoto base layer ----------------------------------------------------------
def test_an_imported_orthophoto_becomes_a_base_layer(
    client: FlaskClient, settings_demo: Settings, facts: MapFacts, tmp_path: Path
) -> None:
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    from importers.raster import RasterOptions, import_raster

    lon, lat = facts.inside[facts.owned]
    east, north = (float(v) for v in transform_coords(4258, 3844, lon, lat))
    source = tmp_path / "orto.tif"
    with rasterio.open(
        source, "w", driver="GTiff", width=200, height=200, count=3, dtype="uint8",
        crs="EPSG:3844", transform=from_origin(east - 100, north + 100, 1.0, 1.0),
    ) as raster:  # fmt: skip
        raster.write(np.stack([np.full((200, 200), v, "uint8") for v in (30, 160, 60)]))
    imported = settings_demo.model_copy(update={"data_dir": tmp_path})
    engine = create_engine(imported)
    try:
        import_raster(engine, imported, source, RasterOptions("orto_test", "Ortofoto test"))
        html = client.get("/map").get_data(as_text=True)
        config = page_config(html)
        assert {"name": "orto_test", "title": "Ortofoto test"} in config["orthophotos"]
        assert config["wmsUrl"].rstrip("/") == "/ogc/wms"
        # What the page's L.tileLayer.wms asks for: WMS 1.3.0 in Web Mercator, JPEG.
        x, y = transform_coords(4326, 3857, lon, lat)
        box = f"{float(x) - 30},{float(y) - 30},{float(x) + 30},{float(y) + 30}"
        image = client.get(
            config["wmsUrl"],
            query_string={
                "service": "WMS", "version": "1.3.0", "request": "GetMap", "layers": "orto_test",
                "styles": "", "crs": "EPSG:3857", "bbox": box, "width": 64, "height": 64,
                "format": "image/jpeg",
            },
        )  # fmt: skip
        assert image.status_code == 200 and image.mimetype == "image/jpeg"
        from PIL import Image

        pixel = Image.open(io.BytesIO(image.get_data())).convert("RGB").getpixel((32, 32))
        assert pixel == pytest.approx((30, 160, 60), abs=12), pixel
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM core.raster_layer WHERE name = 'orto_test'")
        engine.dispose()


# -- the extract's map comes from our WMS ---------------------------------------------------
def _picture_inputs(settings_demo: Settings, number: str) -> tuple[Any, Any, Any]:
    from permits.extract import extract_inputs
    from webmap import wms as wms_view
    from webmap.api.base import location_context
    from webmap.wfs import ows_service

    app = create_app(settings_demo)
    with app.test_request_context("/"):
        service = ows_service(wms_view.PREFIX, "WMS")
        state = wms_view.wms_state()
        engine = create_engine(settings_demo)
        try:
            with engine.connect() as conn:
                inputs = extract_inputs(conn, number, location_context())
        finally:
            engine.dispose()
    return service, state, inputs


def test_extract_map_is_the_public_wms_picture(
    client: FlaskClient, settings_demo: Settings, facts: MapFacts
) -> None:
    from permits.extract import extract_picture
    from permits.extract_pdf import MAP_H, MAP_W
    from permits.extract_picture import (
        PICTURE_DPI,
        PICTURE_LAYERS,
        _getmap_params,
        picture_size,
    )

    service, state, inputs = _picture_inputs(settings_demo, facts.restricted)
    picture = extract_picture(service, state, inputs)
    assert picture is not None
    size = picture_size(MAP_W, MAP_H)
    assert size == (round(MAP_W / 25.4 * PICTURE_DPI), round(MAP_H / 25.4 * PICTURE_DPI))
    # Byte for byte what /ogc/wms answers a public GetMap of the same frame.
    params = _getmap_params(PICTURE_LAYERS, inputs.geometry, size)
    assert ("styles", "default,outline,default,outline,default") in params
    served = client.get("/ogc/wms", query_string=params)
    assert served.status_code == 200 and served.mimetype == "image/png"
    assert served.get_data() == picture.png
    assert picture.colours["zones"] == ("#9ecae1", True)
    assert picture.colours["parcels"] == ("#8c6d3f", False), "outlines over the zones"
    # The PDF embeds that picture under the parcel's outline.
    data = client.get(f"/parcels/{facts.restricted}/extract.pdf").get_data()
    images = [image for page in PdfReader(io.BytesIO(data)).pages for image in page.images]
    assert [(image.image.width, image.image.height) for image in images if image.image] == [size]


def test_extract_map_falls_back_to_vectors_when_the_wms_cannot_draw(
    settings_demo: Settings, facts: MapFacts
) -> None:
    from dataclasses import replace

    from permits.extract import extract_picture, render_extract

    service, state, inputs = _picture_inputs(settings_demo, facts.owned)
    unusable = replace(inputs, geometry=replace(inputs.geometry, srid=32635))  # not offered
    assert extract_picture(service, state, unusable) is None
    pdf = render_extract(inputs, picture=None).pdf
    reader = PdfReader(io.BytesIO(pdf))
    assert not [image for page in reader.pages for image in page.images]
    assert facts.owned in "\n".join(page.extract_text() for page in reader.pages)


def test_page_colours_zones_with_the_platform_palette(client: FlaskClient) -> None:
    from layers.styles import OTHER_ZONES, ZONE_FAMILIES

    config = page_config(client.get("/map").get_data(as_text=True))
    assert [f["colour"] for f in config["zoneFamilies"]] == [f.colour for f in ZONE_FAMILIES]
    assert [f["words"] for f in config["zoneFamilies"]] == [f.words for f in ZONE_FAMILIES]
    assert config["otherZonesColour"] == OTHER_ZONES.colour
