#!/usr/bin/env python3
"""Cluster (issue #18): M members on one PostgreSQL and one Redis, each with the same
inventory of N loopback devices, on this machine.

1. Steady state: CPU (% of a core) and RSS of each member over a window after every
   member is up, every device is `up` on every member and the leases match the
   rendezvous map; the probes each member sends (together they should probe every
   device once per interval, no more).
2. Failover: `kill -9` one member (each in turn), then poll the survivors'
   `/api/v1/devices` until every device of the victim's shards shows a `last_probe_at`
   after the kill; restart it, let the leases settle, repeat. Per kill: kill → every
   device probed again; per device: the victim's last probe → a survivor's first. Both
   against the bound of docs/cluster.md, 2 × interval + lease_ttl.
3. Cross-member events: an SSE client on every member, B devices blackholed with
   nftables (echo requests dropped on output, a table of this bench's own) and then
   lifted; for every transition, its receipt on each other member's stream minus its
   receipt on its owner's stream (target p99 <= 200 ms).
4. Join: shards whose lease changed owner when one more member starts (expected about
   1024 / (M + 1), all of them to the new member), then its SIGTERM hand-over.

The bench creates its own database `wardops_bench_cluster_<random>` on the PostgreSQL
at 127.0.0.1:5432 (user postgres) and drops it at the end, and runs a redis-server of
its own on a free loopback port. Member logs are in each member's directory
(WARDOPS_BENCH_KEEP=1 keeps them).

    bench/cluster.py --members 3 --devices 30000 --interval 10s --kills 10 --blackhole 300
    bench/cluster.py --quick      # 3 × 1,000 devices, 3 kills: checks that it works
"""

import argparse
import asyncio
import ctypes
import datetime
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

TABLE = "wardops_bench_cluster"
PG_SERVER = "postgres://postgres@127.0.0.1:5432"
SHARDS = 1024

# The appliance's shard and rendezvous map use xxh3 (xxhash-rust); Debian's libxxhash
# computes the same 64-bit XXH3, so the bench knows each device's shard and each shard's
# intended owner without asking the appliance.
try:
    _xxh = ctypes.CDLL("libxxhash.so.0")
except OSError:
    raise SystemExit("bench/cluster.py needs libxxhash.so.0 (apt-get install libxxhash0)")
_xxh.XXH3_64bits.restype = ctypes.c_uint64
_xxh.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_xxh.XXH3_64bits_withSeed.restype = ctypes.c_uint64
_xxh.XXH3_64bits_withSeed.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]


def xxh3(data, seed=None):
    if seed is None:
        return _xxh.XXH3_64bits(data, len(data))
    return _xxh.XXH3_64bits_withSeed(data, len(data), seed)


def shard_of(name):
    """`cluster::shard_of`."""
    return xxh3(name.encode()) % SHARDS


def rendezvous(members):
    """`cluster::Assignment`: the owner each shard should have, by shard."""
    members = sorted(set(members))
    seeds = [xxh3(m.encode()) for m in members]
    owners = []
    for shard in range(SHARDS):
        key = shard.to_bytes(2, "little")
        best, weight = 0, 0
        for i, seed in enumerate(seeds):
            w = xxh3(key, seed)
            if w > weight:
                best, weight = i, w
        owners.append(members[best])
    return owners


def unix(text):
    """RFC 3339 -> Unix seconds (fromisoformat is C; at 30,000 devices a strptime per
    device would cost the poll loop a third of a second)."""
    return datetime.datetime.fromisoformat(text).timestamp()


def psql(sql, db="postgres"):
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "postgres",
                    "-d", db, "-c", sql], check=True, stdout=subprocess.DEVNULL)


