#!/usr/bin/env python3
"""Dependencies at scale: what `parents:` costs, and what a mass outage looks like.

1. Cost: the demo inventory (every branch's devices name their gateway router, every
   gateway names its region's core router) beside the same inventory with every
   `parents:` line removed, run in the order with, without, without, with (so drift
   cancels): the appliance's whole CPU per probe over a window, and one reload of 1,000
   changes (bench/startup.py's edits) timed from the first write to the new revision.
2. Outage: `--dark` whole branches (not a region's first: its router is the region's
   core) blackholed at one instant (their echo replies
   dropped, so probes time out as with a real outage): when each of their devices is
   decided `down` or `unreachable` (SSE transitions, from the instant the rule went in),
   how many of each, and how many `device_down` alerts opened; then the rule lifted,
   and when each is `up` again.

    bench/dependencies.py --devices 100000 --interval 10s --seconds 30 --dark 1250
"""

import argparse
import asyncio
import random
import re
import shutil
import sys
import time
from pathlib import Path

import common
import startup

TABLE = "wardops_bench_dependencies"
PARENTS = re.compile(r"^\s*parents:.*\n", re.M)


def without_parents(config):
    """A copy of the demo config with every `parents:` line removed."""
    flat = Path(str(config) + "-flat")
    shutil.copytree(config, flat)
    for path in (flat / "inventory").glob("*.yaml"):
        path.write_text(PARENTS.sub("", path.read_text()))
    import atexit
    atexit.register(shutil.rmtree, flat, True)
    return flat


def cost(config, interval, seconds):
    """CPU per probe over `seconds` and one reload of 1,000 changes."""
    work = Path(str(config) + f"-run{time.monotonic_ns()}")
    shutil.copytree(config, work)
    app = common.Appliance(work)
    try:
        time.sleep(common.seconds_of(interval) * 2 + 2)
        c0, p0 = app.cpu_seconds(), app.probes_total()
        time.sleep(seconds)
        c1, p1 = app.cpu_seconds(), app.probes_total()
        rev0 = app.json("/api/v1/status")["inventory"]["revision"]
        started = startup.change_files(work, 1)
        while time.time() - started < 30 and app.json("/api/v1/status")["inventory"]["revision"] == rev0:
            time.sleep(0.05)
        reload = time.time() - started
        last = app.json("/api/v1/status")["inventory"].get("last_reload") or {}
        return {"cpu_per_probe_us": (c1 - c0) / (p1 - p0) * 1e6, "reload": reload,
                "reload_own": last.get("duration_seconds") or float("nan"),
                "ok": bool(last.get("result") == "success" or app.json("/api/v1/status")["inventory"]["last_reload_successful"])}
    finally:
        app.stop()
        shutil.rmtree(work, ignore_errors=True)


def branches_of(config):
    """Branch name -> its devices' (name, address), in the order written."""
    out = {}
    for name, address in common.devices_of(config):
        m = re.match(r"^(.+-b\d{4})-", name)
        if m:
            out.setdefault(m.group(1), []).append((name, address))
    return out


async def outage(config, interval, dark):
    branches = branches_of(config)
    # Not a region's first branch: its router is the region's core, which every other
    # gateway of the region names. Chosen at random (fixed seed) across all regions.
    candidates = [b for b in branches if not b.endswith("-b0000")]
    chosen = sorted(random.Random(12).sample(candidates, min(dark, len(candidates))))
    victims = {n: a for b in chosen for n, a in branches[b]}
    gateways = {branches[b][0][0] for b in chosen}
    app = common.Appliance(config)
    sse = common.SseClient(app.port)
    try:
        await sse.connect()
        total = len(common.devices_of(config))
        deadline = time.time() + common.seconds_of(interval) * 3 + 60
        while app.json("/api/v1/status")["devices"]["up"] < total:
            if time.time() > deadline:
                raise RuntimeError("not every device came up")
            await asyncio.sleep(0.5)
        await asyncio.sleep(1)
        wait = common.seconds_of(interval) * 3 + 20
        with common.Nft(TABLE, "replies") as nft:
            t0 = time.time()
            nft.block(list(victims.values()))
            blocked_at = (t0 + time.time()) / 2
            decided = {}
            while time.time() - blocked_at < wait and len(decided) < len(victims):
                await asyncio.sleep(0.5)
                decided = {}
                for t, name, data in sse.events():
                    if name == "transition" and data["device"] in victims and t >= blocked_at \
                            and data["status"] in ("down", "unreachable"):
                        decided.setdefault(data["device"], (t, data["status"]))
            await asyncio.sleep(3)  # the writer commits the alerts
            alerts = open_down_alerts(app)
            t0 = time.time()
            nft.unblock(list(victims.values()))
            lifted_at = (t0 + time.time()) / 2
            up = {}
            while time.time() - lifted_at < wait and len(up) < len(victims):
                await asyncio.sleep(0.5)
                up = {data["device"]: t for t, name, data in sse.events()
                      if name == "transition" and data["device"] in victims and t >= lifted_at
                      and data["status"] == "up"}
        statuses = [s for _, s in decided.values()]
        return {
            "victims": len(victims), "branches": len(chosen),
            "decided": [t - blocked_at for t, _ in decided.values()],
            "down": statuses.count("down"), "unreachable": statuses.count("unreachable"),
            "down_gateways": sum(1 for n, (_, s) in decided.items() if s == "down" and n in gateways),
            "alerts": len([a for a in alerts if a["device"] in victims]),
            "alerts_elsewhere": len([a for a in alerts if a["device"] not in victims]),
            "up": [t - lifted_at for t in up.values()],
        }
    finally:
        sse.close()
        app.stop()


