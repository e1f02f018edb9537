#!/usr/bin/env python3
"""Notifications to a webhook: how fast, how grouped, how many per second.

A webhook receiver in this script (HTTP/1.1 keep-alive, answers 200, or 503 while told
to be down) records when each message arrives. The inventory: `--branches` branches of
`--per-branch` loopback devices, no parents (each device alerts on its own), probed every
`--interval`. Four measurements, each on a fresh appliance and store:

1. `group_wait: 0` (group_by [device]): `--sample` devices blackholed at once; for each,
   transition (the notice's `opened_at`: when the deciding probe started; the echo
   requests are dropped on output, so that probe fails at once and its start is the
   decision) → receipt.
   Target p99 <= 200 ms.
2. The default grouping (group_by [region, branch], group_wait 5s): the same devices;
   for each message, its first notice's transition → receipt. Target <= group_wait + 200 ms.
3. A region outage: every device (1,000 in 100 branches by default) blackholed at once:
   the messages that arrive, by branch. Target: one per branch (100), not one per device.
4. Delivery rate: the receiver down while every device goes down (group_by [device]: one
   message each), then up: messages per second from the first receipt to the last.
   Target >= 500 messages/s.

    bench/notify.py --branches 100 --per-branch 10 --interval 1s
"""

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import common

TABLE = "wardops_bench_notify"


class Receiver:
    """The webhook: every message with its arrival time."""

    def __init__(self):
        self.lock = threading.Lock()
        self.got = []  # (arrival, body)
        self.down = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                arrived = time.time()
                status = 503 if outer.down else 200
                if status == 200:
                    with outer.lock:
                        outer.got.append((arrived, json.loads(body)))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def messages(self):
        with self.lock:
            return list(self.got)

    def clear(self):
        with self.lock:
            self.got.clear()

    def close(self):
        self.server.shutdown()


def config(receiver, branches, per, interval, route):
    out = Path(tempfile.mkdtemp(prefix="wardops-bench-notify-"))
    import atexit
    atexit.register(shutil.rmtree, out, True)
    (out / "inventory").mkdir()
    lines = ["regions:", "  - name: bench", "    branches:"]
    addresses = []
    for b in range(branches):
        lines += [f"      - name: b{b:04d}", "        devices:"]
        for d in range(per):
            n = b * per + d
            a = f"127.121.{n // 250}.{n % 250 + 1}"
            addresses.append(a)
            lines.append(f"          - {{ name: b{b:04d}-d{d:02d}, address: {a}, kind: atm }}")
    (out / "inventory" / "bench.yaml").write_text("\n".join(lines) + "\n")
    (out / "wardops.yaml").write_text(f"""inventory: inventory
probe:
  interval: {interval}
  timeout: 500ms
  packets: 1
  down_after: 2
  up_after: 1
  retry_interval: 300ms
alerts:
  flapping_transitions: 1000
notifications:
  max_backoff: 1s
  receivers:
    - name: bench
      webhook:
        url: http://127.0.0.1:{receiver.port}/hook
        timeout: 5s
  routes:
    - receivers: [bench]
{route}""")
    return out, addresses


