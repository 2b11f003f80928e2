// Draws the calls chart (voice and video bars per hour or per day) with
// uPlot from the data the page carries; the table beside it says the same
// without JavaScript.
(function () {
  "use strict";
  var el = document.getElementById("chart");
  var src = document.getElementById("chart-data");
  if (!el || !src || !window.uPlot) { return; }
  var d = JSON.parse(src.textContent);
  if (!d.labels || d.labels.length === 0) { el.textContent = "No calls in this range."; return; }
  var xs = d.labels.map(function (_, i) { return i; });
  var left = window.uPlot.paths.bars({ size: [0.4, 40], align: -1 });
  var right = window.uPlot.paths.bars({ size: [0.4, 40], align: 1 });
  function opts(width) {
    return {
      width: width, height: 260,
      scales: { x: { time: false, range: [-0.5, xs.length - 0.5] } },
      axes: [
        { values: function (u, vals) { return vals.map(function (v) { return d.labels[v] || ""; }); } },
        { label: "calls" }
      ],
      series: [
        { label: d.bucket },
        { label: "voice", stroke: "#1f5fa8", fill: "rgba(31,95,168,0.6)", paths: left, points: { show: false } },
        { label: "video", stroke: "#b85c00", fill: "rgba(184,92,0,0.6)", paths: right, points: { show: false } }
      ]
    };
  }
  var plot = new window.uPlot(opts(el.clientWidth || 600), [xs, d.voice, d.video], el);
  window.addEventListener("resize", function () { plot.setSize({ width: el.clientWidth || 600, height: 260 }); });
})();
