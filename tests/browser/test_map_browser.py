"""The web map in a real browser: Debian's Chromium, headless, driven by Playwright.

One server (the app on the demo municipality, base map switched off) and one browser
serve the whole module; each test opens its own page. Every page is watched for console
errors and for any request leaving 127.0.0.1. Screenshots of the key states are kept in
``var/test/artifacts/browser/`` (override with URBANGIS_TEST_ARTIFACTS).
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy.engine import URL

from gis_core.settings import Settings
from tests.browser.demo import (
    ACT_NUMBER,
    APPLICANT,
    DRAFT_UTR,
    OWNER,
    PASSWORD,
    MapFacts,
    demo_settings,
    drop,
    map_facts,
)
from tests.conftest import TEST_DATA_DIR, _worker_suffix
from tests.test_layers_data import layers_app, live_server

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("URBANGIS_TEST_ARTIFACTS", TEST_DATA_DIR / "artifacts" / "browser"))
TIMEOUT_MS = 45_000  # a ceiling for a loaded machine, not a timing

if not Path(CHROMIUM).is_file():
    pytest.fail(f"Chromium is missing at {CHROMIUM}: run scripts/setup (it installs it)")


@pytest.fixture(scope="module")
def settings_demo(server_url: URL) -> Iterator[Settings]:
    name = f"urbangis_browser_{_worker_suffix()}"
    yield demo_settings(server_url, name)
    drop(server_url, name)


@pytest.fixture(scope="module")
def facts(settings_demo: Settings) -> MapFacts:
    return map_facts(settings_demo)


@pytest.fixture(scope="module")
def base_url(settings_demo: Settings, facts: MapFacts) -> Iterator[str]:
    with live_server(layers_app(settings_demo)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as driver:
        launched = driver.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        launched.close()


@dataclass
class Watched:
    """A page with what it logged and where it connected."""

    page: object
    errors: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)


@pytest.fixture
def open_page(browser: object, base_url: str) -> Iterator[object]:
    contexts: list[object] = []

    def opener(path: str, **context_options: object) -> Watched:
        context = browser.new_context(accept_downloads=True, **context_options)  # type: ignore[attr-defined]
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        watched = Watched(page)
        page.on(
            "console",
            lambda m: watched.errors.append(m.text) if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: watched.errors.append(str(e)))
        page.on(
            "request",
            lambda r: (
                None
                if r.url.startswith(base_url) or r.url.startswith("data:")
                else watched.outside.append(r.url)
            ),
        )
        page.goto(base_url + path)
        return watched

    yield opener
    for context in contexts:
        context.close()  # type: ignore[attr-defined]


def settle(watched: Watched) -> None:
    watched.page.wait_for_selector("#map[data-ready='1']")  # type: ignore[attr-defined]
    watched.page.wait_for_timeout(300)  # type: ignore[attr-defined]


def clean(watched: Watched) -> None:
    assert watched.errors == [], watched.errors
    assert watched.outside == [], watched.outside


def shot(watched: Watched, name: str) -> None:
    watched.page.screenshot(path=str(ARTIFACTS / f"{name}.png"))  # type: ignore[attr-defined]


def card_text(watched: Watched) -> str:
    return str(watched.page.inner_text("#card"))  # type: ignore[attr-defined]


def screen_point(watched: Watched, lonlat: tuple[float, float]) -> dict[str, float]:
    """Where a longitude/latitude is in the page, by the map's own projection."""
    return dict(
        watched.page.evaluate(  # type: ignore[attr-defined]
            """([lon, lat]) => {
                const m = window.urbangisMap.map;
                const xy = m.latLngToContainerPoint([lat, lon]);
                const box = m.getContainer().getBoundingClientRect();
                return {x: box.left + xy.x, y: box.top + xy.y};
            }""",
            list(lonlat),
        )
    )


def sign_in(watched: Watched, user: str) -> None:
    page = watched.page
    page.get_by_role("button", name="Autentificare personal").click()  # type: ignore[attr-defined]
    page.get_by_label("Utilizator").fill(user)  # type: ignore[attr-defined]
    page.get_by_label("Parolă").fill(PASSWORD)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Intră").click()  # type: ignore[attr-defined]
    page.wait_for_selector("#logout:not([hidden])")  # type: ignore[attr-defined]


NON_BLANK_TILES = """
() => {
  const canvases = [...document.querySelectorAll('.leaflet-pane canvas')];
  let painted = 0;
  for (const canvas of canvases) {
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 3; i < data.length; i += 4) { if (data[i] > 0) { painted += 1; break; } }
  }
  return {canvases: canvases.length, painted};
}
"""


