#!/usr/bin/env python3
"""HTTP under load while probing runs: wrk against the JSON API and the pages of an
appliance probing N loopback devices (10,000 at 1 s: 10k probes/s; 100,000 at 10 s).
p50, p99 and requests/s per endpoint, at C concurrent connections; the pages also
with one connection (their render time).

    bench/api.py --devices 10000 --interval 1s --seconds 8
    bench/api.py --devices 100000 --interval 10s
"""

import argparse
import re
import subprocess
import sys
import time

import common

ENDPOINTS = ["/api/v1/devices", "/api/v1/devices?limit=100", "/api/v1/dashboard", "/monitor", "/"]


def wrk(url, connections, seconds):
    exe = common.need("wrk", "wrk")
    out = subprocess.run([exe, "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s",
                          "--latency", url], capture_output=True, text=True, check=True).stdout
    unit = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}
    q = {m.group(1): float(m.group(2)) * unit[m.group(3)]
         for m in re.finditer(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"p50": q.get("50"), "p99": q.get("99"), "rps": rps, "non2xx": int(bad.group(1)) if bad else 0,
            "errors": errors.group(1) if errors else ""}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=10000)
    p.add_argument("--interval", default="1s")
    p.add_argument("--seconds", type=int, default=8)
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--no-build", action="store_true")
    a = p.parse_args()
    if not a.no_build:
        common.build()
    r = common.Report(f"api-{a.devices}", f"HTTP under load: {a.devices:,} devices at {a.interval}")
    print(f"api: {a.devices} devices at {a.interval}, wrk -c {a.connections} for {a.seconds}s per endpoint", flush=True)
    config = common.demo(a.devices, a.interval)
    with common.Appliance(config) as app:
        deadline = time.time() + common.seconds_of(a.interval) * 3 + 60
        while app.json("/api/v1/status")["devices"]["up"] < a.devices and time.time() < deadline:
            time.sleep(0.5)
        p0, t0 = app.probes_total(), time.monotonic()
        for path in ENDPOINTS:
            size = len(app.get(path))
            w = wrk(app.base + path, a.connections, a.seconds)
            target, ok = "", None
            if path.startswith("/api/v1/devices") and a.devices <= 10000:
                target, ok = "p99 < 20 ms", w["p99"] < 0.020
            trouble = (f"; {w['non2xx']} non-2xx" if w["non2xx"] else "") + (f"; socket errors {w['errors']}" if w["errors"] else "")
            r.figure(f"`{path}` ({size / 1024:,.0f} KiB), {a.connections} connections",
                     f"p50 {common.fmt_ms(w['p50'])}, p99 {common.fmt_ms(w['p99'])}, {w['rps']:,.0f} req/s{trouble}",
                     target, ok if not w["non2xx"] else False)
            if path == "/api/v1/devices":
                # The same with one connection: the service time without queueing behind
                # the other connections on a 2-core machine.
                w = wrk(app.base + path, 1, a.seconds)
                r.figure(f"`{path}`, 1 connection",
                         f"p50 {common.fmt_ms(w['p50'])}, p99 {common.fmt_ms(w['p99'])}, {w['rps']:,.0f} req/s",
                         target, (w["p99"] < 0.020) if target else None)
            if path in ("/monitor", "/"):
                w = wrk(app.base + path, 1, a.seconds)
                big = a.devices >= 100000
                r.figure(f"`{path}` render, 1 connection",
                         f"p50 {common.fmt_ms(w['p50'])}, p99 {common.fmt_ms(w['p99'])}, {w['rps']:,.0f} req/s",
                         "< 50 ms" if big else "", (w["p99"] < 0.050) if big else None)
        rate = (app.probes_total() - p0) / (time.monotonic() - t0)
        expected = a.devices / common.seconds_of(a.interval)
        r.figure("probes/s during the load", f"{rate:,.0f} (expected {expected:,.0f})", "as configured",
                 abs(rate / expected - 1) < 0.05)
        r.figure("devices down after the load (false downs)", f"{app.json('/api/v1/status')['devices']['down']}", "0",
                 app.json("/api/v1/status")["devices"]["down"] == 0)
    r.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
