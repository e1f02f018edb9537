#!/usr/bin/env python3
"""SSE fan-out: C concurrent `GET /api/v1/events` clients (raw asyncio sockets in this
one process), M devices blackholed with nftables and then lifted; for every transition
event at every client, receipt time minus the transition's `at`.

`at` is when the deciding probe started, so the figure also holds the probe's own
duration; the bench runs its inventory with `packets: 1`, so a probe that recovers a
device ends with its one reply (microseconds on loopback) and a blackholed send fails at
once. Also reported: the spread of one event over the clients (receipt minus the first
client's receipt).

    bench/sse.py --clients 1000 --devices 1000 --blackhole 20
"""

import argparse
import asyncio
import sys
import time

import common

TABLE = "wardops_bench_sse"


async def wait_status(app, key, want, timeout):
    deadline = time.time() + timeout
    while app.json("/api/v1/status")["devices"][key] != want:
        if time.time() > deadline:
            raise RuntimeError(f"devices.{key} never reached {want}")
        await asyncio.sleep(0.1)


async def measure(clients, devices, blackhole, interval):
    config = common.demo(devices, interval, settings=f"web:\n  max_event_streams: {clients + 100}\n")
    y = config / "wardops.yaml"
    y.write_text(y.read_text().replace("packets: 2", "packets: 1"))
    inventory = common.devices_of(config)
    victims = dict(inventory[::max(1, len(inventory) // blackhole)][:blackhole])
    app = common.Appliance(config)
    conns = []
    try:
        await wait_status(app, "up", devices, common.seconds_of(interval) * 3 + 30)
        t0 = time.time()
        for i in range(0, clients, 100):
            batch = [common.SseClient(app.port) for _ in range(min(100, clients - i))]
            await asyncio.gather(*(c.connect() for c in batch))
            conns += batch
        connect_s = time.time() - t0
        await asyncio.sleep(1)
        with common.Nft(TABLE) as nft:
            nft.block(list(victims.values()))
            await wait_status(app, "down", len(victims), 30)
            await asyncio.sleep(1)
            nft.unblock(list(victims.values()))
            await wait_status(app, "down", 0, 30)
        await asyncio.sleep(1)
        cpu = app.cpu_seconds()
    finally:
        for c in conns:
            c.close()
        app.stop()
    lat = {"down": [], "up": []}
    spread = []
    by_event = {}
    ok = 0
    for c in conns:
        evs = c.events()
        ok += c.status == 200
        for t, name, data in evs:
            if name == "transition" and data["device"] in victims:
                lat.setdefault(data["status"], []).append(t - common.rfc3339(data["at"]))
                by_event.setdefault(data["state_version"], []).append(t)
    for ts in by_event.values():
        first = min(ts)
        spread += [t - first for t in ts]
    return {"lat": lat, "spread": spread, "streams_ok": ok, "events": len(by_event), "connect_s": connect_s,
            "expected": clients * len(victims) * 2, "cpu": cpu}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--blackhole", type=int, default=20)
    p.add_argument("--interval", default="1s")
    p.add_argument("--no-build", action="store_true")
    a = p.parse_args()
    if not a.no_build:
        common.build()
    print(f"sse: {a.clients} clients, {a.blackhole} of {a.devices} devices down and up", flush=True)
    m = asyncio.run(measure(a.clients, a.blackhole and a.devices, a.blackhole, a.interval))
    r = common.Report("sse", f"SSE fan-out: {a.clients:,} clients")
    both = m["lat"]["down"] + m["lat"]["up"]
    ms = lambda xs, q: common.percentile(xs, q) * 1000
    r.figure("streams opened", f"{m['streams_ok']}/{a.clients} (in {m['connect_s']:.1f} s)", f"{a.clients}",
             m["streams_ok"] == a.clients)
    r.figure("transition events received", f"{len(both):,} of {m['expected']:,} expected", "all", len(both) == m["expected"])
    r.figure("transition → receipt, all clients and transitions",
             f"p50 {ms(both, .5):.1f} ms, p99 {ms(both, .99):.1f} ms, max {ms(both, 1):.1f} ms", "p99 < 100 ms",
             ms(both, .99) < 100)
    r.figure("… of `down` / `up` transitions (p99)", f"{ms(m['lat']['down'], .99):.1f} ms / {ms(m['lat']['up'], .99):.1f} ms")
    r.figure("spread of one event over the clients", f"p50 {ms(m['spread'], .5):.1f} ms, p99 {ms(m['spread'], .99):.1f} ms")
    r.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