def open_down_alerts(app):
    out, before = [], None
    while True:
        page = app.json("/api/v1/alerts?status=active&limit=1000" + (f"&before={before}" if before else ""))
        out += [a for a in page["alerts"] if a["condition"] == "device_down"]
        before = page.get("next_before")
        if not before:
            return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=100000)
    p.add_argument("--interval", default="10s")
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--dark", type=int, default=1250, help="branches blackholed at once")
    p.add_argument("--no-build", action="store_true")
    a = p.parse_args()
    if not a.no_build:
        common.build()
    r = common.Report(f"dependencies-{a.devices}", f"Dependencies: {a.devices:,} devices, {a.dark:,} branches dark")
    config = common.demo(a.devices, a.interval)
    settings = (config / "wardops.yaml").read_text()
    probe = lambda key: common.seconds_of(re.search(rf"^\s+{key}: (\S+)$", settings, re.M).group(1))
    flat = without_parents(config)
    branches = len(branches_of(config))
    print(f"dependencies: {a.devices} devices in {branches} branches at {a.interval}", flush=True)
    runs = {"with": [], "without": []}
    for kind in ["with", "without", "without", "with"]:
        m = cost(config if kind == "with" else flat, a.interval, a.seconds)
        print(f"    {kind} parents: {m['cpu_per_probe_us']:.2f} us CPU per probe, reload {m['reload']:.3f} s "
              f"(its own {m['reload_own']:.3f} s){'' if m['ok'] else ', RELOAD FAILED'}", flush=True)
        runs[kind].append(m)
    mean = lambda kind, key: sum(m[key] for m in runs[kind]) / len(runs[kind])
    cpu = mean("with", "cpu_per_probe_us") / mean("without", "cpu_per_probe_us")
    own = mean("with", "reload_own") / mean("without", "reload_own")
    r.figure("CPU per probe, with parents / without (mean of 2 runs each, ABBA)",
             f"{cpu:.3f}x ({mean('with', 'cpu_per_probe_us'):.2f} us / {mean('without', 'cpu_per_probe_us'):.2f} us)",
             "<= 1.05x", cpu <= 1.05)
    ok = all(m["ok"] for ms in runs.values() for m in ms)
    # The reloader's own duration is the cost; write -> revision adds the same settle
    # wait to both sides, which would hide a difference.
    r.figure("reload of 1,000 changes, with parents / without: the reload itself",
             f"{own:.3f}x ({mean('with', 'reload_own') * 1000:.1f} ms / {mean('without', 'reload_own') * 1000:.1f} ms)"
             + ("" if ok else "; a reload FAILED"), "<= 1.05x", ok and own <= 1.05)
    r.figure("… write → new revision in /api/v1/status", f"{mean('with', 'reload'):.3f} s / {mean('without', 'reload'):.3f} s")
    o = asyncio.run(outage(config, a.interval, a.dark))
    bound = common.seconds_of(a.interval) + probe("retry_interval") + probe("timeout") + 1
    complete = len(o["decided"]) == o["victims"]
    p99 = common.percentile(o["decided"], .99) if o["decided"] else float("inf")
    r.figure(f"{o['branches']:,} branches ({o['victims']:,} devices) dark: blackhole → decided (SSE)",
             f"p50 {common.percentile(o['decided'], .5):.2f} s, p99 {p99:.2f} s, max {max(o['decided'], default=0):.2f} s "
             f"({len(o['decided']):,}/{o['victims']:,})",
             f"p99 <= {bound:.1f} s (interval + retry_interval + timeout + 1 s)", complete and p99 <= bound)
    r.figure("… decided `down` / `unreachable`", f"{o['down']:,} / {o['unreachable']:,} "
             f"({o['down_gateways']:,} of the down are the branch gateways)",
             f"{o['branches']:,} / {o['victims'] - o['branches']:,}",
             o["down"] == o["down_gateways"] == o["branches"] and o["unreachable"] == o["victims"] - o["branches"])
    r.figure("… open `device_down` alerts", f"{o['alerts']:,} (elsewhere: {o['alerts_elsewhere']})",
             f"{o['branches']:,}, not {o['victims']:,}", o["alerts"] == o["branches"] and o["alerts_elsewhere"] == 0)
    r.figure("rule lifted → `up` (SSE)", f"p50 {common.percentile(o['up'], .5):.2f} s, "
             f"p99 {common.percentile(o['up'], .99):.2f} s ({len(o['up']):,}/{o['victims']:,})" if o["up"] else "none seen")
    r.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