def test_map_loads_layers_from_this_server_only(
    open_page: object, facts: MapFacts, base_url: str
) -> None:
    page = open_page(f"/map?parcel={facts.owned}")  # type: ignore[operator]
    page.page.wait_for_selector(f"#map[data-card='{facts.owned}']")
    settle(page)
    tiles = page.page.evaluate(NON_BLANK_TILES)
    assert tiles["canvases"] > 0 and tiles["painted"] > 0, tiles
    zones = page.page.locator(".leaflet-pane-zones path, .leaflet-pane path").count()
    assert zones > 0
    label = page.page.locator(".parcel-label", has_text=facts.owned)
    playwright_api.expect(label).to_have_count(1)
    assert page.page.locator(".leaflet-control-layers").count() == 1
    assert page.page.locator(".map-legend").is_visible()
    assert "Stereo 70 E" in page.page.inner_text("#coords")
    assert "Date sintetice" in page.page.inner_text(".leaflet-control-attribution")
    shot(page, "01-map-card")
    clean(page)


def test_search_by_number_and_address_opens_the_card(open_page: object, facts: MapFacts) -> None:
    page = open_page("/map")  # type: ignore[operator]
    settle(page)
    search = page.page.get_by_role("combobox", name="Caută: număr cadastral, adresă sau stradă")
    search.fill(facts.restricted)
    search.press("Enter")
    page.page.wait_for_selector(f"#map[data-card='{facts.restricted}']")
    text = card_text(page)
    for code in facts.zones[facts.restricted]:
        assert f"UTR {code}" in text
    assert facts.restriction_name in text
    # The parcel is outlined after its card is shown (its geometry is a second request).
    page.page.wait_for_selector(f"#map[data-selection='{facts.restricted}']")
    street = facts.diacritic_address.split(",")[0]
    cedilla = street.translate(str.maketrans("șțȘȚ", "şţŞŢ"))
    plain = street.translate(str.maketrans("șțşţăâîȘȚ", "ststaaiST"))
    for query in (street, cedilla, plain):
        search.fill("")
        search.type(query, delay=5)
        # The list answering the whole query, not one of the prefixes typed on the way.
        page.page.wait_for_function(
            "q => document.querySelector('#search-results').dataset.query === q", arg=query
        )
        option = page.page.get_by_role("option").filter(has_text=facts.diacritic_address)
        option.first.wait_for()
        search.press("ArrowDown")
        selected = page.page.locator("[role=option][aria-selected=true]")
        assert facts.diacritic_address in selected.inner_text(), query
        search.press("Enter")
        page.page.wait_for_selector(f"#map[data-card='{facts.diacritic}']")
        assert facts.diacritic_address in card_text(page)
        page.page.get_by_role("button", name="Închide fișa").click()
    shot(page, "02-search")
    clean(page)


def test_click_on_the_map_opens_that_parcel(open_page: object, facts: MapFacts) -> None:
    first, second = facts.pair
    page = open_page(f"/map?parcel={first}")  # type: ignore[operator]
    page.page.wait_for_selector(f"#map[data-card='{first}']")
    settle(page)
    page.page.get_by_role("button", name="Închide fișa").click()
    # Where a point inside the neighbour is on screen, by the map's own projection.
    point = screen_point(page, facts.inside[second])
    page.page.mouse.click(point["x"], point["y"])
    page.page.wait_for_selector(f"#map[data-card='{second}']")
    # The highlight arrives by its own request, after or before the card's.
    page.page.wait_for_selector(f"#map[data-selection='{second}']")
    clean(page)


