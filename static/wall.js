// wardops /wall: the clock in the display time zone (web.display_zone). The counts and
// tiles are kept live by app.js, which re-renders the page's <main> from the server on
// feed events; this only ticks the clock between them.
(function () {
  "use strict";
  var fmt = null;
  function tick() {
    var el = document.getElementById("wall-clock");
    if (!el) return;
    if (!fmt || fmt.zone !== el.dataset.zone) {
      try {
        fmt = new Intl.DateTimeFormat("en-GB", { timeZone: el.dataset.zone, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
        fmt.zone = el.dataset.zone;
      } catch (e) { return; }
    }
    el.textContent = fmt.format(new Date());
  }
  setInterval(tick, 1000);
  document.addEventListener("DOMContentLoaded", tick);
})();
