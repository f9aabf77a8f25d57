/* The urbangis web map: layers, search, parcel card, deep links, staff tools.
 *
 * Everything comes from this server: Leaflet, Leaflet.VectorGrid and Leaflet-Geoman from
 * /static/vendor, data from /map/*, /tiles/*, /ogc/* and /api/v1/*, orthophotos from
 * /ogc/wms. The parcel card is the JSON API's parcel status (/api/v1/parcels/{n}), the
 * same answer the e-services portal gets and the printed extract shows. The page's
 * configuration (URLs, language, the deep link already validated by the server, which
 * staff tools are installed) is in #map's data-config.
 * DOM is built with createElement/textContent only: data never becomes markup.
 * #map carries data-ready, data-card and data-selection attributes so that tests and
 * assistive tools can tell when the map has settled.
 */
(function () {
  "use strict";

  var element = document.getElementById("map");
  if (!element || typeof L === "undefined") {
    if (element) {
      element.classList.add("map-unavailable");
    }
    return;
  }

  var config = JSON.parse(element.dataset.config || "{}");
  var messages = config.messages || {};
  var lang = config.lang || "ro";
  var locale = lang === "en" ? "en-GB" : "ro-RO";
  var isDemo = element.dataset.demo === "true";
  var tilesUrl = element.dataset.tilesUrl;
  var dataUrl = element.dataset.dataUrl;
  var parcelsMinZoom = Number(element.dataset.parcelsMinZoom) || 15;

  function M(key, values) {
    var text = messages[key] || key;
    Object.keys(values || {}).forEach(function (name) {
      text = text.replace("{" + name + "}", values[name]);
    });
    return text;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = text;
    }
    return node;
  }

  function number(value, digits) {
    if (value === null || value === undefined || value === "") {
      return null;
    }
    return Number(value).toLocaleString(locale, { maximumFractionDigits: digits === undefined ? 2 : digits });
  }

  function area(value) {
    var text = number(value);
    return text === null ? null : text + " m²";
  }

  function getJSON(url, options) {
    return fetch(url, Object.assign({ headers: { Accept: "application/json" }, credentials: "same-origin" }, options || {}))
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          if (!response.ok) {
            var error = new Error(body.detail || body.description || ("HTTP " + response.status));
            error.status = response.status;
            throw error;
          }
          return body;
        });
      });
  }

  // -- the map ------------------------------------------------------------------------
  var map = L.map(element, { minZoom: 5, maxZoom: 20, zoomSnap: 0.25, keyboard: true });
  var extent = (element.dataset.extent || "20.2,43.6,29.7,48.3").split(",").map(Number);
  var HASH = /^#(\d+(?:\.\d+)?)\/(-?\d+(?:\.\d+)?)\/(-?\d+(?:\.\d+)?)$/;
  var linked = HASH.exec(window.location.hash);
  var deepLink = config.deepLink;
  if (deepLink && deepLink.lon !== undefined) {
    map.setView([deepLink.lat, deepLink.lon], deepLink.z);
  } else if (linked && !deepLink) {
    map.setView([Number(linked[2]), Number(linked[3])], Number(linked[1]));
  } else {
    map.fitBounds([[extent[1], extent[0]], [extent[3], extent[2]]], { padding: [8, 8] });
  }
  map.on("moveend", function () {
    var centre = map.getCenter();
    var hash = "#" + map.getZoom() + "/" + centre.lat.toFixed(5) + "/" + centre.lng.toFixed(5);
    window.history.replaceState(window.history.state, "", window.location.pathname + window.location.search + hash);
  });
  L.control.scale({ imperial: false, maxWidth: 150 }).addTo(map);

  var baseLayers = {};
  var osm = null;
  if (tilesUrl) {
    osm = L.tileLayer(tilesUrl, { maxZoom: 19 });
    baseLayers.OpenStreetMap = osm;
  }
  // Orthophotos the raster importer registered, drawn by our WMS (Web Mercator tiles).
  (config.orthophotos || []).forEach(function (photo) {
    baseLayers[M("base.orthophoto") + ": " + photo.title] = L.tileLayer.wms(config.wmsUrl, {
      layers: photo.name,
      styles: "",
      format: "image/jpeg",
      version: "1.3.0",
      maxZoom: 20,
      className: "orthophoto"
    });
  });
  var noBase = L.layerGroup();
  baseLayers[M("base.none")] = noBase;
  (osm || noBase).addTo(map);

  var attribution = null;
  function updateAttribution() {
    var parts = [];
    if (isDemo) {
      parts.push(M("demo"));
    }
    if (osm && map.hasLayer(osm)) {
      parts.push('© <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors');
    }
    if (attribution) {
      map.attributionControl.removeAttribution(attribution);
    }
    attribution = parts.join(" · ") || null;
    if (attribution) {
      map.attributionControl.addAttribution(attribution);
    }
  }
  map.attributionControl.setPrefix(false);
  map.on("baselayerchange", updateAttribution);
  updateAttribution();

  // -- colours of zone functions: the platform's one palette (layers.styles), also the
  // WMS's and the printed extract's; by the function's words, else by the UTR code.
  var ZONE_FAMILIES = (config.zoneFamilies || []).map(function (family) {
    return {
      words: family.words ? new RegExp(family.words) : null,
      codes: family.codes ? new RegExp("^(?:" + family.codes + ")$") : null,
      colour: family.colour
    };
  });

  function plainText(text) {
    return String(text || "").toLowerCase().normalize("NFD").replace(/[\u0300-\u036f]/g, "");
  }

  function functionName(name) {
    return messages["function." + name] || name || "—";
  }

  function zoneColour(name, code) {
    var key = plainText(name);
    var i;
    for (i = 0; key && i < ZONE_FAMILIES.length; i += 1) {
      if (ZONE_FAMILIES[i].words && ZONE_FAMILIES[i].words.test(key)) {
        return ZONE_FAMILIES[i].colour;
      }
    }
    for (i = 0; code && i < ZONE_FAMILIES.length; i += 1) {
      if (ZONE_FAMILIES[i].codes && ZONE_FAMILIES[i].codes.test(code)) {
        return ZONE_FAMILIES[i].colour;
      }
    }
    return config.otherZonesColour;
  }

  // -- status line, legend, coordinates -----------------------------------------------
  var statusMessages = {};
  var StatusControl = L.Control.extend({
    options: { position: "bottomleft" },
    onAdd: function () {
      this.box = L.DomUtil.create("div", "map-status");
      this.box.setAttribute("role", "status");
      this.box.hidden = true;
      return this.box;
    },
    show: function () {
      var lines = Object.keys(statusMessages).filter(function (k) { return statusMessages[k]; })
        .map(function (k) { return statusMessages[k]; });
      this.box.textContent = lines.join(" · ");
      this.box.hidden = lines.length === 0;
    }
  });
  var statusControl = new StatusControl().addTo(map);
  function setMessage(name, text) {
    statusMessages[name] = text;
    statusControl.show();
  }

  var legendFunctions = {};
  var LegendControl = L.Control.extend({
    options: { position: "bottomright" },
    onAdd: function () {
      this.box = L.DomUtil.create("div", "map-legend");
      this.box.hidden = true;
      return this.box;
    },
    show: function () {
      var names = Object.keys(legendFunctions).sort();
      this.box.textContent = "";
      this.box.hidden = names.length === 0;
      this.box.appendChild(el("h2", null, M("legend.title")));
      names.forEach(function (name) {
        var item = el("div");
        var swatch = el("span", "swatch");
        swatch.style.backgroundColor = legendFunctions[name];
        item.appendChild(swatch);
        item.appendChild(document.createTextNode(functionName(name)));
        this.box.appendChild(item);
      }, this);
      [["swatch-restriction", "legend.restriction"], ["swatch-act", "legend.acts"],
        ["swatch-draft", "legend.drafts"]].forEach(function (entry) {
        if (entry[0] === "swatch-draft" && !map.hasLayer(draftsLayer)) {
          return;
        }
        var item = el("div");
        item.appendChild(el("span", "swatch " + entry[0]));
        item.appendChild(document.createTextNode(M(entry[1])));
        this.box.appendChild(item);
      }, this);
    }
  });
  var legend = new LegendControl().addTo(map);

  var CoordsControl = L.Control.extend({
    options: { position: "bottomleft" },
    onAdd: function () {
      this.box = L.DomUtil.create("div", "map-coords");
      this.box.id = "coords";
      return this.box;
    }
  });
  var coordsBox = new CoordsControl().addTo(map).box;
  var coordsTimer = null;
  var coordsRequest = null;
  function showCoordinates(latlng, prefix) {
    var wgs = "WGS84 " + latlng.lat.toFixed(6) + ", " + latlng.lng.toFixed(6);
    coordsBox.textContent = (prefix ? prefix + ": " : "") + wgs;
    window.clearTimeout(coordsTimer);
    coordsTimer = window.setTimeout(function () {
      if (coordsRequest) {
        coordsRequest.abort();
      }
      coordsRequest = new AbortController();
      getJSON(config.coordsUrl + "?lon=" + latlng.lng.toFixed(7) + "&lat=" + latlng.lat.toFixed(7), { signal: coordsRequest.signal })
        .then(function (xy) {
          coordsBox.textContent = (prefix ? prefix + ": " : "") + wgs +
            " · Stereo 70 E " + number(xy.x, 2) + " N " + number(xy.y, 2);
        })
        .catch(function () { /* outside Romania: WGS84 only */ });
    }, 250);
  }
  map.on("mousemove", function (event) { showCoordinates(event.latlng); });
  map.on("moveend", function () { showCoordinates(map.getCenter(), M("coords.centre")); });

  // -- GeoJSON overlays by bounding box -------------------------------------------------
  var ORDER = ["boundary", "intravilan", "zones", "restrictions"];
  var PANE_Z = {
    boundary: 440, intravilan: 405, zones: 400, drafts: 407, restrictions: 410, acts: 415,
    parcels: 420, footprint: 455, labels: 460, selection: 450
  };
  Object.keys(PANE_Z).forEach(function (name) {
    map.createPane("pane-" + name).style.zIndex = String(PANE_Z[name]);
  });
  var STYLES = {
    boundary: function () { return { color: "#1b1b1b", weight: 3, dashArray: "10 5", fill: false }; },
    intravilan: function () { return { color: "#8c5a00", weight: 2, fillColor: "#f3d9a4", fillOpacity: 0.12 }; },
    zones: function (feature) {
      var colour = zoneColour(feature.properties["function"], feature.properties.utr_code);
      return { color: colour, weight: 1, fillColor: colour, fillOpacity: 0.4 };
    },
    restrictions: function () {
      return { color: "#c62828", weight: 1.5, dashArray: "4 3", fillColor: "#c62828", fillOpacity: 0.08 };
    }
  };
  var overlays = {};
  var geoLayers = {};
  ORDER.forEach(function (name) {
    geoLayers[name] = {
      name: name,
      loaded: null,
      request: null,
      layer: L.geoJSON(null, { pane: "pane-" + name, style: STYLES[name], interactive: false })
    };
  });

  function clamp(value, low, high) { return Math.min(high, Math.max(low, value)); }

  function boxOf(bounds) {
    return [
      clamp(bounds.getWest(), -180, 180), clamp(bounds.getSouth(), -90, 90),
      clamp(bounds.getEast(), -180, 180), clamp(bounds.getNorth(), -90, 90)
    ];
  }

  var pending = 0;
  function settle(delta) {
    pending += delta;
    element.dataset.ready = pending === 0 ? "1" : "0";
  }

  function refresh(entry) {
    if (!map.hasLayer(entry.layer)) {
      return;
    }
    var view = map.getBounds();
    if (entry.loaded && entry.loaded.contains(view)) {
      return;
    }
    var wanted = view.pad(0.25);
    var box = boxOf(wanted);
    if (!(box[0] < box[2] && box[1] < box[3])) {
      return;
    }
    if (entry.request) {
      entry.request.abort();
    }
    var request = new AbortController();
    entry.request = request;
    settle(1);
    var url = dataUrl.replace("{layer}", entry.name) + "?bbox=" +
      encodeURIComponent(box.map(function (v) { return v.toFixed(6); }).join(","));
    fetch(url, { signal: request.signal, headers: { Accept: "application/geo+json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (collection) {
        entry.layer.clearLayers();
        entry.layer.addData(collection);
        entry.loaded = collection.limitReached ? null : wanted;
        setMessage(entry.name, collection.limitReached
          ? M("toomany", { layer: M("layers." + entry.name), count: collection.numberReturned }) : null);
        if (entry.name === "zones") {
          collection.features.forEach(function (f) {
            legendFunctions[f.properties["function"]] = zoneColour(f.properties["function"], f.properties.utr_code);
          });
          legend.show();
        }
      })
      .catch(function (error) {
        if (error.name !== "AbortError") {
          setMessage(entry.name, M("loadfailed", { layer: M("layers." + entry.name) }));
        }
      })
      .then(function () { settle(-1); });
  }

  // -- parcels: vector tiles, with cadastral numbers at large scales -------------------
  var parcelsLayer;
  if (config.vectorGrid && L.vectorGrid) {
    parcelsLayer = L.vectorGrid.protobuf(config.parcelTilesUrl, {
      pane: "pane-parcels",
      rendererFactory: L.canvas.tile,
      interactive: false,
      minZoom: parcelsMinZoom - 2,
      maxNativeZoom: 19,
      maxZoom: 20,
      vectorTileLayerStyles: {
        parcels: { weight: 0.8, color: "#4a3b1f", fill: true, fillColor: "#ffffff", fillOpacity: 0.05 }
      }
    });
    parcelsLayer.on("loading", function () { settle(1); });
    parcelsLayer.on("load", function () { settle(-1); });
  } else {
    parcelsLayer = L.layerGroup();
  }
  parcelsLayer.options.pane = "pane-parcels";

  // The public register of acts (CU, AC, AD) on their sites, coloured by effective status.
  var ACT_COLOURS = { issued: "#d94801", extended: "#d94801", expired: "#7a7a7a", completed: "#54278f", cancelled: "#a11" };
  var actsLayer = L.layerGroup();
  if (config.vectorGrid && L.vectorGrid && config.actsTilesUrl) {
    actsLayer = L.vectorGrid.protobuf(config.actsTilesUrl, {
      pane: "pane-acts",
      rendererFactory: L.canvas.tile,
      interactive: false,
      minZoom: 13,
      maxNativeZoom: 19,
      maxZoom: 20,
      vectorTileLayerStyles: {
        acts: function (properties) {
          var colour = ACT_COLOURS[properties.status] || "#d94801";
          return { weight: 2, color: colour, dashArray: "6 3", fill: true, fillColor: colour, fillOpacity: 0.12 };
        }
      }
    });
    actsLayer.on("loading", function () { settle(1); });
    actsLayer.on("load", function () { settle(-1); });
  }

  // Draft plans' zones, for planners only (the catalog gives their rows to planners).
  var draftsLayer = L.geoJSON(null, {
    pane: "pane-drafts",
    style: function () {
      return { color: "#6a1b9a", weight: 2, dashArray: "8 4", fillColor: "#ce93d8", fillOpacity: 0.25, className: "draft-zone" };
    },
    onEachFeature: function (feature, layer) {
      var p = feature.properties || {};
      layer.bindTooltip(el("span", null, "UTR " + p.utr_code + " · " + (p.plan || "") + " (" + M("plan.draft") + ")"));
    }
  });

  var labelsLayer = L.layerGroup();
  var labelsRequest = null;
  function refreshLabels() {
    if (!map.hasLayer(labelsLayer)) {
      return;
    }
    if (map.getZoom() < config.labelsMinZoom) {
      labelsLayer.clearLayers();
      return;
    }
    if (labelsRequest) {
      labelsRequest.abort();
    }
    labelsRequest = new AbortController();
    settle(1);
    var box = boxOf(map.getBounds().pad(0.1));
    getJSON(config.labelsUrl + "?bbox=" + box.map(function (v) { return v.toFixed(6); }).join(","), { signal: labelsRequest.signal })
      .then(function (collection) {
        labelsLayer.clearLayers();
        collection.features.forEach(function (f) {
          var c = f.geometry.coordinates;
          L.marker([c[1], c[0]], {
            pane: "pane-labels",
            interactive: false,
            keyboard: false,
            icon: L.divIcon({ className: "parcel-label", html: "", iconSize: null })
          }).addTo(labelsLayer).getElement().textContent = f.properties.n;
        });
      })
      .catch(function (error) {
        if (error.name !== "AbortError") {
          labelsLayer.clearLayers();
        }
      })
      .then(function () { settle(-1); });
  }

  function refreshParcelsMessage() {
    setMessage("parcels", map.getZoom() < parcelsMinZoom - 2 && map.hasLayer(parcelsLayer)
      ? M("parcels.zoom", { zoom: parcelsMinZoom - 2 }) : null);
  }

  ORDER.forEach(function (name) {
    overlays[M("layers." + name)] = geoLayers[name].layer;
    geoLayers[name].layer.addTo(map);
  });
  overlays[M("layers.parcels")] = parcelsLayer;
  overlays[M("layers.labels")] = labelsLayer;
  overlays[M("layers.acts")] = actsLayer;
  parcelsLayer.addTo(map);
  labelsLayer.addTo(map);
  actsLayer.addTo(map);

  var selectionLayer = L.geoJSON(null, {
    pane: "pane-selection",
    interactive: false,
    style: function () {
      return { color: "#0b3d91", weight: 4, fillColor: "#1f6fd1", fillOpacity: 0.2, className: "selected-parcel" };
    }
  }).addTo(map);
  overlays[M("layers.selection")] = selectionLayer;

  var layersControl = L.control.layers(baseLayers, overlays, { collapsed: window.innerWidth < 700 }).addTo(map);

  function refreshAll() {
    ORDER.forEach(function (name) { refresh(geoLayers[name]); });
    refreshLabels();
    refreshParcelsMessage();
  }
  map.on("moveend", refreshAll);
  map.on("overlayadd", function (event) {
    ORDER.forEach(function (name) {
      if (geoLayers[name].layer === event.layer) {
        geoLayers[name].loaded = null;
        refresh(geoLayers[name]);
      }
    });
    if (event.layer === labelsLayer) {
      refreshLabels();
    }
  });

  // -- the parcel card ------------------------------------------------------------------
  var card = document.getElementById("card");
  var role = "public";
  var cardRequest = null;
  var currentNumbers = [];

  function closeCard() {
    card.hidden = true;
    card.textContent = "";
    delete element.dataset.card;
    delete element.dataset.panel;
    if (drawing) {
      stopDrawing();
    }
    map.invalidateSize();
  }

  function cardShell(title) {
    card.textContent = "";
    card.hidden = false;
    delete element.dataset.panel;
    var header = el("div", "card-header");
    var heading = el("h2", null, title);
    heading.id = "card-title";
    header.appendChild(heading);
    var close = el("button", "card-close", "×");
    close.type = "button";
    close.setAttribute("aria-label", M("card.close"));
    close.addEventListener("click", function () { closeCard(); element.focus(); });
    header.appendChild(close);
    card.appendChild(header);
    card.setAttribute("aria-labelledby", "card-title");
    map.invalidateSize();
    return card;
  }

  function rowsTable(rows) {
    var table = el("table", "facts");
    rows.forEach(function (row) {
      var tr = table.insertRow();
      var th = el("th", null, row[0]);
      th.scope = "row";
      tr.appendChild(th);
      var value = row[1];
      tr.insertCell().textContent = value === null || value === undefined || value === "" ||
        (Array.isArray(value) && value.length === 0) ? "—" : (Array.isArray(value) ? value.join("; ") : value);
    });
    return table;
  }

  function section(title) {
    var part = el("section", "card-section");
    part.appendChild(el("h3", null, title));
    card.appendChild(part);
    return part;
  }

  function share(value) {
    var v = Number(value || 0);
    if (v >= 0.995) { return M("yes"); }
    if (v <= 0.005) { return M("no"); }
    return M("partly") + " (" + Math.round(v * 100) + " %)";
  }

  function inside(part) {
    part = part || {};
    if (part.inside === "inside") { return M("yes"); }
    if (part.inside === "outside") { return M("no"); }
    if (part.inside === "partly") { return M("partly") + " (" + Math.round(Number(part.share || 0) * 100) + " %)"; }
    return M("unknown");
  }

  function zoneBox(zone) {
    var plan = zone.plan || {};
    var rules = zone.rules || {};
    var box = el("div", "zone");
    var title = el("h4", "zone-title");
    var swatch = el("span", "swatch");
    swatch.style.backgroundColor = zoneColour(zone["function"], zone.utr_code);
    title.appendChild(swatch);
    title.appendChild(document.createTextNode("UTR " + zone.utr_code + (zone.name ? " – " + zone.name : "")));
    box.appendChild(title);
    if (zone.overridden_by && zone.overridden_by.length) {
      box.classList.add("overridden");
      box.appendChild(el("p", "muted", M("card.overridden") + ": " + zone.overridden_by.join(", ")));
    }
    box.appendChild(rowsTable([
      [M("card.plan"), [plan.title, plan.hcl_number ? M("card.hcl") + " " + plan.hcl_number : null].filter(Boolean).join(", ")],
      [M("card.function"), functionName(zone["function"])],
      [M("card.share"), zone.share === undefined || zone.share === null ? null : Math.round(Number(zone.share) * 1000) / 10 + " %"],
      [M("card.pot"), rules.pot_max === null || rules.pot_max === undefined ? null : number(rules.pot_max) + " %"],
      [M("card.cut"), number(rules.cut_max)],
      [M("card.height"), rules.height_max_m === null || rules.height_max_m === undefined ? null : number(rules.height_max_m) + " m"],
      [M("card.regime"), rules.height_regime],
      [M("card.minplot"), area(rules.min_plot_area)],
      [M("card.allowed"), rules.allowed_uses],
      [M("card.conditional"), rules.conditional_uses],
      [M("card.forbidden"), rules.forbidden_uses]
    ]));
    return box;
  }

  function restrictionItem(item) {
    var li = el("li");
    li.appendChild(el("strong", null, item.name));
    li.appendChild(document.createTextNode(" (" + (messages["restriction." + item.kind] || item.kind) + ")"));
    if (!item.intersects) {
      li.appendChild(el("div", "muted", M("card.nearby", { distance: number(item.distance, 0) })));
    }
    if (item.legal_source) {
      li.appendChild(el("div", "source", item.legal_source));
    }
    return li;
  }

  function actItem(act) {
    var parts = [(messages["act." + act.kind] || act.kind) + " " + act.number, act.issued_on,
      messages["actstatus." + act.status] || act.status, act.purpose];
    if (act.valid_until) {
      parts.push(M("card.validuntil") + " " + act.valid_until);
    }
    var li = el("li", "act act-" + act.status, parts.filter(Boolean).join(" · "));
    li.dataset.act = act.kind + " " + act.number;
    return li;
  }

  function listSection(title, items, empty, tag, className, render) {
    var part = section(title);
    if (!items.length) {
      part.appendChild(el("p", null, empty));
      return;
    }
    var list = el(tag, className);
    items.forEach(function (item) { list.appendChild(render(item)); });
    part.appendChild(list);
  }

  // The card is the JSON API's parcel status of one imobil (``parcels`` holds it).
  function renderCard(data) {
    var parcel = (data.parcels && data.parcels[0]) || {};
    var cadastralNumber = parcel.cadastral_number;
    cardShell(M("card.title") + " " + cadastralNumber);
    var facts = el("section", "card-section");
    facts.appendChild(rowsTable([
      [M("card.cadastral"), cadastralNumber],
      [M("card.landbook"), parcel.land_book_number],
      [M("card.area"), area(parcel.measured_area)],
      [M("card.address"), parcel.address],
      [M("card.use"), parcel.use_category],
      [M("card.uat"), inside(data.uat)],
      [M("card.intravilan"), inside(data.intravilan)]
    ]));
    card.appendChild(facts);
    if (data.verdict) {
      var verdict = el("p", "verdict verdict-" + data.verdict);
      verdict.appendChild(el("strong", null, M("card.verdict") + ": " + (messages["check." + data.verdict] || data.verdict)));
      verdict.id = "card-verdict";
      card.appendChild(verdict);
      if ((data.reasons || []).length) {
        var reasonList = el("ul", "reasons");
        data.reasons.forEach(function (reason) { reasonList.appendChild(el("li", null, reason.message)); });
        card.appendChild(reasonList);
      }
    }
    listSection(M("card.zones"), data.zones || [], M("card.nozones"), "div", "zones", zoneBox);
    listSection(M("card.restrictions"), data.restrictions || [], M("card.norestrictions"), "ul", "restrictions", restrictionItem);
    listSection(M("card.acts"), data.acts || [], M("card.noacts"), "ul", "acts", actItem);
    var links = el("p", "card-links");
    var extract = el("a", "button-link", M("card.extract"));
    extract.href = config.extractUrl.replace("{number}", encodeURIComponent(cadastralNumber)) + "?lang=" + lang;
    extract.id = "extract-link";
    extract.setAttribute("download", "");
    links.appendChild(extract);
    var permalink = el("a", null, M("card.link"));
    permalink.href = window.location.pathname + "?parcel=" + encodeURIComponent(cadastralNumber);
    links.appendChild(permalink);
    card.appendChild(links);
    if (data.valid_for) {
      card.appendChild(el("p", "muted", M("card.asof") + " " + data.valid_for));
    }
    if (role === "clerk" || role === "admin") {
      clerkCardTools(cadastralNumber);
    }
    element.dataset.card = cadastralNumber;
  }

  function openCard(cadastralNumber, options) {
    options = options || {};
    if (cardRequest) {
      cardRequest.abort();
    }
    cardRequest = new AbortController();
    cardShell(M("card.title") + " " + cadastralNumber);
    if (!config.cardUrl) {  // the JSON API is not installed on this server
      card.appendChild(el("p", "error-text", M("card.error")));
      return Promise.resolve();
    }
    card.appendChild(el("p", "muted", M("card.loading")));
    return getJSON(config.cardUrl.replace("{cadastral_number}", encodeURIComponent(cadastralNumber)), { signal: cardRequest.signal })
      .then(function (data) {
        renderCard(data);
        if (options.select !== false) {
          select([cadastralNumber], { zoom: options.zoom, keepCard: true });
        }
        if (options.focus !== false) {
          card.focus();
        }
      })
      .catch(function (error) {
        if (error.name === "AbortError") {
          return;
        }
        cardShell(M("card.title") + " " + cadastralNumber);
        card.appendChild(el("p", "error-text", error.status === 404 ? M("card.notfound") : M("card.error") + " (" + error.message + ")"));
        element.dataset.card = "!" + cadastralNumber;
      });
  }

  function select(numbers, options) {
    options = options || {};
    currentNumbers = numbers;
    return getJSON(config.selectionUrl + "?parcels=" + encodeURIComponent(numbers.join(",")))
      .then(function (collection) {
        selectionLayer.clearLayers();
        selectionLayer.addData(collection);
        var b = collection.bbox;
        if (b && options.zoom !== false) {
          map.fitBounds([[b[1], b[0]], [b[3], b[2]]], { padding: [40, 40], maxZoom: 19 });
        }
        element.dataset.selection = collection.features.map(function (f) { return f.id; }).join(",");
        return collection;
      });
  }

  function showSelectionCard(collection) {
    cardShell(collection.features.length + " " + M("card.several"));
    var list = el("ul", "selection-list");
    collection.features.forEach(function (feature) {
      var li = el("li");
      var button = el("button", "link-button", feature.id);
      button.type = "button";
      button.addEventListener("click", function () { openCard(feature.id, { zoom: false }); });
      li.appendChild(button);
      if (feature.properties.address) {
        li.appendChild(document.createTextNode(" – " + feature.properties.address));
      }
      list.appendChild(li);
    });
    card.appendChild(list);
    if (collection.not_found && collection.not_found.length) {
      card.appendChild(el("p", "error-text", M("card.missing") + ": " + collection.not_found.join(", ")));
    }
    element.dataset.card = "selection";
  }

  map.on("click", function (event) {
    if (drawing) {
      return;
    }
    var ll = event.latlng;
    if (!config.atUrl) {
      return;
    }
    getJSON(config.atUrl + "?lon=" + ll.lng.toFixed(7) + "&lat=" + ll.lat.toFixed(7))
      .then(function (found) {
        if (found.parcels.length) {
          openCard(found.parcels[0].cadastral_number, { zoom: false, focus: false });
        }
      })
      .catch(function () { /* a click outside the municipality selects nothing */ });
  });

  // -- staff -------------------------------------------------------------------------
  function isClerk() { return role === "clerk" || role === "admin"; }
  function isPlanner() { return role === "planner" || role === "admin"; }

  // Owners are personal data: only the catalog's per-role field gives them, to clerks.
  function clerkCardTools(cadastralNumber) {
    var part = section(M("card.staff"));
    part.classList.add("staff-tools");
    var owners = el("div", "owners");
    owners.appendChild(el("h4", null, M("card.owners")));
    part.appendChild(owners);
    var filter = "cadastral_number='" + String(cadastralNumber).replace(/'/g, "''") + "'";
    getJSON(config.featuresUrl.replace("{collection_id}", "parcels") + "?filter=" + encodeURIComponent(filter) +
      "&filter-lang=cql2-text&properties=cadastral_number,owners&limit=5", { headers: { Accept: "application/geo+json" } })
      .then(function (collection) {
        var names = (collection.features || []).map(function (f) { return f.properties.owners; }).filter(Boolean);
        owners.appendChild(el("p", "owner-names", names.length ? names.join("; ") : M("card.noowners")));
      })
      .catch(function (error) { owners.appendChild(el("p", "error-text", error.message)); });
    if (canDraw()) {
      var draw = el("button", null, M("clerk.drawhere"));
      draw.type = "button";
      draw.addEventListener("click", function () { startDrawing(cadastralNumber); });
      part.appendChild(draw);
    }
  }

  // Panels (staff tools) share the side sheet with the parcel card.
  function showPanel(name, title) {
    cardShell(title);
    delete element.dataset.card;
    element.dataset.panel = name;
    return card;
  }

  var staffBar = document.getElementById("staff-bar");
  function staffButton(id, text, onClick) {
    var button = el("button", null, text);
    button.type = "button";
    button.id = id;
    button.addEventListener("click", onClick);
    staffBar.appendChild(button);
    return button;
  }

  function buildStaffBar() {
    staffBar.textContent = "";
    if (isClerk() && canDraw()) {
      staffButton("draw-footprint", M("clerk.draw"), function () { startDrawing(currentCardNumber()); });
    }
    if (isClerk() && config.queueUrl) {
      var queue = el("a", "queue-link", M("clerk.queue"));
      queue.href = config.queueUrl;
      queue.id = "queue-link";
      staffBar.appendChild(queue);
      if (config.queueApiUrl) {
        getJSON(config.queueApiUrl + "?limit=1").then(function (answer) {
          var open = Object.keys(answer.counts || {}).reduce(function (sum, k) { return sum + answer.counts[k]; }, 0);
          queue.textContent = M("clerk.queue") + " (" + open + ")";
          queue.dataset.open = String(open);
        }).catch(function () { /* the link still works */ });
      }
    }
    if (isPlanner() && (config.analysisUrl || config.draftsUrl)) {
      staffButton("planner-panel", M("planner.open"), openPlannerPanel);
    }
    staffBar.hidden = staffBar.childNodes.length === 0;
  }

  function currentCardNumber() {
    var shown = element.dataset.card;
    return shown && shown.charAt(0) !== "!" && shown !== "selection" ? shown : "";
  }

  // -- clerks: draw a footprint, validate it against the rules (issue 4 item 3) -----------
  var drawing = false;
  var footprintLayer = null;
  var drawForNumber = "";

  function canDraw() {
    return Boolean(config.geoman && map.pm && config.validationUrl);
  }

  function startDrawing(cadastralNumber) {
    drawForNumber = cadastralNumber || "";
    if (footprintLayer) {
      map.removeLayer(footprintLayer);
      footprintLayer = null;
    }
    drawing = true;
    element.dataset.drawing = "1";
    var panel = showPanel("validation", M("clerk.title"));
    panel.appendChild(el("p", "muted", M("clerk.howto")));
    map.pm.enableDraw("Polygon", { snappable: true, continueDrawing: false, pathOptions: { pane: "pane-footprint" } });
  }

  function stopDrawing() {
    drawing = false;
    delete element.dataset.drawing;
    if (map.pm) {
      map.pm.disableDraw();
    }
  }

  function field(form, id, labelText, input) {
    var p = el("p", "form-row");
    var lab = el("label", null, labelText);
    lab.htmlFor = id;
    input.id = id;
    input.name = id;
    p.appendChild(lab);
    p.appendChild(input);
    form.appendChild(p);
    return input;
  }

  function numberInput(step) {
    var input = el("input");
    input.type = "number";
    input.min = "0";
    input.step = step;
    input.inputMode = "decimal";
    return input;
  }

  function validationForm(layer) {
    var panel = showPanel("validation", M("clerk.title"));
    var form = el("form", "validation-form");
    form.noValidate = false;
    var kind = field(form, "validation-kind", M("clerk.kind"), el("select"));
    ["AC", "CU", "AD"].forEach(function (code) {
      var option = el("option", null, messages["act." + code] || code);
      option.value = code;
      kind.appendChild(option);
    });
    var numbers = field(form, "validation-numbers", M("clerk.numbers"), el("input"));
    numbers.value = drawForNumber;
    numbers.autocomplete = "off";
    var use = field(form, "validation-use", M("clerk.use"), el("input"));
    use.maxLength = 300;
    var floor = field(form, "validation-floor", M("clerk.floor"), numberInput("0.01"));
    var height = field(form, "validation-height", M("clerk.height"), numberInput("0.1"));
    var levels = field(form, "validation-levels", M("clerk.levels"), numberInput("1"));
    var buttons = el("p", "buttons");
    var submit = el("button", null, M("clerk.validate"));
    submit.type = "submit";
    submit.id = "validation-submit";
    buttons.appendChild(submit);
    var redraw = el("button", "secondary", M("clerk.redraw"));
    redraw.type = "button";
    redraw.addEventListener("click", function () { startDrawing(numbers.value.trim()); });
    buttons.appendChild(redraw);
    form.appendChild(buttons);
    panel.appendChild(form);
    var report = el("div", "validation-report");
    report.id = "validation-report";
    report.setAttribute("aria-live", "polite");
    panel.appendChild(report);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var proposed = {};
      [["gross_floor_area_m2", floor], ["height_m", height], ["levels", levels]].forEach(function (pair) {
        if (pair[1].value !== "") {
          proposed[pair[0]] = Number(pair[1].value);
        }
      });
      var body = { kind: kind.value, footprint: layer.toGeoJSON().geometry, proposed: proposed };
      var cited = numbers.value.split(/[,;\s]+/).filter(Boolean);
      if (cited.length) {
        body.cadastral_numbers = cited;
      }
      if (use.value.trim()) {
        body.intended_use = use.value.trim();
      }
      report.textContent = M("card.loading");
      submit.disabled = true;
      getJSON(config.validationUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body)
      }).then(function (answer) { showValidation(report, answer); })
        .catch(function (error) {
          report.textContent = "";
          report.appendChild(el("p", "error-text", M("clerk.failed") + ": " + error.message));
        })
        .then(function () { submit.disabled = false; });
    });
    kind.focus();
  }

  function showValidation(box, answer) {
    box.textContent = "";
    var outcome = el("p", "verdict verdict-" + ({ pass: "ok", warning: "attention", fail: "blocked" })[answer.outcome]);
    outcome.appendChild(el("strong", null, M("clerk.outcome") + ": " + (messages["result." + answer.outcome] || answer.outcome)));
    box.appendChild(outcome);
    box.dataset.outcome = answer.outcome;
    var table = el("table", "facts checks");
    (answer.checks || []).forEach(function (check) {
      var tr = table.insertRow();
      tr.className = "check check-" + check.result;
      tr.dataset.rule = check.rule;
      var th = el("th", null, messages["rule." + check.rule] || check.rule);
      th.scope = "row";
      tr.appendChild(th);
      tr.insertCell().textContent = (messages["result." + check.result] || check.result) + " – " + check.reason;
    });
    box.appendChild(table);
    var figures = answer.figures || {};
    box.appendChild(rowsTable([
      [M("clerk.plot"), area(figures.plot_area_m2)],
      [M("clerk.built"), area(figures.proposed_built_m2)],
      ["POT", figures.pot === undefined ? null : number(figures.pot) + " % (max " + (figures.pot_max === null ? "—" : number(figures.pot_max)) + " %)"],
      ["CUT", figures.cut === undefined ? null : number(figures.cut) + " (max " + (figures.cut_max === null ? "—" : number(figures.cut_max)) + ")"]
    ]));
  }

  if (map.pm) {
    map.pm.setLang(lang === "en" ? "en" : "ro");
    map.on("pm:create", function (event) {
      stopDrawing();
      footprintLayer = event.layer;
      footprintLayer.options.className = "footprint";
      if (footprintLayer.getElement && footprintLayer.getElement()) {
        footprintLayer.getElement().classList.add("footprint");
      }
      validationForm(footprintLayer);
    });
  }

  // -- planners: draft plans and the zone analysis ----------------------------------------
  var draftsLoaded = false;
  function loadDrafts() {
    if (draftsLoaded || !config.draftsUrl) {
      return Promise.resolve();
    }
    settle(1);
    return getJSON(config.draftsUrl, { headers: { Accept: "application/geo+json" } })
      .then(function (collection) {
        draftsLayer.clearLayers();
        draftsLayer.addData(collection);
        draftsLoaded = true;
        element.dataset.drafts = String(collection.features.length);
      })
      .catch(function (error) { setMessage("drafts", M("loadfailed", { layer: M("layers.drafts") }) + " (" + error.message + ")"); })
      .then(function () { settle(-1); });
  }

  function showDrafts(on) {
    if (on) {
      if (!layersControlHas(draftsLayer)) {
        layersControl.addOverlay(draftsLayer, M("layers.drafts"));
      }
      draftsLayer.addTo(map);
      loadDrafts().then(function () { legend.show(); });
    } else {
      map.removeLayer(draftsLayer);
      layersControl.removeLayer(draftsLayer);
      draftsLayer.clearLayers();
      draftsLoaded = false;
      delete element.dataset.drafts;
      legend.show();
    }
  }

  function layersControlHas(layer) {
    return layersControl._layers.some(function (entry) { return entry.layer === layer; });
  }

  var ANALYSIS_COLUMNS = [
    ["utr_code", "planner.utr"], ["plan_type", "planner.plan"], ["parcel_count", "planner.parcels"],
    ["pot", "planner.pot"], ["pot_max", "planner.potmax"], ["cut", "planner.cut"], ["cut_max", "planner.cutmax"],
    ["parcels_over_any", "planner.over"], ["remaining_floor_area", "planner.remaining"]
  ];

  function openPlannerPanel() {
    var panel = showPanel("planner", M("planner.title"));
    if (config.draftsUrl) {
      var toggle = el("p", "form-row inline");
      var box = el("input");
      box.type = "checkbox";
      box.id = "drafts-toggle";
      box.checked = map.hasLayer(draftsLayer);
      box.addEventListener("change", function () { showDrafts(box.checked); });
      var lab = el("label", null, M("layers.drafts"));
      lab.htmlFor = "drafts-toggle";
      toggle.appendChild(box);
      toggle.appendChild(lab);
      panel.appendChild(toggle);
    }
    if (!config.analysisUrl) {
      return;
    }
    var part = section(M("planner.analysis"));
    var status = el("p", "muted", M("card.loading"));
    part.appendChild(status);
    getJSON(config.analysisUrl + "?by=utr").then(function (answer) {
      status.textContent = M("planner.asof") + " " + String(answer.as_of).slice(0, 10) +
        (answer.acts ? " · " + answer.acts : "");
      var wrap = el("div", "table-wrap");
      var table = el("table", "analysis");
      table.id = "zone-analysis";
      table.appendChild(el("caption", "visually-hidden", M("planner.analysis")));
      var head = table.createTHead().insertRow();
      ANALYSIS_COLUMNS.forEach(function (column) {
        var th = el("th", null, M(column[1]));
        th.scope = "col";
        head.appendChild(th);
      });
      var body = table.createTBody();
      answer.zones.forEach(function (zone) {
        var tr = body.insertRow();
        tr.dataset.utr = zone.utr_code;
        ANALYSIS_COLUMNS.forEach(function (column) {
          var value = zone[column[0]];
          tr.insertCell().textContent = typeof value === "number" ? number(value, 2) : (value === null || value === undefined ? "—" : value);
        });
      });
      wrap.appendChild(table);
      part.appendChild(wrap);
    }).catch(function (error) {
      status.className = "error-text";
      status.textContent = M("card.error") + " (" + error.message + ")";
    });
  }

  var whoami = document.getElementById("whoami");
  var loginOpen = document.getElementById("login-open");
  var logout = document.getElementById("logout");
  var dialog = document.getElementById("login-dialog");
  var loginForm = document.getElementById("login-form");
  var loginError = document.getElementById("login-error");

  function setRole(answer) {
    role = answer.role || "public";
    var staff = role !== "public" && role !== "portal";
    document.body.dataset.role = role;
    whoami.hidden = !staff;
    whoami.textContent = staff ? (answer.login || "") + " (" + (messages["role." + role] || role) + ")" : "";
    loginOpen.hidden = staff;
    logout.hidden = !staff;
    buildStaffBar();
    if (!isPlanner() && map.hasLayer(draftsLayer)) {
      showDrafts(false);
    }
    if (element.dataset.panel && !staff) {
      stopDrawing();
      closeCard();
    }
    if (!isClerk() && footprintLayer) {
      map.removeLayer(footprintLayer);
      footprintLayer = null;
    }
    var shown = currentCardNumber();
    if (shown) {
      openCard(shown, { select: false, focus: false });
    }
  }

  loginOpen.addEventListener("click", function () {
    loginError.hidden = true;
    if (dialog.showModal) {
      dialog.showModal();
    } else {
      dialog.setAttribute("open", "");
    }
    document.getElementById("login-user").focus();
  });
  document.getElementById("login-cancel").addEventListener("click", function () { dialog.close(); });
  loginForm.addEventListener("submit", function (event) {
    event.preventDefault();
    getJSON(config.loginUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({
        login: document.getElementById("login-user").value,
        password: document.getElementById("login-password").value
      })
    }).then(function (answer) {
      document.getElementById("login-password").value = "";
      dialog.close();
      setRole(answer);
      logout.focus();
    }).catch(function () {
      loginError.textContent = M("login.failed");
      loginError.hidden = false;
    });
  });
  logout.addEventListener("click", function () {
    getJSON(config.logoutUrl, { method: "POST" }).then(function (answer) {
      setRole(answer);
      loginOpen.focus();
    });
  });
  getJSON(config.whoamiUrl).then(setRole).catch(function () { setRole({ role: "public" }); });

  // -- search with autocompletion --------------------------------------------------------
  var form = document.getElementById("search");
  var input = document.getElementById("search-input");
  var results = document.getElementById("search-results");
  var searchStatus = document.getElementById("search-status");
  var searchTimer = null;
  var searchRequest = null;
  var hits = [];
  var active = -1;

  function closeResults() {
    results.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  }

  function choose(hit) {
    closeResults();
    input.value = hit.label;
    if (hit.cadastral_number) {
      openCard(hit.cadastral_number, { zoom: true });
    } else if (hit.bbox) {
      map.fitBounds([[hit.bbox[1], hit.bbox[0]], [hit.bbox[3], hit.bbox[2]]], { padding: [30, 30], maxZoom: 18 });
      map.getContainer().focus();
    } else if (hit.lat !== undefined) {
      map.setView([hit.lat, hit.lon], 18);
    }
  }

  function highlight(index) {
    var items = results.querySelectorAll("[role=option]");
    items.forEach(function (item, i) { item.setAttribute("aria-selected", i === index ? "true" : "false"); });
    active = index;
    if (index >= 0 && items[index]) {
      input.setAttribute("aria-activedescendant", items[index].id);
      items[index].scrollIntoView({ block: "nearest" });
    }
  }

  function showResults(list) {
    hits = list;
    results.textContent = "";
    if (!list.length) {
      results.appendChild(el("li", "no-results", M("search.none")));
    }
    list.forEach(function (hit, index) {
      var item = el("li", "hit hit-" + hit.kind);
      item.id = "search-hit-" + index;
      item.setAttribute("role", "option");
      item.setAttribute("aria-selected", "false");
      item.appendChild(el("span", "hit-kind", M("search." + hit.kind)));
      item.appendChild(el("span", "hit-label", hit.label));
      if (hit.detail && hit.kind !== "parcel") {
        item.appendChild(el("span", "hit-detail", hit.detail));
      } else if (hit.detail) {
        item.appendChild(el("span", "hit-detail", hit.detail));
      }
      item.addEventListener("mousedown", function (event) { event.preventDefault(); });
      item.addEventListener("click", function () { choose(hit); });
      results.appendChild(item);
    });
    results.hidden = false;
    input.setAttribute("aria-expanded", "true");
    searchStatus.textContent = list.length + " " + M("search.results");
  }

  function runSearch(text, then) {
    if (searchRequest) {
      searchRequest.abort();
    }
    searchRequest = new AbortController();
    return getJSON(config.searchUrl + "?q=" + encodeURIComponent(text), { signal: searchRequest.signal })
      .then(function (answer) {
        results.dataset.query = text;  // which query the list answers (tests wait on it)
        showResults(answer.results);
        if (then) {
          then(answer.results);
        }
      })
      .catch(function (error) {
        if (error.name !== "AbortError") {
          showResults([]);
        }
      });
  }

  input.addEventListener("input", function () {
    window.clearTimeout(searchTimer);
    var text = input.value.trim();
    if (text.length < 2) {
      closeResults();
      return;
    }
    searchTimer = window.setTimeout(function () { runSearch(text); }, 180);
  });
  input.addEventListener("keydown", function (event) {
    var count = results.hidden ? 0 : hits.length;
    if (event.key === "ArrowDown" && count) {
      event.preventDefault();
      highlight((active + 1) % count);
    } else if (event.key === "ArrowUp" && count) {
      event.preventDefault();
      highlight(active <= 0 ? count - 1 : active - 1);
    } else if (event.key === "Escape") {
      closeResults();
    } else if (event.key === "Enter" && active >= 0 && hits[active]) {
      event.preventDefault();
      choose(hits[active]);
    }
  });
  input.addEventListener("blur", function () { window.setTimeout(closeResults, 150); });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    window.clearTimeout(searchTimer);
    var text = input.value.trim();
    if (!text) {
      return;
    }
    runSearch(text, function (list) {
      // One exact answer (a cadastral number, or an address's parcel) opens at once.
      var first = list[0];
      if (first && (list.length === 1 || (first.kind === "parcel" && first.label === text) ||
          (first.kind === "address" && plainText(first.label).indexOf(plainText(text)) === 0))) {
        choose(first);
      } else if (list.length) {
        highlight(0);
      }
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && !card.hidden && document.activeElement && card.contains(document.activeElement)) {
      closeCard();
      element.focus();
    }
  });

  // -- deep links ----------------------------------------------------------------------
  refreshAll();
  if (deepLink && deepLink.parcels) {
    if (deepLink.parcels.length === 1) {
      openCard(deepLink.parcels[0], { zoom: true, focus: false });
    } else {
      select(deepLink.parcels, { zoom: true }).then(showSelectionCard);
    }
  }
  window.urbangisMap = { map: map, openCard: openCard, select: select, layers: layersControl, selected: function () { return currentNumbers; } };
})();
