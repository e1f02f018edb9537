#!/usr/bin/env python3
"""Memory at scale over time: RSS of the appliance probing N loopback devices, sampled
every few seconds for minutes (one sample, as the prober bench takes, is not the steady
state), with glibc's default malloc arenas and with MALLOC_ARENA_MAX=2 (an environment
knob, no code change), to tell heap growth from allocator fragmentation.

    bench/memory.py --devices 100000 --interval 10s --seconds 180
"""

import argparse
import sys
import time
from pathlib import Path

import common


def anon_mib(pid):
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Anonymous:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def sample(devices, interval, seconds, step, env):
    config = common.demo(devices, interval)
    with common.Appliance(config, env=env) as app:
        series = [(time.monotonic() - app.started, app.rss_bytes() / 2**20)]
        end = app.started + seconds
        while time.monotonic() < end:
            time.sleep(step)
            series.append((time.monotonic() - app.started, app.rss_bytes() / 2**20))
        return {"series": series, "anon": anon_mib(app.proc.pid), "peak": common.peak_rss_bytes(app.proc.pid) / 2**20,
                "threads": len(list(Path(f"/proc/{app.proc.pid}/task").iterdir()))}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=100000)
    p.add_argument("--interval", default="10s")
    p.add_argument("--seconds", type=float, default=180)
    p.add_argument("--step", type=float, default=15)
    p.add_argument("--no-build", action="store_true")
    a = p.parse_args()
    if not a.no_build:
        common.build()
    r = common.Report(f"memory-{a.devices}", f"Memory over time: {a.devices:,} devices at {a.interval}")
    print(f"memory: {a.devices} devices at {a.interval} for {a.seconds:.0f}s", flush=True)
    big = a.devices >= 100000
    for label, env in [("default malloc", {}), ("MALLOC_ARENA_MAX=2", {"MALLOC_ARENA_MAX": "2"})]:
        m = sample(a.devices, a.interval, a.seconds, a.step, env)
        s = m["series"]
        trace = ", ".join(f"{t:.0f} s: {v:.0f}" for t, v in s[::max(1, len(s) // 6)] + [s[-1]])
        final = s[-1][1]
        r.figure(f"RSS (MiB) over {a.seconds:.0f} s, {label}",
                 f"{trace}; final {final:.0f} MiB, peak {m['peak']:.0f} MiB, anonymous {m['anon']:.0f} MiB, "
                 f"{m['threads']} threads",
                 "< 500 MiB" if big and not env else "", (max(final, m["peak"]) < 500) if big and not env else None)
    r.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