def test_deep_links_highlight_and_zoom(open_page: object, facts: MapFacts) -> None:
    first, second = facts.pair
    page = open_page(f"/map?parcels={first},{second},999999999")  # type: ignore[operator]
    page.page.wait_for_selector("#map[data-card='selection']")
    assert page.page.get_attribute("#map", "data-selection") == f"{first},{second}"
    assert page.page.locator("path.selected-parcel").count() == 2
    inside = page.page.evaluate(
        """() => {
            const m = window.urbangisMap.map;
            const bounds = m.getBounds();
            let all = true;
            m.eachLayer((layer) => {
              const selected = layer.options && layer.options.className === 'selected-parcel';
              if (layer.feature && layer.getBounds && selected) {
                all = all && bounds.contains(layer.getBounds());
              }
            });
            return {all, zoom: m.getZoom()};
        }"""
    )
    assert inside["all"] and inside["zoom"] >= 16, inside
    text = card_text(page)
    assert first in text and second in text and "999999999" in text
    shot(page, "03-deep-link-parcels")
    page.page.get_by_role("button", name=second).click()
    page.page.wait_for_selector(f"#map[data-card='{second}']")
    clean(page)

    place = open_page("/map?lon=23.5900&lat=46.7700&z=17")  # type: ignore[operator]
    settle(place)
    view = place.page.evaluate(
        "() => { const c = window.urbangisMap.map.getCenter();"
        " return [c.lng, c.lat, window.urbangisMap.map.getZoom()]; }"
    )
    assert view == pytest.approx([23.59, 46.77, 17], abs=1e-4)
    clean(place)


def test_extract_pdf_downloads_with_the_parcel_data(open_page: object, facts: MapFacts) -> None:
    page = open_page(f"/map?parcel={facts.restricted}")  # type: ignore[operator]
    page.page.wait_for_selector(f"#map[data-card='{facts.restricted}']")
    with page.page.expect_download() as download_info:
        page.page.get_by_role("link", name="Extras de informare urbanistică (PDF)").click()
    download = download_info.value
    assert download.suggested_filename == f"extras-urbanistic-{facts.restricted}.pdf"
    target = ARTIFACTS / download.suggested_filename
    download.save_as(str(target))
    reader = PdfReader(io.BytesIO(target.read_bytes()))
    text = "\n".join(p.extract_text() for p in reader.pages)
    assert facts.restricted in text
    for code in facts.zones[facts.restricted]:
        assert f"UTR {code}" in text
    clean(page)


def test_staff_see_personal_data_only_as_clerks(open_page: object, facts: MapFacts) -> None:
    public = open_page(f"/map?parcel={facts.owned}")  # type: ignore[operator]
    public.page.wait_for_selector(f"#map[data-card='{facts.owned}']")
    assert OWNER not in public.page.content()
    assert public.page.locator(".staff-tools").count() == 0
    clean(public)
    for user, sees in (("planner8", False), ("clerk8", True)):
        page = open_page(f"/map?parcel={facts.owned}")  # type: ignore[operator]
        page.page.wait_for_selector(f"#map[data-card='{facts.owned}']")
        sign_in(page, user)
        page.page.wait_for_selector(".staff-tools" if sees else "#planner-panel")
        if sees:
            page.page.wait_for_selector(".owner-names")
            assert OWNER in page.page.inner_text(".owner-names")
            shot(page, "04-clerk-card")
        else:
            page.page.wait_for_timeout(500)
            assert OWNER not in page.page.content()
        page.page.get_by_role("button", name="Ieșire").click()
        page.page.wait_for_selector("#login-open:not([hidden])")
        page.page.wait_for_function(
            "!document.querySelector('.staff-tools') && document.querySelector('#map').dataset.card"
        )
        assert OWNER not in page.page.content()
        clean(page)
    wrong = open_page("/map")  # type: ignore[operator]
    wrong.page.get_by_role("button", name="Autentificare personal").click()
    wrong.page.get_by_label("Utilizator").fill("clerk8")
    wrong.page.get_by_label("Parolă").fill("not-the-password")
    wrong.page.get_by_role("button", name="Intră").click()
    wrong.page.get_by_role("alert").filter(has_text="greșite").wait_for()
    assert wrong.page.locator(".staff-tools").count() == 0


def test_english_on_a_phone_with_the_keyboard(open_page: object, facts: MapFacts) -> None:
    page = open_page(  # type: ignore[operator]
        "/map?lang=en",
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
    )
    settle(page)
    assert page.page.get_attribute("html", "lang") == "en"
    page.page.keyboard.press("Tab")
    assert page.page.evaluate("document.activeElement.className") == "skip-link"
    page.page.keyboard.press("Enter")
    assert page.page.evaluate("document.activeElement.id") == "search-input"
    page.page.keyboard.type(facts.diacritic)
    page.page.keyboard.press("Enter")
    page.page.wait_for_selector(f"#map[data-card='{facts.diacritic}']")
    text = card_text(page)
    assert "Parcel " + facts.diacritic in text
    assert "Cadastral number" in text and "Zones (UTR)" in text
    card_box = page.page.locator("#card").bounding_box()
    map_box = page.page.locator("#map").bounding_box()
    assert card_box["width"] <= 390 and card_box["y"] >= map_box["y"] + map_box["height"] - 1
    assert page.page.evaluate("document.documentElement.scrollWidth") <= 390
    # Every form control has an accessible name.
    unnamed = page.page.evaluate(
        """() => [...document.querySelectorAll('input, button, select, a[href]')]
            .filter((e) => e.offsetParent !== null)
            .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                    && !e.textContent.trim() && !e.title)
            .map((e) => e.outerHTML.slice(0, 80))"""
    )
    assert unnamed == []
    shot(page, "05-phone-english")
    page.page.locator("#card").focus()
    page.page.keyboard.press("Escape")
    assert page.page.locator("#card").is_hidden(), "Escape closes the card"
    clean(page)
    back = open_page("/map?lang=ro")  # type: ignore[operator]
    assert back.page.get_attribute("html", "lang") == "ro"


