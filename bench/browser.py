#!/usr/bin/env python3
"""Live counts in a real browser: headless Chromium (Debian's chromium and chromedriver,
driven over plain WebDriver HTTP) keeps a page of the appliance open while M of N
devices are blackholed at once with nftables and then lifted. For each page and each
direction the bench reports how long after the last of the M transitions the page's
headline and outage-summary counts were right, and that they then equal
`/api/v1/dashboard` at the page's own state version.

"The last transition" is the moment the last of the M transition events reached an SSE
client of the bench's own (`/api/v1/events`), that is when the appliance published it;
the page is read by a MutationObserver inside it that stamps every change of its counts
with the browser's wall clock (same machine, same clock). The spread of the M
transitions (first to last `at`) is reported too: with a 1 s interval and `packets: 1`
the M devices go down within about one interval.

    bench/browser.py --devices 10000 --blackhole 1000
"""

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import common

TABLE = "wardops_bench_browser"
PAGES = ["/", "/monitor", "/wall"]

# Stamps every change of the page's counts:
# [wall-clock ms, down, unreachable, up, outage summary's down + unreachable, version].
WATCH = r"""
window.__bench = [];
function n(id) { var e = document.getElementById(id); if (!e) return null;
  var m = e.textContent.replace(/[\s,]/g, '').match(/\d+/); return m ? +m[0] : null; }
function first(ids) { for (var i = 0; i < ids.length; i++) { var v = n(ids[i]); if (v !== null) return v; } return null; }
function read() {
  var main = document.getElementById('live-main');
  var down = first(['total-down', 'count-down', 'wall-down']);
  var unreachable = first(['total-unreachable', 'count-unreachable', 'wall-unreachable']);
  var up = first(['total-up', 'count-up', 'wall-up']);
  var outage = n('outage-down') === null ? null : n('outage-down') + n('outage-unreachable');
  if (outage === null && document.getElementById('outage-none')) outage = 0;
  var v = main ? +main.dataset.version : null;
  var now = [down, unreachable, up, outage, v];
  var last = window.__bench[window.__bench.length - 1];
  if (!last || now.some(function (x, i) { return x !== last[i + 1]; }))
    window.__bench.push([Date.now()].concat(now));
}
read();
new MutationObserver(read).observe(document.documentElement, {subtree: true, childList: true, characterData: true});
"""


class Chromium:
    """chromedriver on a free port and one headless session, over raw WebDriver HTTP."""

    def __init__(self, width=1920, height=1080):
        common.need("chromedriver", "chromium-driver")
        self.port = common.free_port()
        self.proc = subprocess.Popen(["chromedriver", f"--port={self.port}"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.profile = tempfile.mkdtemp(prefix="wardops-bench-chromium-")
        deadline = time.time() + 20
        while True:
            try:
                self._call("GET", "/status")
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={width},{height}", f"--user-data-dir={self.profile}"]}}}}
        self.session = self._call("POST", "/session", caps)["sessionId"]

    def _call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as r:
            return json.loads(r.read())["value"]

    def go(self, url):
        self._call("POST", f"/session/{self.session}/url", {"url": url})

    def js(self, script, *args):
        return self._call("POST", f"/session/{self.session}/execute/sync", {"script": script, "args": list(args)})

    def close(self):
        try:
            self._call("DELETE", f"/session/{self.session}")
        except OSError:
            pass
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.profile, True)


def wait_until(what, check, timeout):
    deadline = time.time() + timeout
    while not check():
        if time.time() > deadline:
            raise RuntimeError(f"{what}: not within {timeout} s")
        time.sleep(0.05)


async def one_direction(app, browser, sse, nft, victims, down, total, summary):
    """Blocks (down=True) or lifts the victims; returns the figures of that change.
    `summary`: the page has the outage summary (`#outages`), whose count must be right
    too (the wall has its own, without a total)."""
    names = set(victims)
    seen = len(sse.events())
    (nft.block if down else nft.unblock)(list(victims.values()))
    # Out: down, or unreachable behind a victim that is a parent of another.
    want_out = len(victims) if down else 0
    deadline = time.time() + 60
    while True:
        dash = app.json("/api/v1/dashboard")
        by = dash["by_status"]
        if by["down"] + by["unreachable"] == want_out and by["up"] == total - want_out:
            break
        if time.time() > deadline:
            raise RuntimeError(f"devices out never reached {want_out}: {by}")
        await asyncio.sleep(0.05)
    status = {"down", "unreachable"} if down else {"up"}
    # The page's own watcher: wait until its counts are the final ones.
    want = [by["down"], by["unreachable"], by["up"], want_out if summary else None]
    deadline = time.time() + 30
    while True:
        log = browser.js("return window.__bench;")
        if log and log[-1][1:5] == want:
            break
        if time.time() > deadline:
            outages = browser.js("var e = document.getElementById('outages'); return e && e.outerHTML.slice(0, 400);")
            raise RuntimeError(f"page counts {log[-3:] if log else None} never reached {want}; outages: {outages}")
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.5)  # anything late would change the counts again
    log = browser.js("return window.__bench;")
    events = [(t, d) for t, name, d in sse.events()[seen:]
              if name == "transition" and d["device"] in names and d["status"] in status]
    if len(events) < len(victims):
        raise RuntimeError(f"{len(events)} of {len(victims)} {status} transitions seen on the feed")
    last_pub = max(t for t, _ in events)
    ats = [common.rfc3339(d["at"]) for _, d in events]
    # The first moment after which the page's counts stayed right.
    right_at = None
    for stamp, *counts in log:
        if counts[0:4] != want:
            right_at = None
        elif right_at is None:
            right_at = stamp / 1000
    dash = app.json("/api/v1/dashboard")
    api = [dash["by_status"][k] for k in ("down", "unreachable", "up")]
    return {"lag": right_at - last_pub if right_at else None, "spread": max(ats) - min(ats),
            "changes": len(log), "api_version": dash["state_version"], "page_version": log[-1][5],
            "final": log[-1][1:4], "api": api}


