// wardops: keeps a server-rendered page live from /api/v1/events. No framework, no
// build step; loaded with `defer` from the page's own origin (the CSP allows nothing
// else). Without it every page still works; it only stops updating by itself.
//
// Exact counts: the script does no arithmetic on what the page shows. On a feed event it
// re-fetches the page's own URL and swaps its live region (<main id="live-main">, which
// carries the state version it shows), so every count is the server's for one version.
// Fetches are coalesced: an event schedules one after REFRESH_MS, at most one is in
// flight and at most one more queued behind it. The swap keeps the scroll position, the
// open <details>, the filter forms (what is being typed, and focus) and a focused link.
//
// A dead feed looks dead: when the feed has been down for STALE_MS the page dims, says
// "data as of HH:MM:SS — reconnecting" and stops its ticking durations; when the feed is
// back it re-fetches the region and comes alive again by itself.
"use strict";
(function () {
  var body = document.body;
  var live = document.getElementById("live");
  var versionEl = document.getElementById("state-version");
  var clockEl = document.getElementById("clock");
  var staleEl = document.getElementById("stale");
  var staleAtEl = document.getElementById("stale-at");
  var zone = body.dataset.zone || "UTC";
  var RECENT_MS = 10 * 60 * 1000;
  var REFRESH_MS = 200;
  var STALE_MS = 4000;
  // An open feed that has said nothing for this long (the server's heartbeats are not
  // visible to a script) is checked with a request: a hung server looks dead too.
  var QUIET_MS = 20000;
  // The server's clock as of the page's rendering, against this browser's: a window's
  // end is the server's time, and a browser a minute fast must not drop a badge early.
  var skew = (Date.parse(body.dataset.now) - Date.now()) || 0;
  function serverNow() { return Date.now() + skew; }

  // Same format as the server (src/web/templates.rs, `duration`).
  function fmtDuration(s) {
    s = Math.max(0, Math.floor(s));
    function p(n) { return (n < 10 ? "0" : "") + n; }
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m " + p(s % 60) + "s";
    if (s < 86400) return Math.floor(s / 3600) + "h " + p(Math.floor(s % 3600 / 60)) + "m";
    return Math.floor(s / 86400) + "d " + p(Math.floor(s % 86400 / 3600)) + "h";
  }

  // ---- time in the display zone (same format as the server's `hms`: "14:05:09 +04") --
  var partsFmt = null;
  try {
    partsFmt = new Intl.DateTimeFormat("en-GB", {
      timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit"
    });
  } catch (e) {
    zone = "UTC";
    partsFmt = new Intl.DateTimeFormat("en-GB", {
      timeZone: "UTC", hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit"
    });
  }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function hms(ms) {
    var p = {};
    partsFmt.formatToParts(new Date(ms)).forEach(function (x) { p[x.type] = x.value; });
    var h = +p.hour % 24;
    // The zone's offset at that instant: its wall time read as UTC, minus the instant.
    var wall = Date.UTC(+p.year, +p.month - 1, +p.day, h, +p.minute, +p.second);
    var off = Math.round((wall - Math.floor(ms / 1000) * 1000) / 60000);
    var sign = off < 0 ? "-" : "+";
    off = Math.abs(off);
    var o = sign + pad(Math.floor(off / 60)) + (off % 60 ? ":" + pad(off % 60) : "");
    return pad(h) + ":" + p.minute + ":" + p.second + " " + o;
  }
  function utc(ms) { return new Date(ms).toISOString().slice(0, 19).replace("T", " ") + " UTC"; }

  function setLive(state, text) {
    live.dataset.state = state;
    live.textContent = text;
  }

  // Times the server wrote without a UTC title get one (hover shows UTC).
  function annotate(root) {
    root.querySelectorAll("time[datetime]:not([title])").forEach(function (el) {
      var t = Date.parse(el.getAttribute("datetime"));
      if (!isNaN(t)) el.title = utc(t);
    });
  }

  // Ticking "down for" counters, the 10-minute "recent" mark, maintenance that ends, the
  // clock. A dead page keeps only its clock: its durations would claim what it no
  // longer knows.
  function tick() {
    if (clockEl) clockEl.textContent = hms(serverNow());
    if (dead) return;
    document.querySelectorAll(".dur[data-since]").forEach(function (el) {
      var t = Date.parse(el.dataset.since);
      if (el.dataset.label == null) {
        var m = /^((?:down|unreachable) for )/.exec(el.textContent);
        el.dataset.label = m ? m[1] : "";
      }
      if (!isNaN(t)) el.textContent = el.dataset.label + fmtDuration((serverNow() - t) / 1000);
    });
    document.querySelectorAll("[data-device][data-status=down]").forEach(function (el) {
      var t = Date.parse(el.dataset.since);
      var recent = !isNaN(t) && serverNow() - t < RECENT_MS;
      el.classList.toggle("recent", recent);
      var tag = el.querySelector(".tag:not(.tag-maint):not(.tag-degraded)");
      var st = el.querySelector(".st");
      if (recent && !tag && st) {
        var b = document.createElement("span");
        b.className = "tag";
        b.textContent = "NEW";
        st.insertAdjacentElement("afterend", b);
      }
      if (!recent && tag) tag.remove();
    });
    // A maintenance badge ends with its window, not at the device's next transition:
    // the page is re-rendered, as the server now says what follows.
    document.querySelectorAll(".tag-maint[data-until]").forEach(function (el) {
      var until = Date.parse(el.dataset.until);
      if (isNaN(until) || serverNow() < until) return;
      el.removeAttribute("data-until");
      refreshSoon();
    });
  }

  // ---- the live region: re-fetch and swap ---------------------------------------------
  var timer = null, inFlight = false, queued = false;
  // The newest state version an event announced; a swap older than it asks again.
  var wanted = 0;
  function shown() { var m = document.getElementById("live-main"); return m ? +m.dataset.version || 0 : 0; }
  function refreshSoon() {
    // A computed document (a report): not re-fetched on events, it is asked for.
    var main = document.getElementById("live-main");
    if (main && main.hasAttribute("data-static")) return;
    if (timer) return;
    timer = setTimeout(function () { timer = null; refresh(); }, REFRESH_MS);
  }
  function refresh(then) {
    if (inFlight) { queued = true; return; }
    inFlight = true;
    fetch(location.href, { headers: { Accept: "text/html" }, cache: "no-store", credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (html) { swap(html); if (then) then(); })
      .catch(function () {})
      .then(function () {
        inFlight = false;
        if (queued || shown() < wanted) { queued = false; refreshSoon(); }
      });
  }
  window.wardopsRefresh = refreshSoon;

  function swap(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var fresh = doc.getElementById("live-main");
    var cur = document.getElementById("live-main");
    if (!fresh || !cur) return;
    // One request answered after a newer one cannot happen (one in flight), but a
    // cached or reordered answer must never take the page back.
    var boot = function (id) { return String(id || "").split("-")[0]; };
    if ((+fresh.dataset.version || 0) < shown() && boot(doc.body.dataset.version) === boot(body.dataset.version)) return;
    var open = {};
    cur.querySelectorAll("details[data-key]").forEach(function (d) { open[d.dataset.key] = d.open; });
    fresh.querySelectorAll("details[data-key]").forEach(function (d) {
      if (Object.prototype.hasOwnProperty.call(open, d.dataset.key)) d.open = open[d.dataset.key];
    });
    cur.querySelectorAll("form[id]").forEach(function (f) {
      var g = fresh.querySelector("#" + CSS.escape(f.id));
      if (g) g.replaceWith(f);
    });
    var active = document.activeElement;
    var focusHref = active && cur.contains(active) && active.tagName === "A" ? active.getAttribute("href") : null;
    var x = window.scrollX, y = window.scrollY;
    cur.replaceWith(fresh);
    window.scrollTo(x, y);
    if (focusHref) {
      var again = fresh.querySelector('a[href="' + CSS.escape(focusHref) + '"]');
      if (again) again.focus({ preventScroll: true });
    }
    versionEl.textContent = fresh.dataset.version;
    var rv = document.getElementById("rendered-version");
    if (rv) rv.textContent = fresh.dataset.version;
    var ra = document.getElementById("rendered-at");
    if (ra && fresh.dataset.rendered) {
      var t = Date.parse(fresh.dataset.rendered);
      if (!isNaN(t)) { ra.textContent = hms(t); ra.title = utc(t); }
    }
    if (doc.title) document.title = doc.title;
    // A page of another process (after a restart): resume its feed, not the old one's.
    if (doc.body.dataset.version) body.dataset.fresh = doc.body.dataset.version;
    if (fresh.dataset.rendered) lastFresh = Math.max(lastFresh, Date.parse(fresh.dataset.rendered) - skew || 0);
    annotate(fresh);
    tick();
  }

  // ---- alerts: the devices unreachable behind an open one (same words as the server's
  // templates/macros.html, `behind`) --------------------------------------------------
  function onAlertUpdated(ev) {
    document.querySelectorAll(".behind-of[data-alert]").forEach(function (el) {
      if (el.dataset.alert !== String(ev.id)) return;
      el.textContent = "";
      if (!ev.unreachable_behind) return;
      var a = document.createElement("a");
      a.className = "behind n-unreachable";
      a.textContent = "⊘ " + ev.unreachable_behind + " unreachable behind it";
      a.href = "/monitor?status=unreachable";
      a.title = "devices unreachable behind " + ev.device;
      el.appendChild(document.createTextNode(" "));
      el.appendChild(a);
    });
  }

  // ---- liveness ---------------------------------------------------------------------
  var dead = false, staleTimer = null;
  // When the page last knew its data was current (browser clock).
  var lastFresh = Date.now();
  function fresh() {
    lastFresh = Date.now();
    if (staleTimer) { clearTimeout(staleTimer); staleTimer = null; }
  }
  function goingDown() {
    if (!staleTimer && !dead) staleTimer = setTimeout(goDead, STALE_MS);
  }
  function goDead() {
    staleTimer = null;
    dead = true;
    body.classList.add("stale");
    if (staleAtEl) { staleAtEl.textContent = hms(lastFresh + skew); staleAtEl.title = utc(lastFresh + skew); }
    if (staleEl) staleEl.hidden = false;
  }
  function comeAlive() {
    fresh();
    if (!dead) return;
    dead = false;
    body.classList.remove("stale");
    if (staleEl) staleEl.hidden = true;
    refresh();
  }

  // ---- the feed -----------------------------------------------------------------------
  var source = null, lastEvent = Date.now(), retry = null;
  function connect() {
    var url = body.dataset.events;
    if (!url || !window.EventSource) return;
    var since = body.dataset.version;
    url += (url.indexOf("?") < 0 ? "?" : "&") + "since=" + encodeURIComponent(since);
    if (source) source.close();
    var es = source = new EventSource(url);
    setLive("connecting", "live feed: connecting…");
    es.onopen = function () { lastEvent = Date.now(); setLive("on", "● live"); comeAlive(); };
    es.onerror = function () {
      if (es !== source) return;
      if (live.dataset.state === "on") lastFresh = Date.now();
      setLive("off", "○ live feed lost — reconnecting");
      goingDown();
      // A refused answer (not 200) closes the EventSource for good: try again ourselves.
      if (es.readyState === EventSource.CLOSED) reconnectSoon();
    };
    function seen(e) {
      lastEvent = Date.now();
      fresh();
      if (e.lastEventId) body.dataset.version = e.lastEventId;
      var d = {};
      try { d = JSON.parse(e.data); } catch (x) { d = {}; }
      if (d.state_version != null) {
        wanted = Math.max(wanted, +d.state_version);
        versionEl.textContent = Math.max(+versionEl.textContent || 0, +d.state_version);
      }
      return d;
    }
    es.addEventListener("hello", function () { lastEvent = Date.now(); setLive("on", "● live"); comeAlive(); });
    ["transition", "degraded", "uplinks", "alert_opened", "alert_resolved"].forEach(function (name) {
      es.addEventListener(name, function (e) { seen(e); refreshSoon(); });
    });
    // The count behind an open alert changed: the server's figure goes in place at once
    // (no arithmetic: the event carries it), and the page is re-read as for any event.
    es.addEventListener("alert_updated", function (e) { onAlertUpdated(seen(e)); refreshSoon(); });
    es.addEventListener("inventory", function (e) { seen(e); location.reload(); });
    // Too far behind to catch up from the backlog, or another process: re-read the
    // page, then follow the feed from the version it shows.
    es.addEventListener("reset", function () {
      es.close();
      // Versions start over with a new process.
      wanted = 0;
      refresh(function () {
        if (body.dataset.fresh) body.dataset.version = body.dataset.fresh;
        connect();
      });
    });
    es.addEventListener("dropped", function () { setLive("off", "○ live feed dropped — reconnecting"); goingDown(); });
    es.addEventListener("shutdown", function () { lastFresh = Date.now(); setLive("off", "○ server restarting — reconnecting"); goingDown(); });
  }
  function reconnectSoon() {
    if (retry) return;
    retry = setTimeout(function () {
      retry = null;
      wanted = 0;
      // The page of a restarted process names its own feed position.
      refresh(function () { if (body.dataset.fresh) body.dataset.version = body.dataset.fresh; });
      connect();
    }, 2000);
  }
  // An open feed that has been quiet long: ask the server whether it is there at all.
  setInterval(function () {
    if (!source || source.readyState !== EventSource.OPEN || Date.now() - lastEvent < QUIET_MS) return;
    var ctl = window.AbortController ? new AbortController() : null;
    var t = setTimeout(function () { if (ctl) ctl.abort(); }, STALE_MS);
    fetch("/healthz", { cache: "no-store", signal: ctl ? ctl.signal : undefined })
      .then(function () { clearTimeout(t); lastEvent = Date.now(); fresh(); })
      .catch(function () { clearTimeout(t); goingDown(); source.close(); reconnectSoon(); });
  }, 5000);

  annotate(document);
  tick();
  setInterval(tick, 1000);
  connect();
})();