def test_public_acts_on_the_card_and_the_map(open_page: object, facts: MapFacts) -> None:
    page = open_page(f"/map?parcel={facts.restricted}")  # type: ignore[operator]
    act = page.page.locator(".acts li", has_text=f"Certificat de urbanism {ACT_NUMBER}")
    act.wait_for()
    assert "emis" in act.inner_text() and "valabil până la" in act.inner_text()
    settle(page)
    assert page.page.get_by_label("Registrul actelor (CU, AC, AD)").is_checked()
    # The overlay asked for its vector tiles (a failed one would be a console error).
    assert page.page.evaluate(
        "performance.getEntriesByType('resource').some((e) => e.name.includes('/tiles/acts/'))"
    )
    assert APPLICANT not in page.page.content()
    shot(page, "06-acts-on-card")
    clean(page)


def test_clerk_draws_a_footprint_and_gets_the_validation(
    open_page: object, facts: MapFacts
) -> None:
    page = open_page(f"/map?parcel={facts.restricted}")  # type: ignore[operator]
    page.page.wait_for_selector(f"#map[data-card='{facts.restricted}']")
    sign_in(page, "clerk8")
    page.page.get_by_role("link", name="Coada de verificare").wait_for()
    page.page.get_by_role("button", name="Desenează amprenta pe acest imobil").click()
    page.page.wait_for_selector("#map[data-drawing='1']")
    corners = [screen_point(page, corner) for corner in facts.footprint]
    for corner in [*corners, corners[0]]:
        page.page.mouse.click(corner["x"], corner["y"])
        page.page.wait_for_timeout(150)
    page.page.get_by_label("Tip act").select_option("AC")
    assert page.page.get_by_label("Numere cadastrale (opțional)").input_value() == facts.restricted
    page.page.get_by_label("Destinația propusă").fill("locuință individuală")
    page.page.get_by_label("Înălțime (m)").fill("7.5")
    page.page.get_by_role("button", name="Validează").click()
    report = page.page.locator("#validation-report[data-outcome]")
    report.wait_for()
    for rule in ("footprint_on_parcels", "valid_certificate"):
        row = page.page.locator(f"#validation-report tr[data-rule='{rule}']")
        assert "conform" in row.inner_text() and "neconform" not in row.inner_text(), rule
    assert page.page.locator("#validation-report tr[data-rule='height']").count() == 1
    shot(page, "07-clerk-validation")
    clean(page)


def test_planner_panel_shows_drafts_and_the_zone_analysis(
    open_page: object, facts: MapFacts
) -> None:
    page = open_page(f"/map?parcel={facts.owned}")  # type: ignore[operator]
    page.page.wait_for_selector(f"#map[data-card='{facts.owned}']")
    assert page.page.locator("#planner-panel").count() == 0
    sign_in(page, "planner8")
    page.page.get_by_role("button", name="Analiză zone").click()
    table = page.page.locator("#zone-analysis")
    table.wait_for()
    codes = set(table.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.utr)"))
    assert set(facts.zones[facts.owned]) <= codes
    page.page.locator("#card").get_by_label("Planuri în lucru (draft)").check()
    page.page.wait_for_selector("#map[data-drafts='1']")
    assert page.page.locator("path.draft-zone").count() == 1
    page.page.locator("path.draft-zone").hover()
    page.page.locator(".leaflet-tooltip", has_text=DRAFT_UTR).wait_for()
    shot(page, "08-planner-panel")
    page.page.get_by_role("button", name="Ieșire").click()
    page.page.wait_for_selector("#login-open:not([hidden])")
    assert page.page.locator("path.draft-zone").count() == 0
    clean(page)
