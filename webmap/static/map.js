/*
 * The first urbangis web map: Leaflet, layers loaded by the bounding box in view.
 *
 * Everything the page needs comes from this server (Leaflet from /static/vendor/, data
 * from /map/data/<layer>.geojson); only the optional OSM base map is online. The page
 * passes its settings in data-* attributes because the Content-Security-Policy forbids
 * inline scripts. Feature text is put into popups with textContent, never as HTML.
 */
(function () {
  "use strict";

  var element = document.getElementById("map");
  if (!element) {
    return;
  }
  if (typeof L === "undefined") {
    element.classList.add("map-unavailable");
    element.textContent =
      "Harta nu poate fi afișată: biblioteca Leaflet lipsește. " +
      "The map cannot be shown: the Leaflet library is missing.";
    return;
  }

  var config = element.dataset;
  var titles = JSON.parse(config.layers);
  var parcelsMinZoom = Number(config.parcelsMinZoom);
  var isDemo = config.demo === "true";
  // Draw order from bottom to top; parcels last so a click inside one opens its popup.
  var ORDER = ["zones", "intravilan", "restrictions", "boundary", "parcels"];
  var PANE_Z = { zones: 410, intravilan: 420, restrictions: 430, boundary: 440, parcels: 450 };
  var RESTRICTION_KINDS = {
    heritage: "patrimoniu",
    protected_area: "arie protejată",
    flood: "zonă inundabilă",
    easement: "zonă de protecție / servitute",
    airport: "zonă aeroport",
    natura2000: "Natura 2000",
    landslide: "alunecări de teren",
    other: "altă restricție"
  };

  var map = L.map(element, { minZoom: 5, maxZoom: 19, zoomSnap: 0.25 });
  var extent = config.extent.split(",").map(Number);

  // The view lives in the address (#zoom/lat/lon, like openstreetmap.org), so a link
  // or a reload opens the same place.
  var HASH = /^#(\d+(?:\.\d+)?)\/(-?\d+(?:\.\d+)?)\/(-?\d+(?:\.\d+)?)$/;
  var linked = HASH.exec(window.location.hash);
  if (linked) {
    map.setView([Number(linked[2]), Number(linked[3])], Number(linked[1]));
  } else {
    map.fitBounds([[extent[1], extent[0]], [extent[3], extent[2]]], { padding: [8, 8] });
  }
  map.on("moveend", function () {
    var centre = map.getCenter();
    var hash = "#" + map.getZoom() + "/" + centre.lat.toFixed(5) + "/" + centre.lng.toFixed(5);
    window.history.replaceState(null, "", hash);
  });
  L.control.scale({ imperial: false, maxWidth: 150 }).addTo(map);

  var baseLayers = {};
  var osm = null;
  if (config.tilesUrl) {
    osm = L.tileLayer(config.tilesUrl, { maxZoom: 19 });
    baseLayers.OpenStreetMap = osm;
  }
  baseLayers["Fără fundal (none)"] = L.layerGroup();
  (osm || baseLayers["Fără fundal (none)"]).addTo(map);

  var attribution = null;
  function updateAttribution() {
    var parts = [];
    if (isDemo) {
      parts.push("Date sintetice (demo)");
    }
    if (osm && map.hasLayer(osm)) {
      parts.push(
        '© <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
      );
    }
    var text = parts.join(" · ");
    if (attribution) {
      map.attributionControl.removeAttribution(attribution);
    }
    attribution = text || null;
    if (attribution) {
      map.attributionControl.addAttribution(attribution);
    }
  }
  map.attributionControl.setPrefix(false);
  map.on("baselayerchange", updateAttribution);
  updateAttribution();

  // -- colours of zone functions ------------------------------------------------------
  // First match wins (names compared in lower case without diacritics, Romanian or
  // English), so the more specific words come first: "transport" must not be caught by
  // "sport", nor "agricultural" by "cultur(al)". Functions no rule knows get a stable colour derived from their name.
  var FUNCTION_COLOURS = [
    [/\btransport|\bcai de|circulat|\bstrad|ferovia|aeroport|\broad|\brail/, "#9a9a9a"],
    [/\bcentr/, "#d1495b"],
    [/\blocu|residen|housing/, "#f2c14e"],
    [/\bmixt|\bmixed/, "#e8845c"],
    [/agric|\bfarm/, "#c7df8f"],
    [/servic|comer|institu|echipam|public|social|cultur|sanat|invatam|educat|health/, "#cf5c9e"],
    [/industr|produc|econom|depozit|logist/, "#8e6bbf"],
    [/\bverde|\bverzi|\bgreen|\bparc|\bpark|agrement|\bsport|recrea|padur|forest/, "#5aa75a"],
    [/\bape\b|hidro|luciu|water/, "#6fa8dc"],
    [/gospod|tehnic|edilit|cimitir|utilit|cemeter/, "#8a8a5c"]
  ];

  function plainText(text) {
    return String(text || "")
      .toLowerCase()
      .normalize("NFD")
      .replace(/[\u0300-\u036f]/g, "");
  }

  function zoneFunction(properties) {
    return properties["function"] || "nespecificată";
  }

  function zoneColour(name) {
    var key = plainText(name);
    for (var i = 0; i < FUNCTION_COLOURS.length; i += 1) {
      if (FUNCTION_COLOURS[i][0].test(key)) {
        return FUNCTION_COLOURS[i][1];
      }
    }
    var hash = 0;
    for (var j = 0; j < key.length; j += 1) {
      hash = (hash * 31 + key.charCodeAt(j)) % 360;
    }
    return "hsl(" + hash + ", 45%, 60%)";
  }

  var STYLES = {
    boundary: function () {
      return { color: "#1b1b1b", weight: 3, dashArray: "10 5", fill: false };
    },
    intravilan: function () {
      return { color: "#8c5a00", weight: 2, fillColor: "#f3d9a4", fillOpacity: 0.12 };
    },
    zones: function (feature) {
      var colour = zoneColour(zoneFunction(feature.properties));
      return { color: colour, weight: 1, fillColor: colour, fillOpacity: 0.4 };
    },
    restrictions: function () {
      return { color: "#c62828", weight: 1.5, dashArray: "4 3", fillColor: "#c62828", fillOpacity: 0.08 };
    },
    parcels: function () {
      return { color: "#303030", weight: 0.8, fillColor: "#ffffff", fillOpacity: 0.05 };
    }
  };

  // -- popups -------------------------------------------------------------------------
  function popupContent(title, rows) {
    var root = document.createElement("div");
    root.className = "feature-popup";
    var heading = document.createElement("h3");
    heading.textContent = title;
    root.appendChild(heading);
    var table = document.createElement("table");
    rows.forEach(function (row) {
      var tr = table.insertRow();
      var th = document.createElement("th");
      th.textContent = row[0];
      tr.appendChild(th);
      tr.insertCell().textContent = row[1] === null || row[1] === undefined || row[1] === "" ? "—" : row[1];
    });
    root.appendChild(table);
    return root;
  }

  function area(value) {
    if (value === null || value === undefined) {
      return null;
    }
    return Number(value).toLocaleString("ro-RO", { maximumFractionDigits: 2 }) + " m²";
  }

  var POPUPS = {
    parcels: function (p) {
      return popupContent("Imobil " + p.cadastral_number, [
        ["Nr. cadastral", p.cadastral_number],
        ["Suprafață măsurată", area(p.measured_area)],
        ["Adresă", p.address_text]
      ]);
    },
    zones: function (p) {
      return popupContent("UTR " + p.utr_code, [
        ["Funcțiune", zoneFunction(p)],
        ["Plan", p.plan]
      ]);
    },
    restrictions: function (p) {
      return popupContent(p.name, [
        ["Tip", RESTRICTION_KINDS[p.kind] || p.kind],
        ["Sursă legală", p.legal_source]
      ]);
    }
  };

  // -- status line and legend ---------------------------------------------------------
  var messages = {};
  var StatusControl = L.Control.extend({
    options: { position: "bottomleft" },
    onAdd: function () {
      this.box = L.DomUtil.create("div", "map-status");
      return this.box;
    },
    show: function () {
      var lines = Object.keys(messages)
        .filter(function (name) { return messages[name]; })
        .map(function (name) { return messages[name]; });
      this.box.textContent = lines.join(" · ");
      this.box.hidden = lines.length === 0;
    }
  });
  var statusControl = new StatusControl().addTo(map);
  function setMessage(name, text) {
    messages[name] = text;
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
      var heading = document.createElement("h4");
      heading.textContent = "Funcțiuni (zone UTR)";
      this.box.appendChild(heading);
      names.forEach(function (name) {
        var item = document.createElement("div");
        var swatch = document.createElement("span");
        swatch.className = "swatch";
        swatch.style.backgroundColor = zoneColour(name);
        item.appendChild(swatch);
        item.appendChild(document.createTextNode(name));
        this.box.appendChild(item);
      }, this);
    }
  });
  var legend = new LegendControl().addTo(map);

  // -- data layers --------------------------------------------------------------------
  var layers = {};
  ORDER.forEach(function (name) {
    var pane = map.createPane("pane-" + name);
    pane.style.zIndex = String(PANE_Z[name]);
    var popup = POPUPS[name];
    layers[name] = {
      name: name,
      loaded: null, // bounds fetched last time, when they held every feature
      request: null,
      layer: L.geoJSON(null, {
        pane: "pane-" + name,
        style: STYLES[name],
        interactive: Boolean(popup),
        onEachFeature: popup
          ? function (feature, layer) {
              layer.bindPopup(function () { return popup(feature.properties); });
            }
          : undefined
      })
    };
  });

  function clamp(value, low, high) {
    return Math.min(high, Math.max(low, value));
  }

  function viewBox(bounds) {
    return [
      clamp(bounds.getWest(), -180, 180),
      clamp(bounds.getSouth(), -90, 90),
      clamp(bounds.getEast(), -180, 180),
      clamp(bounds.getNorth(), -90, 90)
    ];
  }

  function refresh(entry) {
    if (!map.hasLayer(entry.layer)) {
      return;
    }
    var view = map.getBounds();
    if (entry.name === "parcels" && map.getZoom() < parcelsMinZoom) {
      if (entry.request) {
        entry.request.abort();
      }
      entry.layer.clearLayers();
      entry.loaded = null;
      setMessage("parcels", "Parcelele apar de la zoom " + parcelsMinZoom + " (apropiați harta)");
      return;
    }
    if (entry.loaded && entry.loaded.contains(view)) {
      return;
    }
    var wanted = view.pad(0.25);
    var box = viewBox(wanted);
    if (!(box[0] < box[2] && box[1] < box[3])) {
      return;
    }
    if (entry.request) {
      entry.request.abort();
    }
    var request = new AbortController();
    entry.request = request;
    var url = config.dataUrl.replace("{layer}", entry.name) +
      "?bbox=" + encodeURIComponent(box.map(function (v) { return v.toFixed(6); }).join(","));
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
        setMessage(
          entry.name,
          collection.limitReached
            ? titles[entry.name] + ": prea multe obiecte, se arată primele " +
                collection.numberReturned + " (apropiați harta)"
            : null
        );
        if (entry.name === "zones") {
          collection.features.forEach(function (feature) {
            legendFunctions[zoneFunction(feature.properties)] = true;
          });
          legend.show();
        }
      })
      .catch(function (error) {
        if (error.name !== "AbortError") {
          setMessage(entry.name, titles[entry.name] + ": datele nu au putut fi încărcate (" + error.message + ")");
        }
      });
  }

  function refreshAll() {
    ORDER.forEach(function (name) { refresh(layers[name]); });
  }

  var overlays = {};
  ["boundary", "intravilan", "zones", "restrictions", "parcels"].forEach(function (name) {
    overlays[titles[name]] = layers[name].layer;
    layers[name].layer.addTo(map);
  });
  L.control.layers(baseLayers, overlays, { collapsed: false }).addTo(map);

  map.on("moveend", refreshAll);
  map.on("overlayadd", function (event) {
    ORDER.forEach(function (name) {
      if (layers[name].layer === event.layer) {
        layers[name].loaded = null;
        refresh(layers[name]);
      }
    });
  });
  refreshAll();
})();
