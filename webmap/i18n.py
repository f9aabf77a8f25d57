"""The web map's languages: Romanian by default, English on request.

A small catalogue of our own rather than gettext files: the pages carry a few dozen
phrases, the page script needs the same phrases as JSON, and one dictionary serves both.
The language comes from ``?lang=`` (remembered in a cookie), else the cookie, else
Romanian: a public office's page speaks the official language unless asked otherwise.
"""

from __future__ import annotations

from flask import Response, request

LANGUAGES = ("ro", "en")
DEFAULT = "ro"
COOKIE = "urbangis_lang"
COOKIE_SECONDS = 365 * 86_400

# key: (Romanian, English). Keys prefixed "js." are also sent to the page script.
MESSAGES: dict[str, tuple[str, str]] = {
    "title": ("Hartă urbanistică", "Urban planning map"),
    "skip": ("Salt la căutare", "Skip to search"),
    "search.label": (
        "Caută: număr cadastral, adresă sau stradă",
        "Search: cadastral number, address or street",
    ),
    "search.placeholder": (
        "ex. 315814 sau Str. Memorandumului 21",
        "e.g. 315814 or 21 Memorandumului St.",
    ),
    "search.button": ("Caută", "Search"),
    "lang.switch": ("English", "Română"),
    "lang.switch.title": ("Switch to English", "Treceți la limba română"),
    "staff.login": ("Autentificare personal", "Staff sign-in"),
    "staff.logout": ("Ieșire", "Sign out"),
    "staff.user": ("Utilizator", "User name"),
    "staff.password": ("Parolă", "Password"),
    "staff.submit": ("Intră", "Sign in"),
    "staff.cancel": ("Renunță", "Cancel"),
    "assets.missing": (
        "Bibliotecile hărții nu sunt instalate (rulați scripts/install-assets).",
        "The map libraries are not installed (run scripts/install-assets).",
    ),
    "db.missing": (
        "Baza de date nu răspunde; harta nu are date acum.",
        "The database is not answering; the map has no data right now.",
    ),
    "noscript": ("Harta are nevoie de JavaScript.", "The map needs JavaScript."),
    "map.label": ("Harta municipiului", "Map of the municipality"),
    "card.label": ("Fișa imobilului", "Parcel card"),
    "deeplink.bad": ("Legătura nu este validă", "The link is not valid"),
    # -- used by the page script -----------------------------------------------------
    "js.card.title": ("Imobil", "Parcel"),
    "js.card.close": ("Închide fișa", "Close the card"),
    "js.card.loading": ("Se încarcă…", "Loading…"),
    "js.card.notfound": ("Imobilul nu a fost găsit", "Parcel not found"),
    "js.card.error": ("Datele nu au putut fi încărcate", "The data could not be loaded"),
    "js.card.cadastral": ("Nr. cadastral", "Cadastral number"),
    "js.card.landbook": ("Carte funciară", "Land book"),
    "js.card.area": ("Suprafață măsurată", "Measured area"),
    "js.card.address": ("Adresă", "Address"),
    "js.card.use": ("Categorie de folosință", "Use category"),
    "js.card.intravilan": ("Intravilan", "Built-up area (intravilan)"),
    "js.card.uat": ("În UAT", "Inside the municipality"),
    "js.card.zones": ("Zone funcționale (UTR)", "Zones (UTR)"),
    "js.card.nozones": ("Nicio zonă a unui plan în vigoare", "No zone of a plan in force"),
    "js.card.plan": ("Plan", "Plan"),
    "js.card.hcl": ("HCL", "Council decision"),
    "js.card.function": ("Funcțiune", "Function"),
    "js.card.share": ("din suprafață", "of the area"),
    "js.card.pot": ("POT maxim", "Max. site coverage (POT)"),
    "js.card.cut": ("CUT maxim", "Max. floor area ratio (CUT)"),
    "js.card.height": ("Înălțime maximă", "Max. height"),
    "js.card.regime": ("Regim de înălțime", "Height regime"),
    "js.card.minplot": ("Suprafață minimă parcelă", "Min. plot area"),
    "js.card.allowed": ("Utilizări admise", "Allowed uses"),
    "js.card.conditional": ("Admise cu condiții", "Conditional uses"),
    "js.card.forbidden": ("Interzise", "Forbidden uses"),
    "js.card.restrictions": ("Restricții", "Restrictions"),
    "js.card.norestrictions": ("Nicio restricție cunoscută", "No known restriction"),
    "js.card.acts": (
        "Acte emise (certificate, autorizații)",
        "Acts issued (certificates, permits)",
    ),
    "js.card.noacts": ("Niciun act public înregistrat", "No public act on record"),
    "js.card.extract": (
        "Extras de informare urbanistică (PDF)",
        "Urbanism information extract (PDF)",
    ),
    "js.card.link": ("Legătură către această fișă", "Link to this card"),
    "js.card.asof": ("Situația la data", "Status on"),
    "js.card.owners": ("Proprietari (date personale)", "Owners (personal data)"),
    "js.card.noowners": ("Niciun proprietar înregistrat", "No owner on record"),
    "js.card.verdict": ("Situație", "Status"),
    "js.card.overridden": ("Înlocuită aici de", "Replaced here by"),
    "js.card.staff": ("Instrumente personal", "Staff tools"),
    "js.card.nearby": ("în apropiere, la {distance} m", "nearby, {distance} m away"),
    "js.card.validuntil": ("valabil până la", "valid until"),
    "js.card.several": ("imobile selectate", "parcels selected"),
    "js.card.missing": ("Numere negăsite", "Numbers not found"),
    "js.yes": ("da", "yes"),
    "js.no": ("nu", "no"),
    "js.partly": ("parțial", "partly"),
    "js.unknown": ("necunoscut", "unknown"),
    "js.search.none": ("Niciun rezultat", "No results"),
    "js.search.street": ("stradă", "street"),
    "js.search.address": ("adresă", "address"),
    "js.search.parcel": ("imobil", "parcel"),
    "js.search.results": ("rezultate", "results"),
    "js.layers.parcels": ("Imobile (parcele)", "Parcels"),
    "js.layers.labels": ("Numere cadastrale", "Cadastral numbers"),
    "js.layers.zones": ("Zone funcționale (UTR)", "Zones (UTR)"),
    "js.layers.restrictions": ("Restricții", "Restrictions"),
    "js.layers.intravilan": ("Intravilan", "Built-up area (intravilan)"),
    "js.layers.boundary": ("Limita UAT", "Municipal boundary"),
    "js.layers.drafts": ("Planuri în lucru (draft)", "Draft plans"),
    "js.layers.acts": ("Registrul actelor (CU, AC, AD)", "Register of acts (CU, AC, AD)"),
    "js.layers.selection": ("Selecție", "Selection"),
    "js.base.none": ("Fără fundal", "No base map"),
    "js.base.orthophoto": ("Ortofotoplan", "Orthophoto"),
    "js.legend.title": ("Funcțiuni (zone UTR)", "Functions (UTR zones)"),
    "js.legend.restriction": ("Restricție", "Restriction"),
    "js.legend.acts": ("Act emis (CU, AC, AD)", "Act issued (CU, AC, AD)"),
    "js.legend.drafts": ("Plan în lucru (draft)", "Draft plan"),
    "js.plan.draft": ("draft", "draft"),
    "js.parcels.zoom": (
        "Parcelele apar de la zoom {zoom} (apropiați harta)",
        "Parcels appear from zoom {zoom} (zoom in)",
    ),
    "js.toomany": (
        "{layer}: prea multe obiecte, se arată primele {count} (apropiați harta)",
        "{layer}: too many features, showing the first {count} (zoom in)",
    ),
    "js.loadfailed": (
        "{layer}: datele nu au putut fi încărcate",
        "{layer}: the data could not be loaded",
    ),
    "js.coords.centre": ("Centrul hărții", "Map centre"),
    "js.demo": ("Date sintetice (demo)", "Synthetic data (demo)"),
    "js.login.failed": ("Utilizator sau parolă greșite", "Wrong user name or password"),
    "js.role.clerk": ("funcționar", "clerk"),
    "js.role.planner": ("urbanist", "planner"),
    "js.role.admin": ("administrator", "administrator"),
    "js.check.ok": ("fără probleme", "no problems"),
    "js.check.attention": ("necesită atenție", "needs attention"),
    "js.check.blocked": ("blocat", "blocked"),
    "js.act.CU": ("Certificat de urbanism", "Urbanism certificate"),
    "js.act.AC": ("Autorizație de construire", "Building permit"),
    "js.act.AD": ("Autorizație de desființare", "Demolition permit"),
    "js.actstatus.issued": ("emis", "issued"),
    "js.actstatus.extended": ("prelungit", "extended"),
    "js.actstatus.expired": ("expirat", "expired"),
    "js.actstatus.cancelled": ("anulat", "cancelled"),
    "js.actstatus.completed": ("finalizat", "completed"),
    # -- clerks: footprint validation and the review queue
    "js.clerk.draw": ("Desenează amprenta", "Draw a footprint"),
    "js.clerk.drawhere": ("Desenează amprenta pe acest imobil", "Draw a footprint on this parcel"),
    "js.clerk.title": ("Validarea amplasamentului", "Location validation"),
    "js.clerk.howto": (
        "Desenați pe hartă conturul construcției propuse: un clic pe fiecare colț, "
        "apoi clic pe primul colț pentru a închide.",
        "Draw the proposed building's outline on the map: click each corner, "
        "then click the first corner to close it.",
    ),
    "js.clerk.kind": ("Tip act", "Kind of act"),
    "js.clerk.numbers": ("Numere cadastrale (opțional)", "Cadastral numbers (optional)"),
    "js.clerk.use": ("Destinația propusă", "Intended use"),
    "js.clerk.floor": ("Suprafață construită desfășurată (m²)", "Gross floor area (m²)"),
    "js.clerk.height": ("Înălțime (m)", "Height (m)"),
    "js.clerk.levels": ("Număr de niveluri", "Number of levels"),
    "js.clerk.validate": ("Validează", "Validate"),
    "js.clerk.redraw": ("Desenează din nou", "Draw again"),
    "js.clerk.failed": ("Validarea nu a reușit", "The validation failed"),
    "js.clerk.outcome": ("Rezultat", "Outcome"),
    "js.clerk.plot": ("Suprafața terenului", "Plot area"),
    "js.clerk.built": ("Suprafață construită propusă", "Proposed built area"),
    "js.clerk.queue": ("Coada de verificare", "Review queue"),
    "js.result.pass": ("conform", "pass"),
    "js.result.warning": ("atenție", "warning"),
    "js.result.fail": ("neconform", "fail"),
    "js.rule.parcels_exist": ("Imobilele există", "Parcels exist"),
    "js.rule.parcels_contiguous": ("Imobile alăturate", "Parcels adjoin"),
    "js.rule.footprint_on_parcels": ("Amprenta pe imobilele actului", "Footprint on the parcels"),
    "js.rule.inside_uat": ("În UAT", "Inside the municipality"),
    "js.rule.inside_intravilan": ("În intravilan", "Inside the built-up area"),
    "js.rule.zones": ("Zone (UTR)", "Zones (UTR)"),
    "js.rule.use": ("Destinație", "Use"),
    "js.rule.pot": ("POT", "POT"),
    "js.rule.cut": ("CUT", "CUT"),
    "js.rule.height": ("Înălțime", "Height"),
    "js.rule.plot_size": ("Suprafața parcelei", "Plot size"),
    "js.rule.restrictions": ("Restricții", "Restrictions"),
    "js.rule.valid_certificate": ("Certificat de urbanism valabil", "Valid urbanism certificate"),
    # -- planners: draft plans and the zone analysis
    "js.planner.open": ("Analiză zone", "Zone analysis"),
    "js.planner.title": ("Instrumente urbanist", "Planner tools"),
    "js.planner.analysis": ("Analiza zonelor (pe UTR)", "Zone analysis (by UTR)"),
    "js.planner.asof": ("Situația la", "As of"),
    "js.planner.utr": ("UTR", "UTR"),
    "js.planner.plan": ("Plan", "Plan"),
    "js.planner.parcels": ("Imobile", "Parcels"),
    "js.planner.pot": ("POT realizat %", "Built POT %"),
    "js.planner.potmax": ("POT max %", "Max POT %"),
    "js.planner.cut": ("CUT realizat", "Built CUT"),
    "js.planner.cutmax": ("CUT max", "Max CUT"),
    "js.planner.over": ("Imobile peste maxim", "Parcels over a maximum"),
    "js.planner.remaining": ("Suprafață desfășurată rămasă (m²)", "Remaining floor area (m²)"),
    "js.restriction.heritage": ("protecție patrimoniu", "heritage protection"),
    "js.restriction.protected_area": ("arie protejată", "protected area"),
    "js.restriction.flood": ("zonă inundabilă", "flood zone"),
    "js.restriction.easement": ("zonă de protecție / servitute", "easement / protection strip"),
    "js.restriction.airport": ("zonă aeroport", "airport zone"),
    "js.restriction.natura2000": ("Natura 2000", "Natura 2000"),
    "js.restriction.landslide": ("alunecări de teren", "landslide risk"),
    "js.restriction.other": ("altă restricție", "other restriction"),
    "js.function.central": ("zonă centrală", "central"),
    "js.function.mixed": ("zonă mixtă", "mixed use"),
    "js.function.residential": ("locuire", "residential"),
    "js.function.public services": ("instituții și servicii publice", "public services"),
    "js.function.industrial": ("activități economice / industrie", "industrial"),
    "js.function.green": ("spații verzi", "green space"),
    "js.function.transport": ("transporturi", "transport"),
    "js.function.agricultural": ("agricol", "agricultural"),
}


def choose_language() -> str:
    """``?lang=`` if valid, else the remembered choice, else Romanian."""
    asked = request.args.get("lang", "").lower()
    if asked in LANGUAGES:
        return asked
    remembered = request.cookies.get(COOKIE, "")
    return remembered if remembered in LANGUAGES else DEFAULT


def remember_language(response: Response, lang: str) -> Response:
    """Keep an explicit ``?lang=`` choice for the next visits (no personal data)."""
    if request.args.get("lang", "").lower() in LANGUAGES:
        response.set_cookie(COOKIE, lang, max_age=COOKIE_SECONDS, samesite="Lax")
    return response


def translator(lang: str) -> dict[str, str]:
    """Every phrase in ``lang`` (unknown languages fall back to Romanian)."""
    index = LANGUAGES.index(lang) if lang in LANGUAGES else 0
    return {key: pair[index] for key, pair in MESSAGES.items()}


def script_messages(lang: str) -> dict[str, str]:
    """The phrases the page script uses, without their ``js.`` prefix."""
    return {key[3:]: text for key, text in translator(lang).items() if key.startswith("js.")}