async def measure(devices, blackhole, interval, pages):
    config = common.demo(devices, interval)
    y = config / "wardops.yaml"
    y.write_text(y.read_text().replace("packets: 2", "packets: 1"))
    inventory = common.devices_of(config)
    victims = dict(inventory[::max(1, len(inventory) // blackhole)][:blackhole])
    app = common.Appliance(config)
    browser = sse = None
    out = {}
    try:
        deadline = time.time() + common.seconds_of(interval) * 3 + 60
        while app.json("/api/v1/status")["devices"]["up"] != devices:
            if time.time() > deadline:
                raise RuntimeError("not every device came up")
            await asyncio.sleep(0.2)
        sse = common.SseClient(app.port)
        await sse.connect()
        browser = Chromium()
        with common.Nft(TABLE) as nft:
            for page in pages:
                browser.go(app.base + page)
                browser.js(WATCH)
                summary = browser.js("return !!document.getElementById('outages');")
                await asyncio.sleep(1)
                out[page] = {}
                for down in (True, False):
                    out[page]["down" if down else "up"] = await one_direction(
                        app, browser, sse, nft, victims, down, devices, summary)
                    await asyncio.sleep(2)
    finally:
        if browser:
            browser.close()
        if sse:
            sse.close()
        app.stop()
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=10000)
    p.add_argument("--blackhole", type=int, default=1000)
    p.add_argument("--interval", default="1s")
    p.add_argument("--pages", default=",".join(PAGES))
    p.add_argument("--no-build", action="store_true")
    a = p.parse_args()
    if not a.no_build:
        common.build()
    pages = a.pages.split(",")
    print(f"browser: {a.blackhole} of {a.devices} devices down and up, pages {pages}", flush=True)
    m = asyncio.run(measure(a.devices, a.blackhole, a.interval, pages))
    r = common.Report("browser", f"Live counts in headless Chromium: {a.blackhole:,} of {a.devices:,} devices")
    for page, dirs in m.items():
        for d, f in dirs.items():
            lag = f["lag"]
            r.figure(f"`{page}`, {a.blackhole:,} go {d} (spread {f['spread']:.2f} s): last transition → counts right",
                     "never" if lag is None else f"{lag * 1000:.0f} ms", "< 1 s", lag is not None and lag < 1)
            # The version of a quiet appliance does not move, so both are read at one version.
            same = f["page_version"] == f["api_version"]
            r.figure("… the page's down/unreachable/up then, against `/api/v1/dashboard`",
                     f"{f['final']} at v{f['page_version']}, API {f['api']} at v{f['api_version']}",
                     "equal, same version", same and f["final"] == f["api"])
    r.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