class Database:
    """A database of this run's own on the shared server; dropped at exit."""

    def __init__(self):
        self.name = f"wardops_bench_cluster_{secrets.token_hex(4)}"
        psql(f"CREATE DATABASE {self.name}")
        self.url = f"{PG_SERVER}/{self.name}"

    def drop(self):
        # FORCE: a member killed with -9 may leave a backend behind for a moment.
        psql(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


class Redis:
    """A redis-server of this run's own, loopback only, nothing persisted."""

    def __init__(self, directory):
        server = common.need("redis-server", "redis-server")
        self.port = common.free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.log = open(Path(directory) / "redis.log", "a")
        self.proc = subprocess.Popen([server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(directory)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        cli = common.need("redis-cli", "redis-tools")
        deadline = time.monotonic() + 10
        while subprocess.run([cli, "-p", str(self.port), "ping"], capture_output=True,
                             text=True).stdout.strip() != "PONG":
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"redis-server did not start; see {self.log.name}")
            time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class Member:
    """One cluster member: its own copy of the demo directory (inventory, settings with
    a `cluster:` section, data_dir, log), started and stopped as asked."""

    def __init__(self, member_id, demo_dir, base, db, redis, ttl):
        self.id = member_id
        self.dir = Path(base) / member_id
        shutil.copytree(demo_dir, self.dir)
        with open(self.dir / "wardops.yaml", "a") as f:
            f.write(f"cluster:\n  member_id: {member_id}\n  lease_ttl: {ttl}\n  redis_url: {redis.url}\n")
        (self.dir / "data").mkdir(exist_ok=True)
        self.env = {"WARDOPS_DATABASE_URL": db.url, "WARDOPS_DATA_DIR": str(self.dir / "data")}
        self.app = None

    def start(self):
        self.app = common.Appliance(self.dir, env=self.env)
        return self

    @property
    def running(self):
        return self.app is not None and self.app.proc.poll() is None

    def kill9(self):
        self.app.proc.kill()
        self.app.proc.wait()

    def stop(self):
        if self.app:
            self.app.stop()

    def cluster(self):
        return self.app.json("/api/v1/cluster")

    def status(self):
        return self.app.json("/api/v1/status")["devices"]

    def probe_times(self):
        """{device: its `last_probe_at` text or None}, as this member shows them."""
        return {d["name"]: d["last_probe_at"] for d in self.app.json("/api/v1/devices")["devices"]}


def lease_owners(report):
    owners = [None] * SHARDS
    for lease in report["leases"]:
        owners[lease["shard"]] = lease["owner"]
    return owners


def lease_epochs(report):
    return {lease["shard"]: lease["epoch"] for lease in report["leases"]}


def settle(members, timeout):
    """Waits until the lease table is exactly the rendezvous map of the running members,
    each of them says it acts on its share, and every member sees the same live set;
    returns the seconds it took."""
    t0 = time.monotonic()
    ids = sorted(m.id for m in members)
    want = rendezvous(ids)
    share = {i: want.count(i) for i in ids}
    while True:
        try:
            reports = {m.id: m.cluster() for m in members}
            ok = all(sorted(x["id"] for x in r["members"] if x["live"]) == ids for r in reports.values())
            ok = ok and lease_owners(reports[ids[0]]) == want
            ok = ok and all(r["this_member"]["shards_acting"] == share[i] for i, r in reports.items())
            if ok:
                return time.monotonic() - t0
        except OSError:
            pass
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"the leases did not settle on {ids} within {timeout:.0f} s")
        time.sleep(0.2)


def wait_up(members, up, timeout):
    """Waits until every member shows `up` devices up (its own and the others')."""
    t0 = time.monotonic()
    while not all(m.status()["up"] == up for m in members):
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"not every member showed {up} devices up within {timeout:.0f} s: "
                               + ", ".join(f"{m.id} {m.status()}" for m in members))
        time.sleep(0.25)
    return time.monotonic() - t0


