// The console's live updates: the platform's events, relayed by the
// console from the API's stream, reload the parts of the page they
// change (htmx swaps them). Without the stream the page reloads those
// parts every few seconds. The page reads as well without this script.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.htmx) { return; }
  var cats = (live.getAttribute("data-cats") || "").split(" ").filter(Boolean);
  if (cats.length === 0) { return; }
  var pending = {};
  function reload(cat) {
    if (pending[cat]) { return; }
    pending[cat] = setTimeout(function () {
      delete pending[cat];
      window.htmx.trigger(document.body, "cv-" + cat);
    }, 250);
  }
  function reloadAll() { cats.forEach(reload); }
  // A reload that no event of the stream asked for (the stream just
  // opened, or there is none) tells the console, so that it reads the
  // platform again instead of answering from what it read before.
  var fresh = false;
  document.body.addEventListener("htmx:configRequest", function (e) {
    if (fresh) {
      e.detail.headers["X-Console-Fresh"] = "1";
      fresh = false;
    }
  });
  function reloadFresh() { fresh = true; reloadAll(); }
  var timer = null;
  function poll() {
    if (timer === null) { timer = setInterval(reloadFresh, 5000); }
  }
  if (!window.EventSource) { poll(); return; }
  var kinds = ["conference.changed", "node.changed", "room.changed", "platform.changed", "licence.changed",
    "call.changed", "call.started", "call.answered", "call.ended",
    "alarm.changed", "alarm.raised", "alarm.cleared", "alarm.acked", "host.changed", "breakout.changed", "message"];
  var es = new EventSource("/console/events");
  kinds.forEach(function (kind) {
    es.addEventListener(kind, function () {
      var cat = kind.split(".")[0];
      if (cats.indexOf(cat) >= 0) { reload(cat); }
    });
  });
  es.addEventListener("open", function () {
    // What changed between the page's drawing (or a lost connection) and
    // the stream's start came as no event: reload once now.
    reloadFresh();
    document.body.setAttribute("data-stream", "open");
  });
  es.addEventListener("error", function () {
    if (es.readyState === EventSource.CLOSED) {
      document.body.setAttribute("data-stream", "polling");
      poll();
    }
  });
  window.addEventListener("pagehide", function () { es.close(); });
})();
