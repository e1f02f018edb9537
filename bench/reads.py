#!/usr/bin/env python3
"""The reads that cost the whole fleet (issue #20), for two or more builds side by side
in one run: each binary in turn serves the same demo inventory while probing it, and
is measured on the same requests, in rounds (A B A B …) so that a change in the
machine's load shows in both.

- `/api/v1/dashboard` with wrk at C connections;
- the full `/api/v1/devices` with wrk at C connections, and at 1;
- `/metrics` (plain): time to the last byte over loopback (median / max of the scrapes)
  and the scrape's RSS peak above the RSS before it (the kernel's high-water mark, reset
  through /proc/PID/clear_refs before each scrape).

    bench/reads.py --devices 100000 --interval 10s --binary before=/path/a --binary after=/path/b
    bench/reads.py --devices 10000 --interval 1s --only devices --binary …

Prints a table; does not write docs/benchmarks.md (record it by hand).
"""

import argparse
import statistics
import subprocess
import time
from pathlib import Path

import api
import common


def scrape_peak(app, path):
    """(seconds to the last byte, RSS peak above the RSS before, in bytes)."""
    pid = app.proc.pid
    before = common.rss_bytes(pid)
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    t, _ = subprocess_scrape(app.base + path)
    return t, common.peak_rss_bytes(pid) - before


def subprocess_scrape(url):
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{time_total} %{size_download}", url],
                         capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), int(out[1])


def measure(binary, config, a):
    common.BINARY = Path(binary)
    out = {}
    with common.Appliance(config) as app:
        deadline = time.time() + common.seconds_of(a.interval) * 3 + 90
        while app.json("/api/v1/status")["devices"]["up"] < a.devices and time.time() < deadline:
            time.sleep(0.5)
        time.sleep(2)
        if "dashboard" in a.only:
            out["dashboard"] = api.wrk(app.base + "/api/v1/dashboard", a.connections, a.seconds)
        if "devices" in a.only:
            out["devices"] = api.wrk(app.base + "/api/v1/devices", a.connections, a.seconds)
            # One connection: the service time without queueing behind the others.
            out["devices, 1 connection"] = api.wrk(app.base + "/api/v1/devices", 1, a.seconds)
            out["devices_size"] = len(app.get("/api/v1/devices"))
        if "metrics" in a.only:
            scrapes = [scrape_peak(app, "/metrics") for _ in range(a.scrapes)]
            out["metrics"] = scrapes
            out["metrics_size"] = subprocess_scrape(app.base + "/metrics")[1]
        out["down"] = app.json("/api/v1/status")["devices"]["down"]
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=100000)
    p.add_argument("--interval", default="10s")
    p.add_argument("--seconds", type=int, default=8, help="wrk duration per endpoint")
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--scrapes", type=int, default=5)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--only", default="dashboard,devices,metrics")
    p.add_argument("--binary", action="append", required=True, help="label=path, two or more")
    a = p.parse_args()
    a.only = a.only.split(",")
    binaries = [b.split("=", 1) for b in a.binary]
    common.BINARY = Path(binaries[0][1])
    config = common.demo(a.devices, a.interval)
    results = {label: [] for label, _ in binaries}
    for r in range(a.rounds):
        for label, path in binaries:
            print(f"reads: round {r + 1}, {label} ({path})", flush=True)
            results[label].append(measure(path, config, a))
    print(f"\n{a.devices:,} devices at {a.interval}, {a.connections} connections, {a.rounds} rounds")
    for label, runs in results.items():
        for i, m in enumerate(runs):
            cells = [f"{label} round {i + 1}"]
            for key in ("dashboard", "devices", "devices, 1 connection"):
                if key in m:
                    w = m[key]
                    cells.append(f"{key}: p50 {common.fmt_ms(w['p50'])}, p99 {common.fmt_ms(w['p99'])}, "
                                 f"{w['rps']:,.0f} req/s" + (f", {w['non2xx']} non-2xx" if w["non2xx"] else ""))
            if "devices_size" in m:
                cells.append(f"devices body {m['devices_size'] / 1024:,.0f} KiB")
            if "metrics" in m:
                ts = [t for t, _ in m["metrics"]]
                peaks = [pk for _, pk in m["metrics"]]
                cells.append(f"metrics: median {statistics.median(ts) * 1000:.0f} ms / max {max(ts) * 1000:.0f} ms, "
                             f"RSS peak above before: median {statistics.median(peaks) / 2**20:.1f} MiB / "
                             f"max {max(peaks) / 2**20:.1f} MiB, body {m['metrics_size'] / 2**20:.1f} MiB")
            cells.append(f"down after: {m['down']}")
            print(" | ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
