// wardops: keeps a server-rendered page live from /api/v1/events. No framework, no
// build step; loaded with `defer` from the page's own origin (the CSP allows nothing
// else). Without it every page still works; it only stops updating by itself.
"use strict";
(function () {
  var body = document.body;
  var page = body.dataset.page;
  var live = document.getElementById("live");
  var versionEl = document.getElementById("state-version");
  var RECENT_MS = 10 * 60 * 1000;
  // The server's clock as of the page's rendering, against this browser's: a window's
  // end is the server's time, and a browser a minute fast must not drop a badge early.
  var skew = (Date.parse(body.dataset.now) - Date.now()) || 0;

  // Same format as the server (src/web/templates.rs, `duration`).
  function fmtDuration(s) {
    s = Math.max(0, Math.floor(s));
    function p(n) { return (n < 10 ? "0" : "") + n; }
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m " + p(s % 60) + "s";
    if (s < 86400) return Math.floor(s / 3600) + "h " + p(Math.floor(s % 3600 / 60)) + "m";
    return Math.floor(s / 86400) + "d " + p(Math.floor(s % 86400 / 3600)) + "h";
  }

  function setLive(state, text) {
    live.dataset.state = state;
    live.textContent = text;
  }

  // Ticking "down for" counters and the 10-minute "recent" mark.
  function tick() {
    var now = Date.now();
    document.querySelectorAll(".dur[data-since]").forEach(function (el) {
      var t = Date.parse(el.dataset.since);
      if (!isNaN(t)) el.textContent = (el.dataset.label || "") + fmtDuration((now - t) / 1000);
    });
    document.querySelectorAll("[data-device][data-status=down]").forEach(function (el) {
      var t = Date.parse(el.dataset.since);
      var recent = !isNaN(t) && now - t < RECENT_MS;
      el.classList.toggle("recent", recent);
      var tag = el.querySelector(".tag");
      if (recent && !tag) { el.querySelector(".st").insertAdjacentElement("afterend", mk("span", "tag", "NEW")); }
      if (!recent && tag) tag.remove();
    });
    // A maintenance badge ends with its window, not at the device's next transition:
    // on the wall it goes in place; another page is re-rendered, as the server now
    // says what follows (the device page's maintenance line, the alert it may open).
    var serverNow = now + skew;
    document.querySelectorAll(".tag-maint[data-until]").forEach(function (el) {
      var until = Date.parse(el.dataset.until);
      if (isNaN(until) || serverNow < until) return;
      if (page === "monitor") el.remove(); else { el.removeAttribute("data-until"); refreshSoon(); }
    });
  }
  document.querySelectorAll(".dur").forEach(function (el) {
    var m = /^((?:down|unreachable) for )/.exec(el.textContent);
    if (m) el.dataset.label = m[1];
  });

  function mk(tag, cls, text) {
    var el = document.createElement(tag);
    if (cls) el.className = cls;
    if (text != null) el.textContent = text;
    return el;
  }
  // Same words and symbols as the server (templates/macros.html, `status`).
  var STATUS_TEXT = { down: "▼ DOWN", up: "▲ UP", unreachable: "⊘ UNREACHABLE", unknown: "? UNKNOWN" };
  function statusEl(s) {
    return mk("span", "st st-" + s, STATUS_TEXT[s] || STATUS_TEXT.unknown);
  }
  // Down and unreachable devices carry the start of their outage.
  function isOut(s) { return s === "down" || s === "unreachable"; }
  function deviceUrl(name) { return "/devices/" + encodeURIComponent(name); }

  // ---- the wall -------------------------------------------------------------------
  var list = document.getElementById("devices");
  var summary = document.getElementById("summary");

  function matchesWall(ev) {
    var want = summary.dataset.status;
    if (want && want.split(",").indexOf(ev.status) < 0) return false;
    var q = (summary.dataset.q || "").toLowerCase();
    return !q || ev.device.toLowerCase().indexOf(q) >= 0 || ev.address.indexOf(q) >= 0;
  }

  function buildItem(ev) {
    var grid = list.dataset.view === "grid";
    var el, since = mk("span", "dur");
    if (grid) {
      el = mk("a", "tile");
      el.href = deviceUrl(ev.device);
      el.appendChild(mk("span", "name", ev.device));
      el.appendChild(statusEl(ev.status));
      el.appendChild(mk("span", "where", ev.region + " / " + ev.branch + " · " + ev.kind));
      var df = mk("span", "down-for");
      since.dataset.label = "down for ";
      df.appendChild(since);
      el.appendChild(df);
    } else {
      el = mk("tr");
      var td = mk("td"); td.appendChild(statusEl(ev.status)); el.appendChild(td);
      td = mk("td"); var a = mk("a", null, ev.device); a.href = deviceUrl(ev.device); td.appendChild(a); el.appendChild(td);
      el.appendChild(mk("td", null, ev.address));
      el.appendChild(mk("td", null, ev.region + " / " + ev.branch));
      el.appendChild(mk("td", null, ev.kind));
      td = mk("td", "down-for"); td.appendChild(since); el.appendChild(td);
      el.appendChild(mk("td", null, "—"));
    }
    el.dataset.device = ev.device;
    return el;
  }

  function applyToItem(el, ev) {
    var was = el.dataset.status;
    el.dataset.status = ev.status;
    el.dataset.since = ev.down_since || "";
    el.classList.remove("st-row-up", "st-row-down", "st-row-unknown", "st-row-unreachable");
    el.classList.add("st-row-" + ev.status);
    var st = el.querySelector(".st");
    st.replaceWith(statusEl(ev.status));
    var dur = el.querySelector(".down-for");
    dur.textContent = "";
    if (isOut(ev.status) && ev.down_since) {
      var d = mk("span", "dur");
      d.dataset.since = ev.down_since;
      if (list.dataset.view === "grid") d.dataset.label = ev.status + " for ";
      dur.appendChild(d);
    }
    var tag = el.querySelector(".tag:not(.tag-maint)");
    if (tag) tag.remove();
    // The maintenance badge as of this transition (the page's own until then).
    var maint = el.querySelector(".tag-maint");
    if (maint) maint.remove();
    if (ev.in_maintenance) {
      var b = mk("span", "tag tag-maint", "⚒ MAINTENANCE");
      if (ev.maintenance_ends_at) b.dataset.until = ev.maintenance_ends_at;
      b.title = "in maintenance until " + (ev.maintenance_ends_at || "") +
        ": no alert opens for an outage that begins now until then";
      el.querySelector(".st").insertAdjacentElement("afterend", b);
    }
    if (isOut(was) && ev.status === "up") {
      // A brief highlight, with words, so the recovery is seen and not only by colour.
      el.classList.add("recovered");
      var r = mk("span", "tag tag-ok", "RECOVERED");
      el.querySelector(".st").insertAdjacentElement("afterend", r);
      setTimeout(function () { el.classList.remove("recovered"); r.remove(); }, 8000);
    }
  }

  // Down first, longest down first; then unreachable, longest first; then by name: the
  // server's order (src/read_model/order.rs).
  function sortKey(el) {
    var s = el.dataset.status;
    var group = s === "down" ? 0 : s === "unreachable" ? 1 : 2;
    var t = Date.parse(el.dataset.since);
    return [group, group < 2 ? (isNaN(t) ? Infinity : t) : 0, el.dataset.device];
  }
  function resort() {
    var parent = list.tBodies ? list.tBodies[0] : list;
    var items = Array.prototype.slice.call(parent.querySelectorAll("[data-device]"));
    items.sort(function (a, b) {
      var x = sortKey(a), y = sortKey(b);
      for (var i = 0; i < 3; i++) { if (x[i] < y[i]) return -1; if (x[i] > y[i]) return 1; }
      return 0;
    });
    items.forEach(function (el) { parent.appendChild(el); });
  }
  function bumpCount(status, delta) {
    var el = document.getElementById("count-" + status);
    if (el) el.textContent = Math.max(0, parseInt(el.textContent, 10) + delta);
  }

  function onWallTransition(ev) {
    var parent = list.tBodies ? list.tBodies[0] : list;
    var el = null;
    parent.querySelectorAll("[data-device]").forEach(function (e) { if (e.dataset.device === ev.device) el = e; });
    var keep = matchesWall(ev);
    if (el && el.dataset.status !== ev.status) { bumpCount(el.dataset.status, -1); }
    if (keep && (!el || el.dataset.status !== ev.status)) bumpCount(ev.status, 1);
    if (!keep) { if (el) el.remove(); return; }
    if (!el) {
      // Only the first page takes in newcomers: they belong at the top.
      if (summary.dataset.offset !== "0" && isOut(ev.status)) return;
      el = buildItem(ev);
      el.dataset.status = "";
      parent.appendChild(el);
    }
    applyToItem(el, ev);
    resort();
    tick();
  }

  // A degraded condition raised or cleared: the wall puts or takes its badge in place
  // (same words as templates/macros.html, `degraded`); its status is not touched.
  function onWallDegraded(ev) {
    var el = null;
    document.querySelectorAll("[data-device]").forEach(function (e) { if (e.dataset.device === ev.device) el = e; });
    if (!el) return;
    var tag = el.querySelector(".tag-degraded");
    if (!ev.degraded) { if (tag) tag.remove(); return; }
    if (tag) return;
    var st = el.querySelector(".st");
    if (!st) return;
    var badge = mk("span", "tag tag-degraded", "◐ DEGRADED");
    badge.title = "degraded since " + ev.degraded_since + " (a warning; the device answers)";
    st.parentNode.appendChild(document.createTextNode(" "));
    st.parentNode.appendChild(badge);
  }

  // ---- other pages: re-fetch and swap <main> (a debounced, in-place refresh) ----------
  var refreshTimer = null;
  function refreshSoon() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(function () {
      refreshTimer = null;
      fetch(location.href, { headers: { Accept: "text/html" } }).then(function (r) { return r.text(); }).then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.querySelector("main");
        if (fresh) { document.querySelector("main").replaceWith(fresh); tick(); }
      }).catch(function () {});
    }, 1000);
  }

  // ---- alerts: the devices unreachable behind an open one (same words as the server's
  // templates/macros.html, `behind`) --------------------------------------------------
  function onAlertUpdated(ev) {
    document.querySelectorAll(".behind-of[data-alert]").forEach(function (el) {
      if (el.dataset.alert !== String(ev.id)) return;
      el.textContent = "";
      if (!ev.unreachable_behind) return;
      var a = mk("a", "behind n-unreachable", "⊘ " + ev.unreachable_behind + " unreachable behind it");
      a.href = "/monitor?status=unreachable";
      a.title = "devices unreachable behind " + ev.device;
      el.appendChild(document.createTextNode(" "));
      el.appendChild(a);
    });
  }

  // ---- the feed -----------------------------------------------------------------------
  var source = null;
  function connect() {
    var url = body.dataset.events;
    if (!url || !window.EventSource) return;
    var since = body.dataset.version;
    url += (url.indexOf("?") < 0 ? "?" : "&") + "since=" + encodeURIComponent(since);
    source = new EventSource(url);
    setLive("connecting", "live feed: connecting…");
    source.onopen = function () { setLive("on", "● live"); };
    source.onerror = function () { setLive("off", "○ live feed lost — reconnecting"); };
    function seen(e) {
      if (e.lastEventId) body.dataset.version = e.lastEventId;
      var d = JSON.parse(e.data);
      if (d.state_version != null) versionEl.textContent = d.state_version;
      return d;
    }
    source.addEventListener("hello", function () { setLive("on", "● live"); });
    source.addEventListener("transition", function (e) {
      var ev = seen(e);
      if (page === "monitor") onWallTransition(ev); else refreshSoon();
    });
    source.addEventListener("degraded", function (e) {
      var ev = seen(e);
      if (page === "monitor") onWallDegraded(ev); else refreshSoon();
    });
    ["alert_opened", "alert_resolved"].forEach(function (name) {
      source.addEventListener(name, function (e) { seen(e); if (page !== "monitor") refreshSoon(); });
    });
    // The count behind an open alert changed: applied in place where the page shows it.
    source.addEventListener("alert_updated", function (e) { onAlertUpdated(seen(e)); });
    source.addEventListener("inventory", function (e) { seen(e); location.reload(); });
    // Too far behind to catch up from the backlog: the page itself is stale.
    source.addEventListener("reset", function () { source.close(); location.reload(); });
    source.addEventListener("dropped", function () { setLive("off", "○ live feed dropped — reconnecting"); });
    source.addEventListener("shutdown", function () { setLive("off", "○ server restarting — reconnecting"); });
  }

  tick();
  setInterval(tick, 1000);
  connect();
})();
