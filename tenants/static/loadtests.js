// Load-test pages: the compare form's 2-to-10 check, and the charts (Chart.js, vendored).
// Data comes from data-json attributes the server renders; no inline script, as the
// Content-Security-Policy requires. Every page still shows its tables without this file.
"use strict";

(function () {
  // Five shades per provider; a provider's sixth to tenth runs take the shades again, drawn
  // dashed (lines) and hatched (bars, swatches). Each run has its own marker as well.
  var PALETTES = {
    aws: ["#e8710a", "#9a3412", "#f4a340", "#c2410c", "#fcd9a8"],
    azure: ["#0b6bcb", "#1e3a8a", "#4aa3ff", "#0e7490", "#a9d4ff"],
    oci: ["#c74634", "#7f1d1d", "#ef7b6c", "#9f4a1c", "#f9c4bc"],
    gcp: ["#188038", "#0d5a26", "#5bb974", "#4d7c0f", "#b7e4c3"],
    other: ["#7c3aed", "#0891b2", "#db2777", "#4c1d95", "#65a30d"]
  };
  var MARKERS = ["circle", "rect", "triangle", "rectRot", "star", "crossRot", "rectRounded",
                 "cross", "dash", "line"];
  var DASH = [6, 4];
  var HATCH_GAP = "#ffffff";
  var MIN_COMPARED = 2;
  var MAX_COMPARED = 10;
  var UNRANKED_ALPHA = "59"; // about 35% opaque, appended to a #rrggbb colour

  function readJson(id) {
    var element = document.getElementById(id);
    return element ? JSON.parse(element.dataset.json) : null;
  }

  // Provider colours as in the original (Azure blue, OCI red, AWS orange): each run of a
  // provider gets a style no other compared run has (shade, and dashes/hatching beyond five).
  function styles(runs) {
    var used = {};
    var result = {};
    runs.forEach(function (run, position) {
      var provider = run.host.cloud_provider || "other";
      var palette = PALETTES[provider] || PALETTES.other;
      var index = used[provider] || 0;
      used[provider] = index + 1;
      result[run.id] = {
        colour: palette[index % palette.length],
        hatched: Math.floor(index / palette.length) % 2 === 1,
        marker: MARKERS[position % MARKERS.length]
      };
    });
    return result;
  }

  // A bar's fill: the shade, or the shade with white diagonal stripes; alpha ("59") pales it.
  function fill(style, alpha) {
    var colour = style.colour + (alpha || "");
    if (!style.hatched) return colour;
    var tile = document.createElement("canvas");
    tile.width = tile.height = 8;
    var context = tile.getContext("2d");
    if (!context) return colour;
    context.fillStyle = colour;
    context.fillRect(0, 0, 8, 8);
    context.strokeStyle = HATCH_GAP + (alpha || "");
    context.lineWidth = 2;
    context.beginPath();
    context.moveTo(0, 8); context.lineTo(8, 0);
    context.moveTo(-2, 2); context.lineTo(2, -2);
    context.moveTo(6, 10); context.lineTo(10, 6);
    context.stroke();
    return context.createPattern(tile, "repeat") || colour;
  }

  function swatchStyle(swatch, style) {
    swatch.style.backgroundColor = style ? style.colour : "transparent";
    swatch.style.backgroundImage = style && style.hatched ?
      "repeating-linear-gradient(135deg, transparent 0 3px, " + HATCH_GAP + " 3px 5px)" : "none";
    if (style) swatch.dataset.style = style.colour + (style.hatched ? " hatched" : "");
  }

  function number(value, digits) {
    return value === null || value === undefined ? "–" : value.toLocaleString("en-US", {
      minimumFractionDigits: digits, maximumFractionDigits: digits
    });
  }

  function baseOptions(xTitle, yTitle) {
    return {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: "nearest", intersect: false },
      plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
      scales: {
        x: { title: { display: true, text: xTitle } },
        y: { title: { display: true, text: yTitle }, beginAtZero: true }
      }
    };
  }

  function draw(id, config) {
    var canvas = document.getElementById(id);
    if (!canvas || typeof window.Chart !== "function") return null;
    return new window.Chart(canvas, config);
  }

  function lineChart(id, datasets) {
    var options = baseOptions("busy % (measured)", "units per second");
    options.scales.x.type = "linear";
    options.scales.x.min = 0;
    options.scales.x.max = 100;
    options.plugins.legend.labels.usePointStyle = true; // each run's own marker and shade
    return draw(id, { type: "line", data: { datasets: datasets }, options: options });
  }

  function compareCharts(data) {
    var runs = data.runs.map(function (entry) { return entry.run; });
    var style = styles(runs);
    var levels = data.levels.map(function (level) { return level + "%"; });
    var isBaseline = function (entry) { return entry.run.id === data.baseline_id; };

    lineChart("chart-lines", data.runs.map(function (entry) {
      var points = [];
      entry.units_per_second.forEach(function (units, i) {
        if (units !== null) points.push({ x: entry.measured_busy_percent[i], y: units });
      });
      var own = style[entry.run.id];
      return {
        label: entry.run.name, data: points, borderColor: own.colour,
        backgroundColor: own.colour, borderWidth: isBaseline(entry) ? 3 : 2,
        borderDash: own.hatched ? DASH : [], pointStyle: own.marker,
        pointRadius: own.marker === "star" || own.marker === "triangle" ? 5 : 4,
        tension: 0, runStyle: own
      };
    }));

    draw("chart-bars", {
      type: "bar",
      data: {
        labels: levels,
        datasets: data.runs.map(function (entry) {
          var own = style[entry.run.id];
          return { label: entry.run.name, data: entry.units_per_second,
                   backgroundColor: fill(own), borderColor: own.colour, borderWidth: 1,
                   runStyle: own };
        })
      },
      options: baseOptions("target busy %", "units per second")
    });

    // The axis always holds 0, so that bar lengths are proportional to the differences.
    var differenceOptions = baseOptions("target busy %", "% against the baseline");
    differenceOptions.scales.y.grid = {
      color: function (context) { return context.tick.value === 0 ? "#5b6673" : "#e5e7eb"; }
    };
    draw("chart-difference", {
      type: "bar",
      data: {
        labels: levels,
        datasets: data.runs.filter(function (entry) { return !isBaseline(entry); })
          .map(function (entry) {
            var own = style[entry.run.id];
            return { label: entry.run.name, data: entry.difference_vs_baseline_percent,
                     backgroundColor: fill(own), borderColor: own.colour, borderWidth: 1,
                     runStyle: own };
          })
      },
      options: differenceOptions
    });

    var priced = data.runs.filter(function (entry) { return entry.units_per_usd_hour !== null; })
      .sort(byRankThenValue);
    if (priced.length) valueChart(priced, style);

    document.querySelectorAll("[data-swatch]").forEach(function (swatch) {
      swatchStyle(swatch, style[Number(swatch.dataset.swatch)]);
    });
  }

  // Ranked runs by rank (the server's, from unrounded values), then the unranked ones.
  function byRankThenValue(a, b) {
    if (a.rank !== null && b.rank !== null) return a.rank - b.rank;
    if (a.rank !== null || b.rank !== null) return a.rank !== null ? -1 : 1;
    return b.units_per_usd_hour - a.units_per_usd_hour;
  }

  function valueLabel(entry) {
    return entry.rank === null ? entry.run.name + " (not ranked)" : entry.run.name;
  }

  // Price-performance, ranked runs first, unranked ones after them, paler and labelled so;
  // the page says instead when no compared run has a price.
  function valueChart(priced, style) {
    var valueOptions = baseOptions("units per $/hour", "");
    valueOptions.indexAxis = "y";
    valueOptions.plugins.legend = { display: false };
    valueOptions.plugins.tooltip = { callbacks: { label: function (context) {
      var entry = priced[context.dataIndex];
      var standing = entry.rank === null ? "not ranked: " + entry.unranked_reason :
        number(entry.percent_of_best, 1) + "% of best";
      return number(entry.units_per_usd_hour, 2) + " units per $/h (" + standing + ")";
    } } };
    draw("chart-value", {
      type: "bar",
      data: {
        labels: priced.map(valueLabel),
        datasets: [{ label: "units per $/hour", data: priced.map(function (entry) {
          return entry.units_per_usd_hour;
        }), backgroundColor: priced.map(function (entry) {
          return fill(style[entry.run.id], entry.rank === null ? UNRANKED_ALPHA : "");
        }), borderColor: priced.map(function (entry) {
          return style[entry.run.id].colour + (entry.rank === null ? UNRANKED_ALPHA : "");
        }), borderWidth: 1 }]
      },
      options: valueOptions
    });
  }

  function runChart(run) {
    var colour = styles([run])[run.id].colour;
    lineChart("run-chart", [{
      label: run.name, borderColor: colour, backgroundColor: colour, pointRadius: 3,
      data: run.levels.map(function (level) {
        return { x: level.measured_busy_percent, y: level.units_per_second };
      })
    }]);
  }

  function setUpCompareForm(form) {
    var button = form.querySelector("#compare-button");
    var hint = form.querySelector("[data-compare-hint]");
    function update() {
      var chosen = form.querySelectorAll("input[name=ids]:checked").length;
      var ok = chosen >= MIN_COMPARED && chosen <= MAX_COMPARED;
      button.disabled = !ok;
      hint.textContent = chosen + " selected: " + (ok ? "ready to compare." :
        "select " + MIN_COMPARED + " to " + MAX_COMPARED + " runs.");
    }
    form.addEventListener("change", update);
    update();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("compare-form");
    if (form) setUpCompareForm(form);
    var comparison = readJson("compare-data");
    if (comparison) compareCharts(comparison);
    var run = readJson("run-data");
    if (run) runChart(run);
    var select = document.getElementById("baseline-select");
    if (select) select.addEventListener("change", function () { select.form.submit(); });
    document.body.dataset.chartsReady = "true";
  });
})();
