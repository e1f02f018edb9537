// wardops: filter forms (form.filters) apply as they change, without an Apply button
// (the button stays inside <noscript> for a browser without JavaScript), and are
// remembered per page in localStorage: coming back to a page without a query string
// brings its last filters back. The place (region, branch) follows the operator between
// the pages that filter by it: a nav link (a[data-nav]) opens its page with that page's
// own remembered filters and this page's region and branch (the link's href carries
// the place alone, for a browser without JavaScript). The server parses and checks
// every parameter; this only builds URLs.
(function () {
  "use strict";
  var KEY = "wardops.filters." + location.pathname;
  function store() { try { return window.localStorage; } catch (e) { return null; } }
  var ls = store();
  // Back to a page with no query of its own: its last filters, if any.
  if (ls && !location.search) {
    var saved = ls.getItem(KEY);
    if (saved) { location.replace(location.pathname + "?" + saved); return; }
  }
  // `view` and `page` are where one is, not what one filters by: never remembered.
  function query(form, all) {
    var p = new URLSearchParams();
    new FormData(form).forEach(function (v, k) {
      if (v !== "" && k !== "page" && (all || k !== "view")) p.append(k, v);
    });
    return p.toString();
  }
  var PLACE = ["region", "branch"];
  function navigate(e) {
    var a = e.target.closest && e.target.closest("a[data-nav]");
    if (!a || !ls || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    var target = a.dataset.nav;
    var p = new URLSearchParams(ls.getItem("wardops.filters." + target) || "");
    var here = new URLSearchParams(location.search);
    PLACE.forEach(function (k) {
      var v = here.get(k);
      if (v) p.set(k, v); else p.delete(k);
    });
    var q = p.toString();
    // An empty query would bring the target's old filters back on arrival.
    if (!q) ls.removeItem("wardops.filters." + target);
    e.preventDefault();
    location.assign(target + (q ? "?" + q : ""));
  }
  document.addEventListener("click", navigate);
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form.filters").forEach(function (form) {
      if (ls) {
        var q = query(form);
        if (q) ls.setItem(KEY, q); else ls.removeItem(KEY);
      }
      var timer = null;
      function go() {
        var q = query(form);
        if (ls) { if (q) ls.setItem(KEY, q); else ls.removeItem(KEY); }
        var all = query(form, true);
        location.assign(form.getAttribute("action") + (all ? "?" + all : ""));
      }
      form.addEventListener("change", go);
      // Typing applies after a pause, not on every key.
      form.addEventListener("input", function (e) {
        if (e.target.tagName !== "INPUT") return;
        clearTimeout(timer);
        timer = setTimeout(go, 700);
      });
    });
  });
})();
