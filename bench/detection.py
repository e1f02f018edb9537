#!/usr/bin/env python3
"""Detection latency: blackhole N loopback devices with nftables at a known instant
(a table of this bench's own, always deleted; by default the echo replies are dropped,
so that probes time out as with a real outage), and measure when each turns `down` in
`GET /api/v1/devices?status=down` (polled every 50 ms) and in the SSE feed, then lift
the rule and measure when each recovers. Default thresholds (down_after 2, up_after 1), with the
timeout and retry_interval `wardops demo --interval` picks, at each given interval.

    bench/detection.py --devices 1000 --blackhole 100 --intervals 10s,1s
"""

import argparse
import asyncio
import sys
import time

import common

TABLE = "wardops_bench_detection"


async def poll_down(app, watched, seen, want_down, stop_when_all, timeout):
    """Polls the down list until every watched device is (want_down) or not (not want_down)
    in it; records the first time each is seen so."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        body = await asyncio.to_thread(app.json, "/api/v1/devices?status=down")
        t = time.time()
        down = {d["name"] for d in body["devices"]}
        for name in watched:
            if name not in seen and (name in down) == want_down:
                seen[name] = t
        if stop_when_all and len(seen) == len(watched):
            return
        await asyncio.sleep(0.05)


async def measure(devices, blackhole, interval, drop):
    config = common.demo(devices, interval)
    inventory = common.devices_of(config)
    step = max(1, len(inventory) // blackhole)
    victims = dict(inventory[::step][:blackhole])  # spread over regions and branches
    app = common.Appliance(config)
    sse = common.SseClient(app.port)
    try:
        await sse.connect()
        # All decided before the outage starts.
        deadline = time.time() + common.seconds_of(interval) * 3 + 30
        while app.json("/api/v1/status")["devices"]["up"] < devices:
            if time.time() > deadline:
                raise RuntimeError("not every device came up")
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)
        timeout = common.seconds_of(interval) * 2 + 15
        with common.Nft(TABLE, drop) as nft:
            t0 = time.time()
            nft.block(list(victims.values()))
            blocked_at = (t0 + time.time()) / 2
            down_json = {}
            await poll_down(app, victims, down_json, True, True, timeout)
            await asyncio.sleep(0.3)
            down_list = {d["name"]: d for d in app.json("/api/v1/devices?status=down")["devices"]}
            t0 = time.time()
            nft.unblock(list(victims.values()))
            lifted_at = (t0 + time.time()) / 2
            up_json = {}
            await poll_down(app, victims, up_json, False, True, timeout)
        await asyncio.sleep(0.5)
        down_sse, up_sse = {}, {}
        for t, name, data in sse.events():
            if name == "transition" and data["device"] in victims:
                if data["status"] == "down" and t >= blocked_at:
                    down_sse.setdefault(data["device"], t)
                elif data["status"] == "up" and t >= lifted_at:
                    up_sse.setdefault(data["device"], t)
        down_since = [common.rfc3339(d["down_since"]) - blocked_at for n, d in down_list.items()
                      if n in victims and d["down_since"]]
        false_downs = len([n for n in down_list if n not in victims])
        lat = lambda seen, t: [v - t for v in seen.values()]
        return {
            "victims": len(victims),
            "down_json": lat(down_json, blocked_at), "down_sse": lat(down_sse, blocked_at),
            "up_json": lat(up_json, lifted_at), "up_sse": lat(up_sse, lifted_at),
            "first_failure": down_since, "false_downs": false_downs,
        }
    finally:
        sse.close()
        app.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--blackhole", type=int, default=100)
    p.add_argument("--intervals", default="10s,1s")
    p.add_argument("--drop", choices=["replies", "requests"], default="replies",
                   help="drop the echo replies on input (the probe times out, as with a real outage) "
                        "or the requests on output (the send fails at once)")
    p.add_argument("--no-build", action="store_true")
    a = p.parse_args()
    if not a.no_build:
        common.build()
    how = {"replies": "echo replies dropped: probes time out", "requests": "echo requests dropped: sends fail at once"}
    r = common.Report(f"detection-{a.drop}", f"Detection: {a.blackhole} of {a.devices:,} devices blackholed ({how[a.drop]})")
    targets = {"10s": 13.0, "1s": 3.0}
    for interval in a.intervals.split(","):
        print(f"detection: {a.blackhole} of {a.devices} devices blackholed at interval {interval}", flush=True)
        m = asyncio.run(measure(a.devices, a.blackhole, interval, a.drop))
        s = lambda xs: (f"p50 {common.percentile(xs, .5):.2f} s, p99 {common.percentile(xs, .99):.2f} s, "
                        f"max {max(xs):.2f} s ({len(xs)}/{m['victims']})" if xs else "none seen")
        limit = targets.get(interval)
        worst = max(common.percentile(m["down_json"], .99), common.percentile(m["down_sse"], .99))
        complete = len(m["down_json"]) == len(m["down_sse"]) == m["victims"]
        r.figure(f"{interval}: blackhole → `down` in JSON", s(m["down_json"]),
                 f"p99 <= {limit:.0f} s" if limit else "", (complete and worst <= limit) if limit else None)
        r.figure(f"{interval}: blackhole → `down` via SSE", s(m["down_sse"]),
                 f"p99 <= {limit:.0f} s" if limit else "", (complete and worst <= limit) if limit else None)
        r.figure(f"{interval}: blackhole → first failed probe (`down_since`)", s(m["first_failure"]))
        r.figure(f"{interval}: rule lifted → `up` in JSON / SSE", f"{s(m['up_json'])} / {s(m['up_sse'])}")
        r.figure(f"{interval}: false downs among the other devices", f"{m['false_downs']}", "0", m["false_downs"] == 0)
    r.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
