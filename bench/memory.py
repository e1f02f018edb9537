#!/usr/bin/env python3
"""Memory at scale over time: RSS of the appliance probing N loopback devices, sampled
for minutes (one sample, as the prober bench takes, is not the steady state), then while
/metrics is scraped every 10 s as VictoriaMetrics would; with the two malloc arenas
`serve` sets for itself, and with glibc's default of 8 arenas per core
(MALLOC_ARENA_MAX=16 on 2 cores: `serve` leaves the choice to that variable when it is
set), to tell heap growth from allocator retention.

    bench/memory.py --devices 100000 --interval 10s --seconds 120
"""

import argparse
import os
import sys
import time
from pathlib import Path

import common


def anon_mib(pid):
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Anonymous:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def sample(devices, interval, seconds, step, env, scrapes, shards=1):
    """RSS while only probing for `seconds`, then while /metrics is scraped every 10 s
    (`scrapes` times, as VictoriaMetrics would), then 10 s later."""
    config = common.demo(devices, interval)
    with common.Appliance(config, env=env) as app:
        series = [(time.monotonic() - app.started, app.rss_bytes() / 2**20)]
        end = app.started + seconds
        while time.monotonic() < end:
            time.sleep(step)
            series.append((time.monotonic() - app.started, app.rss_bytes() / 2**20))
        probing = series[-1][1]
        # With slices (`/metrics?shard=K/N`, docs/metrics.md) each round scrapes all N.
        paths = ["/metrics"] if shards == 1 else [f"/metrics?shard={k}/{shards}" for k in range(1, shards + 1)]
        for n in range(scrapes):
            for path in paths:
                app.get(path, {"Accept-Encoding": "gzip"} if n % 2 else None)
            time.sleep(10)
        scraped = app.rss_bytes() / 2**20
        return {"series": series, "probing": probing, "scraped": scraped, "anon": anon_mib(app.proc.pid),
                "peak": common.peak_rss_bytes(app.proc.pid) / 2**20,
                "threads": len(list(Path(f"/proc/{app.proc.pid}/task").iterdir()))}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=100000)
    p.add_argument("--interval", default="10s")
    p.add_argument("--seconds", type=float, default=180)
    p.add_argument("--step", type=float, default=15)
    p.add_argument("--scrapes", type=int, default=4)
    p.add_argument("--shards", type=int, default=1, help="scrape /metrics as N slices")
    p.add_argument("--no-build", action="store_true")
    a = p.parse_args()
    if not a.no_build:
        common.build()
    slices = "" if a.shards == 1 else f"-{a.shards}-slices"
    r = common.Report(f"memory-{a.devices}{slices}", f"Memory over time: {a.devices:,} devices at {a.interval}")
    print(f"memory: {a.devices} devices at {a.interval} for {a.seconds:.0f}s", flush=True)
    big = a.devices >= 100000
    glibc_default = str(8 * (os.cpu_count() or 1))
    for label, env in [("2 malloc arenas (serve's own setting)", {}),
                       (f"glibc's default arenas (MALLOC_ARENA_MAX={glibc_default})", {"MALLOC_ARENA_MAX": glibc_default})]:
        m = sample(a.devices, a.interval, a.seconds, a.step, env, a.scrapes, a.shards)
        s = m["series"]
        trace = ", ".join(f"{t:.0f} s: {v:.0f}" for t, v in s[::max(1, len(s) // 5)])
        r.figure(f"RSS (MiB), {label}: probing only (time since start: MiB)",
                 f"{trace}; after {s[-1][0]:.0f} s: {m['probing']:.0f} MiB",
                 "< 500 MiB" if big and not env else "", (m["probing"] < 500) if big and not env else None)
        what = "/metrics" if a.shards == 1 else f"/metrics in {a.shards} slices"
        r.figure(f"RSS, {label}: then {a.scrapes} scrapes of {what} 10 s apart (plain and gzip in turn)",
                 f"{m['scraped']:.0f} MiB (peak {m['peak']:.0f} MiB, anonymous {m['anon']:.0f} MiB, {m['threads']} threads)",
                 "< 500 MiB" if big and not env else "", (m["scraped"] < 500) if big and not env else None)
    r.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