def when(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def notices(msgs):
    return [(arrived, n) for arrived, m in msgs for n in m["notices"]]


def wait(what, check, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = check()
        if v:
            return v
        time.sleep(0.05)
    print(f"  timed out waiting for {what}", file=sys.stderr)
    return None


def run(receiver, a, route, victims_of, settle):
    """Starts an appliance with `route`, blackholes `victims_of(addresses)` once every
    device is up, and returns the firing messages received within `settle` seconds."""
    receiver.clear()
    receiver.down = False
    cfg, addresses = config(receiver, a.branches, a.per_branch, a.interval, route)
    victims = victims_of(addresses)
    with common.Appliance(cfg) as app, common.Nft(TABLE) as nft:
        total = len(addresses)
        wait("every device up", lambda: app.json("/api/v1/status")["devices"]["up"] == total, 120)
        nft.block(victims)
        wait("every notice", lambda: len(notices(receiver.messages())) >= len(victims), settle)
        time.sleep(1)
        return [(t, m) for t, m in receiver.messages() if m["status"] == "firing"], len(victims)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--branches", type=int, default=100)
    p.add_argument("--per-branch", type=int, default=10)
    p.add_argument("--interval", default="1s")
    p.add_argument("--sample", type=int, default=100, help="devices blackholed for the latency runs")
    p.add_argument("--no-build", action="store_true")
    a = p.parse_args()
    if not a.no_build:
        common.build()
    devices = a.branches * a.per_branch
    r = common.Report(f"notify-{devices}", f"Notifications: {devices:,} devices in {a.branches:,} branches")
    receiver = Receiver()
    # Spread over the branches: one device of each of the first `sample` branches.
    sample = lambda addrs: addrs[:: a.per_branch][: a.sample]

    # 1. group_wait 0.
    route = "      group_by: [device]\n      group_wait: 0s\n      group_interval: 0s\n"
    msgs, n = run(receiver, a, route, sample, 60)
    lat = [t - when(x["opened_at"]) for t, x in notices(msgs)]
    p99 = common.percentile(lat, .99) if lat else float("inf")
    r.figure(f"transition → webhook receipt, group_wait 0 ({len(lat)}/{n} devices)",
             f"p50 {common.fmt_ms(common.percentile(lat, .5))}, p99 {common.fmt_ms(p99)}" if lat else "none",
             "p99 <= 200 ms", len(lat) == n and p99 <= 0.2)

    # 2. Default grouping.
    msgs, n = run(receiver, a, "", sample, 60)
    first = [t - min(when(x["opened_at"]) for x in m["notices"]) for t, m in msgs]
    p99 = common.percentile(first, .99) if first else float("inf")
    r.figure(f"… default group_wait (5s): first transition of a message → receipt ({len(msgs)} messages)",
             f"p50 {common.percentile(first, .5):.3f} s, p99 {p99:.3f} s" if first else "none",
             "<= 5.2 s", bool(first) and p99 <= 5.2)

    # 3. A region outage.
    msgs, n = run(receiver, a, "", lambda addrs: addrs, 120)
    by_branch = {}
    for _, m in msgs:
        by_branch.setdefault(m["group"].get("branch"), 0)
        by_branch[m["group"].get("branch")] += 1
    told = len(notices(msgs))
    r.figure(f"region outage: {n:,} devices in {a.branches:,} branches → webhook messages",
             f"{len(msgs):,} messages for {len(by_branch):,} branches ({told:,} notices)",
             f"{a.branches:,}, not {n:,}", len(msgs) == a.branches and told == n)

    # 4. Delivery rate from a backlog.
    receiver.clear()
    route = "      group_by: [device]\n      group_wait: 0s\n      group_interval: 0s\n"
    cfg, addresses = config(receiver, a.branches, a.per_branch, a.interval, route)
    with common.Appliance(cfg) as app, common.Nft(TABLE) as nft:
        wait("every device up", lambda: app.json("/api/v1/status")["devices"]["up"] == len(addresses), 120)
        receiver.down = True
        nft.block(addresses)

        def backlog():
            page = app.json("/api/v1/notifications?limit=1")
            return page["receivers"][0]["pending_messages"] >= len(addresses)
        wait("the backlog stored", backlog, 120)
        receiver.down = False
        wait("the backlog delivered", lambda: len(receiver.messages()) >= len(addresses), 120)
        got = receiver.messages()
    if len(got) >= 2:
        span = got[-1][0] - got[0][0]
        rate = (len(got) - 1) / span if span > 0 else float("inf")
        r.figure(f"delivery rate to a fast receiver ({len(got):,} messages from a backlog)",
                 f"{rate:,.0f} messages/s", ">= 500 messages/s", rate >= 500)
    else:
        r.figure("delivery rate to a fast receiver", "no backlog delivered", ">= 500 messages/s", False)
    receiver.close()
    r.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