def steady(members, seconds):
    """CPU, RSS and probes per member over `seconds`."""
    cpu0 = {m.id: m.app.cpu_seconds() for m in members}
    probes0 = {m.id: m.app.probes_total() for m in members}
    t0 = time.monotonic()
    rss_max = {m.id: 0 for m in members}
    while time.monotonic() - t0 < seconds:
        for m in members:
            rss_max[m.id] = max(rss_max[m.id], m.app.rss_bytes())
        time.sleep(min(5, max(0.1, seconds - (time.monotonic() - t0))))
    took = time.monotonic() - t0
    out = {}
    for m in members:
        rss_max[m.id] = max(rss_max[m.id], m.app.rss_bytes())
        own = m.app.own_metrics()
        out[m.id] = {
            "cpu": (m.app.cpu_seconds() - cpu0[m.id]) / took * 100,
            "rss": m.app.rss_bytes(), "rss_max": rss_max[m.id],
            "probes": (m.app.probes_total() - probes0[m.id]) / took,
            "renewal": common.metric(own, "wardops_cluster_lease_renewal_seconds"),
            "owned": common.metric(own, "wardops_cluster_shards_owned"),
            "refused": refused(own),
        }
    return out


def refused(metrics):
    """(records the fenced commit refused as stale epoch, records dropped before the
    spool because the shard was not held): totals since the member started."""
    return (common.metric(metrics, "wardops_cluster_epoch_conflicts_total"),
            common.metric(metrics, "wardops_cluster_stale_dropped_total"))


def take_over(victim, survivors, names, interval, ttl, how):
    """Stops `victim` (SIGKILL or SIGTERM) and follows its devices until a survivor has
    probed each of them. Returns per-device gaps and the kill → all re-probed time."""
    owners = lease_owners(survivors[0].cluster())
    shards = {s for s, o in enumerate(owners) if o == victim.id}
    mine = [n for n in names if shard_of(n) in shards]
    # Its last probe of each, read just before it stops: a probe in the few hundred ms
    # between this read and the kill would make the gap look longer, never shorter.
    before = victim.probe_times()
    last = {n: unix(before[n]) for n in mine if before[n]}
    t_stop = time.time()
    if how == "kill":
        victim.kill9()
    else:
        victim.stop()
    first, taken_at, seen = {}, None, {}
    double = set()
    # The longest time between two polls of one survivor: past an interval, a first
    # probe could go unseen and its device's gap would be counted an interval too long.
    polled, longest = {}, 0.0
    deadline = t_stop + 3 * (2 * interval + ttl) + 30
    while len(first) < len(mine) and time.time() < deadline:
        if taken_at is None:
            now_owners = lease_owners(survivors[0].cluster())
            if all(now_owners[s] not in (None, victim.id) for s in shards):
                taken_at = time.time()
        for s in survivors:
            # Polled well under an interval apart, so the first value after the stop is
            # the survivor's first probe (last_probe_at is when that probe started).
            times = s.probe_times()
            now = time.monotonic()
            longest = max(longest, now - polled.get(s.id, now))
            polled[s.id] = now
            for n in mine:
                text = times.get(n)
                if text is None or seen.get((s.id, n)) == text:
                    continue
                seen[(s.id, n)] = text
                t = unix(text)
                if t > t_stop:
                    if n in first and first[n][1] != s.id:
                        double.add(n)
                    if n not in first or t < first[n][0]:
                        first[n] = (t, s.id)
        time.sleep(0.5)
    gaps = [first[n][0] - last[n] for n in mine if n in first and n in last]
    return {
        "devices": len(mine), "shards": len(shards), "reprobed": len(first),
        "all_after": (max(t for t, _ in first.values()) - t_stop) if len(first) == len(mine) else float("inf"),
        "taken_after": (taken_at - t_stop) if taken_at else float("inf"),
        "gaps": gaps, "double": len(double), "longest_poll": longest,
    }


