// Versions page: one line per metric over the versions, in creation order (x = version index).
(function () {
  "use strict";
  const node = document.getElementById("chart-data");
  const target = document.getElementById("metrics-chart");
  if (!node || !target || typeof uPlot === "undefined") return;
  const rows = JSON.parse(node.textContent);
  if (!rows.length) { target.textContent = "No evaluated version yet."; return; }
  const metrics = [["j", "#2f6fed"], ["sta", "#1a7f37"], ["sim", "#b26b00"], ["fl", "#7b3fe4"], ["chrf", "#c62828"]];
  const data = [rows.map((_, i) => i)].concat(metrics.map(([m]) => rows.map((r) => r[m])));
  new uPlot({
    width: Math.min(900, target.parentNode.clientWidth - 40), height: 280,
    scales: { x: { time: false }, y: { range: [0, 1] } },
    axes: [{ values: (u, ticks) => ticks.map((t) => (rows[t] ? rows[t].name : "")) }, {}],
    series: [{ label: "version", value: (u, v) => (rows[v] ? rows[v].name : "") }].concat(
      metrics.map(([m, color]) => ({ label: m.toUpperCase(), stroke: color, width: 2, points: { show: true } }))),
  }, data, target);
})();
