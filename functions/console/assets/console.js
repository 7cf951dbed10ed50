// Draws the console's charts. Each chart is a `[data-chart]` element naming the id of a
// `<script type="application/json">` block that holds its data ({x: unix seconds[], series:
// [{label, values[]}]}); the page carries the same numbers as a table, so nothing depends on
// this script. Series differ by dash pattern and width as well as colour (readable without
// colour), and uPlot's legend names each one.
"use strict";
(function () {
  var STYLES = [
    { stroke: "#1f5fbf", dash: [], width: 2 },
    { stroke: "#b5451b", dash: [8, 4], width: 2 },
    { stroke: "#2e7d32", dash: [2, 3], width: 3 },
    { stroke: "#6a1b9a", dash: [12, 3, 2, 3], width: 2 },
  ];

  function money(v) {
    return v == null ? "–" : (v / 100).toLocaleString("en-US", { maximumFractionDigits: 0 });
  }

  function draw(el) {
    var source = document.getElementById(el.getAttribute("data-chart"));
    if (!source || typeof uPlot === "undefined") return;
    var data = JSON.parse(source.textContent);
    if (!data.x || data.x.length === 0) {
      el.textContent = "No data yet for this chart.";
      return;
    }
    var isMoney = el.getAttribute("data-money") === "true";
    var series = [{ label: "Day" }];
    data.series.forEach(function (s, i) {
      var style = STYLES[i % STYLES.length];
      series.push({
        label: s.label,
        stroke: style.stroke,
        dash: style.dash,
        width: style.width,
        value: isMoney ? function (u, v) { return money(v); } : undefined,
      });
    });
    var opts = {
      width: Math.max(320, el.clientWidth || 800),
      height: 260,
      series: series,
      axes: [{}, { values: isMoney ? function (u, vals) { return vals.map(money); } : undefined, size: 70 }],
    };
    var columns = [data.x].concat(data.series.map(function (s) { return s.values; }));
    new uPlot(opts, columns, el);
    el.setAttribute("data-drawn", "true");
  }

  function start() {
    document.querySelectorAll("[data-chart]").forEach(draw);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