async def events(members, names, blackhole, interval, n_devices):
    """Blackholes `blackhole` devices and lifts the rule, with an SSE client on every
    member; returns, per transition and other member, its receipt there minus its
    receipt on its owner's stream, and minus the transition's `at`."""
    inventory = dict(common.devices_of(members[0].dir))
    victims = names[::max(1, len(names) // blackhole)][:blackhole]
    owners = lease_owners(members[0].cluster())
    owner_of = {n: owners[shard_of(n)] for n in victims}
    clients = {m.id: common.SseClient(m.app.port) for m in members}
    try:
        for c in clients.values():
            assert await c.connect()
        await asyncio.sleep(1)
        timeout = 3 * interval + 30
        with common.Nft(TABLE) as nft:
            started = time.time()
            nft.block([inventory[n] for n in victims])
            await asyncio.to_thread(wait_up, members, n_devices - len(victims), timeout)
            await asyncio.sleep(1)
            nft.unblock([inventory[n] for n in victims])
            await asyncio.to_thread(wait_up, members, n_devices, timeout)
        await asyncio.sleep(2)
    finally:
        for c in clients.values():
            c.close()
    received = {}
    for mid, c in clients.items():
        for t, name, data in c.events():
            if name == "transition" and data["device"] in owner_of and t >= started:
                received.setdefault((mid, data["device"], data["status"]), (t, data["at"]))
    relative, absolute, missing, transitions = [], [], 0, 0
    for (mid, device, status), (t_owner, at) in list(received.items()):
        if mid != owner_of[device]:
            continue
        transitions += 1
        for m in members:
            if m.id == mid:
                continue
            got = received.get((m.id, device, status))
            if got is None:
                missing += 1
                continue
            relative.append(got[0] - t_owner)
            absolute.append(got[0] - unix(at))
    return {"victims": len(victims), "transitions": transitions, "relative": relative,
            "absolute": absolute, "missing": missing,
            "others": len(members) - 1}


def ms(xs, q):
    return common.percentile(xs, q) * 1000


def stats_s(xs):
    if not xs:
        return "none"
    return (f"p50 {common.percentile(xs, .5):.1f} s, p99 {common.percentile(xs, .99):.1f} s, "
            f"max {max(xs):.1f} s")


def load():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--members", type=int, default=3)
    p.add_argument("--devices", type=int, default=30000)
    p.add_argument("--interval", default="10s")
    p.add_argument("--lease-ttl", default="6s")
    p.add_argument("--steady", type=float, default=60, help="seconds of the steady CPU/RSS window")
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--blackhole", type=int, default=300)
    p.add_argument("--quick", action="store_true", help="3 × 1,000 devices, 3 kills, 30 blackholed")
    p.add_argument("--no-build", action="store_true")
    a = p.parse_args()
    if a.quick:
        a.members, a.devices, a.steady, a.kills, a.blackhole = 3, 1000, 15, 3, 30
    if not a.no_build:
        common.build()
    common.need("psql", "postgresql-client")
    interval, ttl = common.seconds_of(a.interval), common.seconds_of(a.lease_ttl)
    bound = 2 * interval + ttl
    r = common.Report(f"cluster-{a.members}x{a.devices}",
                      f"Cluster: {a.members} members × {a.devices:,} devices at {a.interval}, lease_ttl {a.lease_ttl}")
    load0, rustc0 = load(), subprocess.run(["pgrep", "-c", "rustc"], capture_output=True, text=True).stdout.strip()
    print(f"cluster: {a.members} members × {a.devices} devices at {a.interval}, lease_ttl {a.lease_ttl} "
          f"(load {load0}, rustc processes {rustc0})", flush=True)
    base = Path(tempfile.mkdtemp(prefix="wardops-bench-cluster-"))
    demo = common.demo(a.devices, a.interval, out=base / "demo")
    names = [n for n, _ in common.devices_of(demo)]
    assert all(addr.startswith("127.") for _, addr in common.devices_of(demo))
    db, redis, members = Database(), None, []
    try:
        redis = Redis(base)
        ids = [f"m{i + 1}" for i in range(a.members + 1)]
        members = [Member(i, demo, base, db, redis, a.lease_ttl) for i in ids]
        running = members[:a.members]
        t0 = time.monotonic()
        for m in running:
            m.start()
        settled = settle(running, 120)
        up = wait_up(running, a.devices, 3 * interval + 60)
        print(f"  {a.members} members started, leases settled after {settled:.1f} s, "
              f"all devices up everywhere {time.monotonic() - t0:.1f} s after the first start", flush=True)
        # The first minutes also hold each member's upsert of the whole inventory and the
        # first transitions' writes: let them pass before the window.
        time.sleep(max(10, interval))

        # 1. Steady state.
        s = steady(running, a.steady)
        for mid, x in s.items():
            # "RSS" is read after the bench's one /metrics scrape (which grows it); the max is
            # of the readings every 5 s during the window, before that scrape.
            r.figure(f"{mid}: CPU / RSS over {a.steady:.0f} s steady",
                     f"{x['cpu']:.1f}% of a core / {x['rss'] / 2**20:.0f} MiB after a /metrics scrape "
                     f"(window max {x['rss_max'] / 2**20:.0f} MiB); "
                     f"{x['probes']:.0f} probes/s, {x['owned']:.0f} shards, renewal {x['renewal'] * 1000:.1f} ms")
        r.figure("device records refused at commit (stale epoch) / dropped before the spool, per member since "
                 "the cluster started",
                 ", ".join(f"{mid} {x['refused'][0]:,.0f} / {x['refused'][1]:,.0f}" for mid, x in s.items()))
        total = sum(x["probes"] for x in s.values())
        expected = a.devices / interval
        r.figure("probes/s, all members together", f"{total:,.0f} (each device once per interval: {expected:,.0f})",
                 f"{expected:,.0f} ± 5%", abs(total - expected) <= 0.05 * expected)

        # 2. Failover by kill -9, each member in turn.
        per_kill, gaps, taken, double, short, longest = [], [], [], 0, 0, 0.0
        for k in range(a.kills):
            victim = running[k % len(running)]
            survivors = [m for m in running if m is not victim]
            t = take_over(victim, survivors, names, interval, ttl, "kill")
            per_kill.append(t["all_after"])
            taken.append(t["taken_after"])
            gaps += t["gaps"]
            double += t["double"]
            short += t["devices"] - t["reprobed"]
            longest = max(longest, t["longest_poll"])
            print(f"    kill {k + 1}: {victim.id} ({t['shards']} shards, {t['devices']} devices): shards taken "
                  f"after {t['taken_after']:.1f} s, all devices probed again after {t['all_after']:.1f} s; "
                  f"per-device gap {stats_s(t['gaps'])}; {t['devices'] - t['reprobed']} never re-probed"
                  f"   (load {load()})", flush=True)
            victim.start()
            settle(running, 120)
            time.sleep(2)
        r.figure(f"kill -9 → every device of the victim probed again by a survivor ({a.kills} kills)",
                 stats_s(per_kill), f"<= 2 × {a.interval} + {a.lease_ttl} = {bound:.0f} s",
                 short == 0 and common.percentile(per_kill, .99) <= bound)
        r.figure("… per device: the victim's last probe → a survivor's first (all kills)",
                 f"{stats_s(gaps)} ({len(gaps):,} devices)", f"<= {bound:.0f} s",
                 short == 0 and common.percentile(gaps, .99) <= bound)
        r.figure("… kill -9 → every shard of the victim leased to a survivor", stats_s(taken),
                 f"<= lease_ttl + a round = {ttl * 4 / 3:.0f} s")
        r.figure("devices never re-probed / probed by two survivors", f"{short} / {double}", "0 / 0",
                 short == 0 and double == 0)
        r.figure("longest time between two polls of one survivor (the gaps are exact only under an interval)",
                 f"{longest:.1f} s", f"< {a.interval}", longest < interval)

        # 3. Cross-member event latency.
        e = asyncio.run(events(running, names, a.blackhole, interval, a.devices))
        rel, absolute = e["relative"], e["absolute"]
        expected_tr = 2 * e["victims"]
        r.figure(f"transitions of {e['victims']} blackholed devices seen on their owner / on every other member",
                 f"{e['transitions']} of {expected_tr} / {len(rel)} of {e['transitions'] * e['others']} "
                 f"({e['missing']} missing)", "all", e["transitions"] == expected_tr and e["missing"] == 0)
        r.figure("owner's SSE receipt → another member's SSE receipt",
                 f"p50 {ms(rel, .5):.1f} ms, p99 {ms(rel, .99):.1f} ms, max {ms(rel, 1):.1f} ms",
                 "p99 <= 200 ms", bool(rel) and ms(rel, .99) <= 200)
        r.figure("… transition's `at` (its probe's start) → another member's SSE receipt",
                 f"p50 {ms(absolute, .5):.1f} ms, p99 {ms(absolute, .99):.1f} ms")

        # 4. One more member joins; then it leaves by SIGTERM.
        report = running[0].cluster()
        before, epochs0 = lease_owners(report), lease_epochs(report)
        refused0 = {m.id: refused(m.app.own_metrics()) for m in running}
        new = members[a.members]
        t0 = time.monotonic()
        new.start()
        joined = settle(running + [new], 120)
        report = new.cluster()
        after, epochs1 = lease_owners(report), lease_epochs(report)
        # Each change of owner is one epoch: more epochs than moved shards would mean a
        # shard went through another owner on its way.
        takes = sum(epochs1[s] - epochs0.get(s, 0) for s in epochs1)
        moved = sum(1 for x, y in zip(before, after) if x != y)
        to_new = sum(1 for x, y in zip(before, after) if x != y and y == new.id)
        share = SHARDS / (a.members + 1)
        r.figure(f"shards moved when member {a.members + 1} joins (all to it / elsewhere)",
                 f"{moved} ({to_new} / {moved - to_new}; {takes} lease takes); settled {joined:.1f} s "
                 f"after it listened ({new.app.ready_after:.1f} s after its start)",
                 f"≈ {SHARDS} / {a.members + 1} = {share:.0f}, none elsewhere",
                 moved - to_new == 0 and abs(moved - share) <= 0.2 * share)
        time.sleep(max(5, interval))
        refused1 = {m.id: refused(m.app.own_metrics()) for m in running}
        r.figure(f"… records refused at commit / dropped before the spool on members 1-{a.members} across the join",
                 ", ".join(f"{i} {refused1[i][0] - refused0[i][0]:,.0f} / {refused1[i][1] - refused0[i][1]:,.0f}"
                           for i in refused0))
        t = take_over(new, running, names, interval, ttl, "term")
        r.figure(f"SIGTERM of member {a.members + 1} → every device of it probed again by another member",
                 f"{t['all_after']:.1f} s (shards taken after {t['taken_after']:.1f} s; "
                 f"per-device gap {stats_s(t['gaps'])})",
                 f"<= {a.interval} + 2 s", t["all_after"] <= interval + 2)
        r.note(f"lease_ttl {a.lease_ttl} (the default; renewal every {ttl / 3:.0f} s, fence margin {ttl / 6:.0f} s); "
               f"kill victims taken in turn m1, m2, m3, …; each restarted and its leases settled before the next kill")
        r.note(f"failover p99 is over {a.kills} kills (nearest rank: with 10 kills, the worst); "
               f"the per-device gaps are over every device of every victim")
        r.note(f"load average (1/5/15 min) {load0} at the start ({rustc0} rustc processes), {load()} at the end; "
               f"the machine has {os.cpu_count()} cores, shared")
        r.note("all members, PostgreSQL, Redis and the bench run on the same machine; the per-member CPU "
               "includes its share of nothing else (PostgreSQL and Redis not counted)")
    finally:
        for m in members:
            m.stop()
        if redis:
            redis.stop()
        db.drop()
        if not os.environ.get("WARDOPS_BENCH_KEEP"):
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"cluster: kept {base}", flush=True)
    r.save()
    print("\n| figure | measured | target | |\n|---|---|---|---|")
    for f in r.figures:
        verdict = "" if f["ok"] is None else ("met" if f["ok"] else "**MISSED**")
        print(f"| {f['what']} | {f['value']} | {f['target']} | {verdict} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
