#!/usr/bin/env python3
"""ISP uplinks over SNMP (issue #19): N routers with 2 uplinks each, polled every 30 s,
served by snmpsim on N distinct loopback addresses (127.161.a.b:161), side by side with
Debian's prometheus-snmp-exporter walking the same interfaces. Targets: the appliance's
SNMP share of CPU <= 10 % of a core, 0 false downs.

Parts (each can be run alone with --parts; all three run in this order by default):

1. simulator: snmpsim (`snmpsim-command-responder`, one process serving a share of the
   agents, `--sim-processes` of them, each with `--args-from-file`: 10,000
   `--agent-udpv4-endpoint`s start in a few seconds) answering a recorded branch
   router's interfaces (Gi0/0 "MAGTI-uplink" and Gi0/1 "SILKNET-uplink" up, a loopback,
   an admin-down port, a tunnel; 64-bit counters). Its start-up time, and its capacity:
   a load generator of this script's own (one UDP socket, BER by hand, paced) sends the
   appliance's request shape (one GETBULK of the 7 columns, 6 repetitions) and
   snmp_exporter's (7 GETBULKs of one column, 25 repetitions) to every agent at the
   rate the poll needs (N / interval per second) and at 3× it: answered share, answer
   rate, latency p50/p99, and the simulator's own CPU.
   snmpsim is pysnmp: about 6 ms of CPU per answer of either shape, so one process
   answers ~150 requests/s and two processes share the same 2 cores; 10,000 agents
   every 30 s need 333/s (wardops) and 2,333/s (snmp_exporter). Where it cannot keep
   up (`--simulator auto`, the default) the other parts run on the **replay agent**
   instead: this script's own v2c agent (`--replay-agent`, a process of its own on the
   same addresses) answering GET/GETNEXT/GETBULK over the same records with every
   distinct request's answer computed once, checked at start to return the same
   varbinds as snmpsim for every request shape the clients send. Its CPU is measured
   beside theirs, so the simulator is never the bottleneck and never hides in a figure.
2. exporter: prometheus-snmp-exporter with a hand-written module (`if_mib7`: the same 7
   columns wardops reads, with ifName/ifDescr/ifAlias as lookups on the status and
   counter metrics as the generator's if_mib does; max_repetitions its default 25),
   scraped for every target once per interval by an asyncio driver of this script
   (targets spread evenly over the interval as Prometheus spreads them, at most
   `--concurrency` in flight). Why not Prometheus itself: its TSDB would add
   ingestion work that wardops' side has no counterpart for, and this driver's own CPU
   is measured separately anyway. Exporter CPU and RSS, driver CPU, simulator CPU,
   scrape duration p50/p99, failed scrapes, false downs (an uplink whose ifOperStatus
   is not 1 in a scrape, or a failed scrape).
3. wardops: the release binary (common.BINARY) on an inventory of the same N routers
   (devices `snmp: { community_env: WARDOPS_SNMP_COMMUNITY, port: 161 }` with their two
   uplinks by alias; the poll interval the default 30 s, else on the device's `snmp:`),
   each pinged too, after a baseline of the same inventory without `snmp:`/`uplinks:`.
   CPU over the window (>= 2 poll rounds, >= 60 s) with and without SNMP, the
   difference being the SNMP share; RSS; polls per second, failures, skips and poll
   duration (the poller's own counters); false downs: `wardops_uplink_up` samples not
   1 (or absent) at the end, uplinks not `up` in a sample of 100
   `GET /api/v1/devices/{name}`, any `uplink_down` alert in `GET /api/v1/alerts`, any
   `wardops_device_on_backup_line` 1. A binary without the poller (its `check`
   refuses `snmp:`) gives the baseline alone.

Only loopback addresses are used (asserted): agents on 127.161.a.b:161.

    bench/snmp.py --agents 10000 --interval 30s                       # all three parts
    bench/snmp.py --agents 10000 --parts simulator --sim-processes 2  # snmpsim alone
    bench/snmp.py --agents 10000 --parts exporter --simulator snmpsim --exporter-agents 500
    bench/snmp.py --quick --no-wardops                                # 500 agents, short

The appliance is common.BINARY (target/release/wardops, or WARDOPS_BENCH_BINARY, e.g.
$CARGO_TARGET_DIR/release/wardops in a worktree). Take the bench lock and run it only
with no build running (`flock /tmp/bench.lock bench/snmp.py ...`, `pgrep -c rustc` 0):
the machine is shared."""

import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

COMMUNITY = "public"
FIRST_OCTETS = "127.161"

# ---------------------------------------------------------------------------------
# The recorded router and its agents

# (ifIndex, ifName, ifDescr, ifAlias, admin, oper)
ROUTER = [
    (1, "Gi0/0", "GigabitEthernet0/0", "MAGTI-uplink", 1, 1),
    (2, "Gi0/1", "GigabitEthernet0/1", "SILKNET-uplink", 1, 1),
    (3, "Lo0", "Loopback0", "mgmt", 1, 1),
    (4, "Gi0/2", "GigabitEthernet0/2", "spare", 2, 2),
    (5, "Tu0", "Tunnel0", "to-HQ", 1, 1),
]
UPLINKS = [("Magti", "MAGTI-uplink"), ("Silknet", "SILKNET-uplink")]

IF_ENTRY, IF_X_ENTRY = "1.3.6.1.2.1.2.2.1", "1.3.6.1.2.1.31.1.1.1"
# The 7 columns wardops reads (src/snmp/table.rs), in the order it asks for them.
COLUMNS = [f"{IF_X_ENTRY}.1", f"{IF_ENTRY}.2", f"{IF_X_ENTRY}.18", f"{IF_ENTRY}.7", f"{IF_ENTRY}.8",
           f"{IF_X_ENTRY}.6", f"{IF_X_ENTRY}.10"]
WARDOPS_REPETITIONS = 6  # src/snmp.rs MAX_REPETITIONS
EXPORTER_REPETITIONS = 25  # snmp_exporter's default max_repetitions


def snmprec():
    """The router as a `.snmprec` (OID|TYPE|VALUE; 2 Integer, 4 OctetString, 70
    Counter64), in OID order."""
    lines = ["1.3.6.1.2.1.1.1.0|4|Cisco IOS Software, ISR4321 (recorded for wardops bench)",
             "1.3.6.1.2.1.1.5.0|4|branch-rtr", f"1.3.6.1.2.1.2.1.0|2|{len(ROUTER)}"]
    for col, ty, val in [(1, 2, lambda r: r[0]), (2, 4, lambda r: r[2]), (3, 2, lambda r: 6),
                         (7, 2, lambda r: r[4]), (8, 2, lambda r: r[5])]:
        lines += [f"{IF_ENTRY}.{col}.{r[0]}|{ty}|{val(r)}" for r in ROUTER]
    for col, ty, val in [(1, 4, lambda r: r[1]), (6, 70, lambda r: 987_654_321_000 + r[0]),
                         (10, 70, lambda r: 123_456_789_000 + r[0]), (18, 4, lambda r: r[3])]:
        lines += [f"{IF_X_ENTRY}.{col}.{r[0]}|{ty}|{val(r)}" for r in ROUTER]
    lines.append("1.3.6.1.2.1.31.1.5.0|67|0")  # ifTableLastChange: something after the table
    return "\n".join(lines) + "\n"


def agent_addresses(n):
    """N distinct loopback addresses: 127.161.a.b with b in 1..250."""
    out = [f"{FIRST_OCTETS}.{i // 250}.{i % 250 + 1}" for i in range(n)]
    assert all(a.startswith("127.") for a in out)
    return out


# ---------------------------------------------------------------------------------
# BER, by hand: the load generator must not depend on the clients under test


def _len(n):
    if n < 128:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def tlv(tag, content):
    return bytes([tag]) + _len(len(content)) + content


def ber_int(v):
    return tlv(0x02, v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big", signed=True))


def ber_oid(text):
    arcs = [int(x) for x in text.split(".")]
    out = bytearray([40 * arcs[0] + arcs[1]])
    for a in arcs[2:]:
        chunk = [a & 0x7F]
        a >>= 7
        while a:
            chunk.append(0x80 | (a & 0x7F))
            a >>= 7
        out += bytes(reversed(chunk))
    return tlv(0x06, bytes(out))


def getbulk(request_id, oids, repetitions, community=COMMUNITY):
    """A v2c GetBulkRequest, non-repeaters 0."""
    vbs = b"".join(tlv(0x30, ber_oid(o) + b"\x05\x00") for o in oids)
    pdu = tlv(0xA5, ber_int(request_id) + ber_int(0) + ber_int(repetitions) + tlv(0x30, vbs))
    return tlv(0x30, ber_int(1) + tlv(0x04, community.encode()) + pdu)


def get(request_id, oid, community=COMMUNITY):
    pdu = tlv(0xA0, ber_int(request_id) + ber_int(0) + ber_int(0) + tlv(0x30, tlv(0x30, ber_oid(oid) + b"\x05\x00")))
    return tlv(0x30, ber_int(1) + tlv(0x04, community.encode()) + pdu)


def _read(buf, i):
    """(tag, content start, content end) of the TLV at i."""
    tag, n = buf[i], buf[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(buf[i:i + k], "big")
        i += k
    return tag, i, i + n


def response_of(buf):
    """(request id, error status, varbind count) of a v2c Response, or None."""
    try:
        _, i, _ = _read(buf, 0)  # message
        _, _, i = _read(buf, i)  # version
        _, _, i = _read(buf, i)  # community
        tag, i, _ = _read(buf, i)  # PDU
        if tag != 0xA2:
            return None
        _, s, e = _read(buf, i)
        rid = int.from_bytes(buf[s:e], "big", signed=True)
        _, s, i = _read(buf, e)
        status = int.from_bytes(buf[s:i], "big")
        _, _, i = _read(buf, i)  # error index
        _, s, e = _read(buf, i)  # varbind list
        count = 0
        while s < e:
            _, _, s = _read(buf, s)
            count += 1
        return rid, status, count
    except (IndexError, ValueError):
        return None


# ---------------------------------------------------------------------------------
# The simulator


class Simulator:
    """snmpsim serving `addresses` (port 161), split over `processes` processes, each
    with `--args-from-file` (10,000 endpoints are too long a command line otherwise)."""

    def __init__(self, base, addresses, processes=1, kind="snmpsim"):
        self.kind = kind
        self.dir = Path(base) / kind
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        (self.dir / "data" / f"{COMMUNITY}.snmprec").write_text(snmprec())
        self.addresses = addresses
        self.shares = [addresses[k::processes] for k in range(processes)]
        self.procs = []
        t0 = time.monotonic()
        for k, share in enumerate(self.shares):
            (self.dir / f"cache{k}").mkdir(exist_ok=True)
            args = self.dir / f"args{k}.txt"
            args.write_text("".join(f"--agent-udpv4-endpoint={a}:161\n" for a in share))
            log = open(self.dir / f"snmpsim{k}.log", "w")
            if kind == "snmpsim":
                cmd = ["snmpsim-command-responder", "--logging-method=null", "--data-dir", str(self.dir / "data"),
                       "--cache-dir", str(self.dir / f"cache{k}"), "--args-from-file", str(args)]
            else:
                cmd = [sys.executable, str(Path(__file__).resolve()), "--replay-agent", str(args)]
            self.procs.append(subprocess.Popen(cmd, env=dict(os.environ, SNMPSIM_ALLOW_ROOT="true"),
                                               stdout=log, stderr=log))
        for k, share in enumerate(self.shares):
            self.wait_answering(share[-1], self.procs[k], 300)
        self.started_after = time.monotonic() - t0

    def wait_answering(self, address, proc, timeout):
        deadline = time.monotonic() + timeout
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.3)
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"{self.kind} exited ({proc.returncode}); see {self.dir}/snmpsim*.log")
                s.sendto(get(1, "1.3.6.1.2.1.1.5.0"), (address, 161))
                try:
                    if s.recv(2048):
                        return
                except socket.timeout:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"{self.kind} did not answer on {address}:161 within {timeout} s")

    def cpu_seconds(self):
        return sum(common.cpu_seconds(p.pid) for p in self.procs)

    def rss_bytes(self):
        return sum(common.rss_bytes(p.pid) for p in self.procs)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


class _Load(asyncio.DatagramProtocol):
    def __init__(self):
        self.sent, self.answers, self.latencies, self.errors, self.varbinds = {}, 0, [], 0, 0

    def datagram_received(self, data, addr):
        r = response_of(data)
        if r is None:
            self.errors += 1
            return
        rid, status, count = r
        t = self.sent.pop(rid, None)
        if t is None:
            return
        self.answers += 1
        self.varbinds += count
        self.latencies.append(time.monotonic() - t)
        if status:
            self.errors += 1


async def _load(addresses, shape, rate, seconds, mark):
    """Sends `shape`'s requests to every agent, `rate` agents a second, for `seconds`;
    `mark()` when the last is sent (the CPU window), then waits 2 s for stragglers."""
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(_Load, local_addr=("127.0.0.1", 0))
    sock = transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    if shape == "wardops":
        requests = [(COLUMNS, WARDOPS_REPETITIONS)]
    else:  # snmp_exporter: a walk per column, the first GETBULK of each (5 rows fit in 25)
        requests = [([c], EXPORTER_REPETITIONS) for c in COLUMNS]
    total, rid, t0 = int(rate * seconds), 1, time.monotonic()
    for i in range(total):
        due = t0 + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        address = addresses[i % len(addresses)]
        for oids, reps in requests:
            proto.sent[rid] = time.monotonic()
            transport.sendto(getbulk(rid, oids, reps), (address, 161))
            rid += 1
    mark(proto.answers)
    await asyncio.sleep(2.0)  # stragglers
    transport.close()
    return {"requests": rid - 1, "answers": proto.answers, "errors": proto.errors,
            "latencies": proto.latencies, "varbinds": proto.varbinds, "elapsed": time.monotonic() - t0}


def capacity(sim, shape, rate, seconds):
    """The simulator's answers to `shape` at `rate` agents/s; CPU and the answer rate
    over the sending window (answers still queued then count as answered, late)."""
    c0, me0, t0 = sim.cpu_seconds(), common.cpu_seconds(os.getpid()), time.monotonic()
    end = {}
    mark = lambda answers: end.update(cpu=sim.cpu_seconds(), me=common.cpu_seconds(os.getpid()),
                                      t=time.monotonic(), answers=answers)
    out = asyncio.run(_load(sim.addresses, shape, rate, seconds, mark))
    window = end["t"] - t0
    out.update(sim_cpu=(end["cpu"] - c0) / window, me_cpu=(end["me"] - me0) / window,
               answered=out["answers"] / out["requests"] if out["requests"] else float("nan"),
               p50=common.percentile(out["latencies"], 0.50), p99=common.percentile(out["latencies"], 0.99),
               answers_per_s=end["answers"] / window)
    return out


def drain(sim, timeout=120):
    """Waits until the simulator is idle (under 5 % of a core for a second): a backlog
    of one capacity run must not be answered on the next run's time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c0 = sim.cpu_seconds()
        time.sleep(1)
        if sim.cpu_seconds() - c0 < 0.05:
            return


def part_simulator(r, sim, a):
    interval = common.seconds_of(a.interval)
    r.figure(f"{sim.kind}: {len(sim.addresses):,} agents in {len(sim.procs)} process(es), start until the last answers",
             f"{sim.started_after:.1f} s (RSS {sim.rss_bytes() / 2**20:.0f} MiB)")
    need = len(sim.addresses) / interval
    results = {}
    for shape, factor in [("wardops", 1), ("wardops", 3), ("exporter", 1)]:
        rate = need * factor
        drain(sim)
        m = capacity(sim, shape, rate, a.sim_seconds)
        per = 1 if shape == "wardops" else len(COLUMNS)
        label = ("wardops' shape (1 GETBULK × 7 columns, 6 rows)" if shape == "wardops"
                 else "snmp_exporter's shape (7 GETBULKs, 25 rows)")
        ok = m["answered"] >= 0.999 if factor == 1 else None
        r.figure(f"{sim.kind} answering {label} at {factor}× the poll rate ({rate:.0f} agents/s, "
                 f"{rate * per:.0f} requests/s) for {a.sim_seconds:.0f} s",
                 f"{m['answered'] * 100:.2f} % answered ({m['answers_per_s']:.0f}/s, "
                 f"{m['varbinds'] / max(1, m['answers']):.0f} varbinds each), "
                 f"latency p50 {common.fmt_ms(m['p50'])} p99 {common.fmt_ms(m['p99'])}; "
                 f"simulator CPU {m['sim_cpu'] * 100:.0f} % of a core, load generator {m['me_cpu'] * 100:.0f} %",
                 ">= 99.9 % answered at 1× (the simulator is not the bottleneck)" if ok is not None else "", ok)
        results[(shape, factor)] = m
    return results


# ---------------------------------------------------------------------------------
# The replay agent: the same records, answered from a cache


def _decode_oid(content):
    arcs, v = [content[0] // 40, content[0] % 40], 0
    for b in content[1:]:
        v = (v << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(v)
            v = 0
    return tuple(arcs)


def _records():
    """The snmprec as a sorted [(oid tuple, encoded value TLV)]."""
    out = []
    for line in snmprec().splitlines():
        oid, ty, value = line.split("|", 2)
        if ty == "2":
            enc = ber_int(int(value))
        elif ty == "4":
            enc = tlv(0x04, value.encode())
        elif ty in ("70", "67"):  # Counter64, TimeTicks: unsigned
            v = int(value)
            enc = tlv(0x46 if ty == "70" else 0x43, v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big"))
        else:
            raise ValueError(ty)
        out.append((tuple(int(x) for x in oid.split(".")), ber_oid(oid), enc))
    return sorted(out)


class Replay:
    """A v2c agent answering GET, GETNEXT and GETBULK over the records (the semantics
    snmpsim has for a `.snmprec`, RFC 3416), with every distinct request's answer
    computed once and cached: per request only the request id changes. Not snmpsim:
    where snmpsim cannot keep up on this machine, this answers the same varbinds
    (checked against snmpsim at start) at a small cost of its own."""

    END = b"\x82\x00"  # endOfMibView

    def __init__(self, community=COMMUNITY, max_varbinds=64):
        import bisect
        self.bisect = bisect
        self.records = _records()
        self.keys = [r[0] for r in self.records]
        self.community = community.encode()
        self.max_varbinds = max_varbinds
        self.cache = {}

    def _next(self, oid):
        i = self.bisect.bisect_right(self.keys, oid)
        return self.records[i] if i < len(self.records) else None

    def _exact(self, oid):
        i = self.bisect.bisect_left(self.keys, oid)
        return self.records[i] if i < len(self.records) and self.records[i][0] == oid else None

    def _answer(self, tag, a, b, oids):
        vbs = []
        if tag == 0xA0:  # GET
            for o in oids:
                r = self._exact(o)
                vbs.append(tlv(0x30, r[1] + r[2]) if r else tlv(0x30, ber_oid(".".join(map(str, o))) + b"\x81\x00"))
        elif tag == 0xA1:  # GETNEXT
            for o in oids:
                r = self._next(o)
                vbs.append(tlv(0x30, r[1] + r[2]) if r else tlv(0x30, ber_oid(".".join(map(str, o))) + self.END))
        else:  # GETBULK: non-repeaters a, max-repetitions b, row-major
            non, reps = min(a, len(oids)), b
            for o in oids[:non]:
                r = self._next(o)
                vbs.append(tlv(0x30, r[1] + r[2]) if r else tlv(0x30, ber_oid(".".join(map(str, o))) + self.END))
            cursors = list(oids[non:])
            for _ in range(reps if cursors else 0):
                for k, o in enumerate(cursors):
                    r = self._next(o)
                    if r:
                        cursors[k] = r[0]
                        vbs.append(tlv(0x30, r[1] + r[2]))
                    else:
                        vbs.append(tlv(0x30, ber_oid(".".join(map(str, o))) + self.END))
                if len(vbs) >= self.max_varbinds:
                    break
            vbs = vbs[:self.max_varbinds]
        return tlv(0x30, b"".join(vbs))

    def respond(self, data):
        try:
            _, i, _ = _read(data, 0)
            _, vs, ve = _read(data, i)
            version = data[vs:ve]
            _, cs, ce = _read(data, ve)
            if data[cs:ce] != self.community or version != b"\x01":
                return None  # a wrong community is silence (RFC 3584)
            tag, ps, _ = _read(data, ce)
            _, rs, re_ = _read(data, ps)
            rid = data[rs:re_]
            key = data[ce:ce + 1] + data[re_:]
            body = self.cache.get(key)
            if body is None:
                _, s1, e1 = _read(data, re_)
                _, s2, e2 = _read(data, e1)
                _, ls, le = _read(data, e2)
                oids = []
                while ls < le:
                    _, vbs_, vbe = _read(data, ls)
                    _, os_, oe = _read(data, vbs_)
                    oids.append(_decode_oid(data[os_:oe]))
                    ls = vbe
                body = self._answer(tag, int.from_bytes(data[s1:e1], "big"), int.from_bytes(data[s2:e2], "big"), oids)
                if len(self.cache) < 100_000:
                    self.cache[key] = body
            pdu = tlv(0xA2, tlv(0x02, rid) + b"\x02\x01\x00\x02\x01\x00" + body)
            return tlv(0x30, b"\x02\x01\x01" + tlv(0x04, self.community) + pdu)
        except (IndexError, ValueError):
            return None


def replay_main(args_file):
    """`snmp.py --replay-agent FILE`: the replay agent on every endpoint of FILE (lines
    `--agent-udpv4-endpoint=A:P`, as snmpsim's --args-from-file)."""
    agent = Replay()
    endpoints = [line.split("=", 1)[1].rsplit(":", 1) for line in Path(args_file).read_text().split()]

    class Proto(asyncio.DatagramProtocol):
        def connection_made(self, transport):
            self.transport = transport

        def datagram_received(self, data, addr):
            out = agent.respond(data)
            if out is not None:
                self.transport.sendto(out, addr)

    async def serve():
        loop = asyncio.get_running_loop()
        for host, port in endpoints:
            assert host.startswith("127."), host
            await loop.create_datagram_endpoint(Proto, local_addr=(host, int(port)))
        await asyncio.Event().wait()

    asyncio.run(serve())


def _decoded_varbinds(buf):
    """[(oid bytes, value TLV bytes)] of a response, for comparing two agents' answers."""
    _, i, _ = _read(buf, 0)
    _, _, i = _read(buf, i)
    _, _, i = _read(buf, i)
    _, i, _ = _read(buf, i)
    for _ in range(3):
        _, _, i = _read(buf, i)
    _, s, e = _read(buf, i)
    out = []
    while s < e:
        _, vs, ve = _read(buf, s)
        _, os_, oe = _read(buf, vs)
        out.append((bytes(buf[os_:oe]), bytes(buf[oe:ve])))
        s = ve
    return out


def same_answers(address_a, address_b):
    """Whether two agents answer the bench's requests with the same varbinds."""
    shapes = [(COLUMNS, WARDOPS_REPETITIONS)] + [([c], EXPORTER_REPETITIONS) for c in COLUMNS]
    shapes.append(([f"{IF_X_ENTRY}.10.5"], 3))  # past the table's end
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        for k, (oids, reps) in enumerate(shapes):
            answers = []
            for address in (address_a, address_b):
                s.sendto(getbulk(100 + k, oids, reps), (address, 161))
                answers.append(_decoded_varbinds(s.recv(65536)))
            if answers[0] != answers[1]:
                return False, f"{oids} × {reps}: {answers[0][:3]}… vs {answers[1][:3]}…"
    return True, f"{len(shapes)} request shapes"


# ---------------------------------------------------------------------------------
# prometheus-snmp-exporter and its scraper


def exporter_config(path, repetitions):
    """A module `if_mib7`: the 7 columns, statuses and counters with the names as lookups
    (the generator's if_mib does the same for every ifTable metric)."""
    lookups = "".join(f"""
    - labels: [ifIndex]
      labelname: {name}
      oid: {oid}
      type: DisplayString""" for name, oid in [("ifName", COLUMNS[0]), ("ifDescr", COLUMNS[1]), ("ifAlias", COLUMNS[2])])
    metrics = "".join(f"""
  - name: {name}
    oid: {oid}
    type: {ty}
    indexes:
    - labelname: ifIndex
      type: gauge
    lookups:{lookups}""" for name, oid, ty in [("ifAdminStatus", COLUMNS[3], "gauge"), ("ifOperStatus", COLUMNS[4], "gauge"),
                                               ("ifHCInOctets", COLUMNS[5], "counter"),
                                               ("ifHCOutOctets", COLUMNS[6], "counter")])
    walk = "".join(f"\n  - {c}" for c in COLUMNS)
    path.write_text(f"""# Generated by bench/snmp.py: the 7 IF-MIB columns wardops reads.
if_mib7:
  version: 2
  max_repetitions: {repetitions}
  retries: 1
  timeout: 5s
  auth:
    community: {COMMUNITY}
  walk:{walk}
  metrics:{metrics}
""")


class Exporter:
    def __init__(self, base, repetitions):
        self.path = Path(base) / "snmp.yml"
        exporter_config(self.path, repetitions)
        binary = common.need("prometheus-snmp-exporter", "prometheus-snmp-exporter")
        subprocess.run([binary, f"--config.file={self.path}", "--dry-run"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.port = common.free_port()
        self.log = open(Path(base) / "snmp_exporter.log", "w")
        self.proc = subprocess.Popen([binary, f"--config.file={self.path}",
                                      f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                                     stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SystemExit(f"snmp_exporter did not start; see {self.log.name}")
                time.sleep(0.1)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


OPER = re.compile(r'^ifOperStatus\{([^}]*)\} (\S+)$', re.M)
DURATION = re.compile(r'^snmp_scrape_duration_seconds (\S+)$', re.M)


async def _scrape(port, target, timeout):
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    try:
        writer.write(f"GET /snmp?module=if_mib7&target={target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     f"Connection: close\r\n\r\n".encode())
        body = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    head, _, text = body.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    if b"chunked" in head.lower():
        out, rest = b"", text
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0] or b"0", 16)
            if size == 0:
                break
            out, rest = out + rest[:size], rest[size + 2:]
        text = out
    return status, text.decode()


async def _drive(port, targets, interval, rounds, concurrency, timeout, stats):
    """Every target once per interval, spread evenly across it, for `rounds` rounds."""
    gate = asyncio.Semaphore(concurrency)
    t0 = time.monotonic()
    tasks = []

    async def one(target, due):
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        async with gate:
            lag = time.monotonic() - due
            stats["lag"].append(lag)
            started = time.monotonic()
            try:
                status, text = await _scrape(port, target, timeout)
            except (OSError, asyncio.TimeoutError, IndexError, ValueError):
                stats["failed"] += 1
                stats["false_downs"] += len(UPLINKS)
                return
            stats["took"].append(time.monotonic() - started)
            if status != 200:
                stats["failed"] += 1
                stats["false_downs"] += len(UPLINKS)
                return
            stats["scrapes"] += 1
            m = DURATION.search(text)
            if m:
                stats["duration"].append(float(m.group(1)))
            seen = {}
            for labels, value in OPER.findall(text):
                alias = re.search(r'ifAlias="([^"]*)"', labels)
                if alias:
                    seen[alias.group(1)] = float(value)
            stats["false_downs"] += sum(1 for _, alias in UPLINKS if seen.get(alias) != 1.0)

    for k in range(rounds):
        for i, target in enumerate(targets):
            tasks.append(asyncio.ensure_future(one(target, t0 + k * interval + i * interval / len(targets))))
        # Not all at once: a million pending sleeps would cost the driver more than the work.
        await asyncio.sleep(max(0.0, t0 + (k + 1) * interval - time.monotonic()))
    await asyncio.gather(*tasks)


def part_exporter(r, sim, a, base):
    interval = common.seconds_of(a.interval)
    exporter = Exporter(base, a.exporter_repetitions)
    try:
        # One round to warm up (Go's first allocations, the simulator's caches), unmeasured.
        targets = sim.addresses[:a.exporter_agents or len(sim.addresses)]
        warm = {"lag": [], "took": [], "duration": [], "failed": 0, "false_downs": 0, "scrapes": 0}
        asyncio.run(_drive(exporter.port, targets[:200], 5, 1, a.concurrency, 20, warm))
        stats = {"lag": [], "took": [], "duration": [], "failed": 0, "false_downs": 0, "scrapes": 0}
        e0, s0, me0 = common.cpu_seconds(exporter.proc.pid), sim.cpu_seconds(), common.cpu_seconds(os.getpid())
        t0 = time.monotonic()
        asyncio.run(_drive(exporter.port, targets, interval, a.rounds, a.concurrency, 20, stats))
        t1 = time.monotonic()
        e1, s1, me1 = common.cpu_seconds(exporter.proc.pid), sim.cpu_seconds(), common.cpu_seconds(os.getpid())
        window = t1 - t0
        expected = len(targets) * a.rounds
        r.figure(f"snmp_exporter: {len(targets):,} targets every {a.interval}, {a.rounds} rounds "
                 f"({window:.0f} s): scrapes answered",
                 f"{stats['scrapes']:,} of {expected:,} ({stats['scrapes'] / window:.0f}/s), {stats['failed']} failed",
                 f"{expected:,}", stats["scrapes"] == expected)
        r.figure("snmp_exporter: CPU (% of a core) over the window",
                 f"{(e1 - e0) / window * 100:.1f} % (RSS {common.rss_bytes(exporter.proc.pid) / 2**20:.0f} MiB, "
                 f"max_repetitions {a.exporter_repetitions})",
                 "wardops' target is <= 10 %", None)
        r.figure("beside it: the scraper (this script's asyncio driver) and the simulator",
                 f"scraper {(me1 - me0) / window * 100:.1f} %, simulator {(s1 - s0) / window * 100:.1f} % of a core")
        r.figure("snmp_exporter: scrape duration as it reports it, p50 / p99",
                 f"{common.fmt_ms(common.percentile(stats['duration'], 0.5))} / "
                 f"{common.fmt_ms(common.percentile(stats['duration'], 0.99))} (HTTP round trip p99 "
                 f"{common.fmt_ms(common.percentile(stats['took'], 0.99))}, driver lag p99 "
                 f"{common.fmt_ms(common.percentile(stats['lag'], 0.99))})")
        r.figure("snmp_exporter: false downs (uplink ifOperStatus not 1, or no answer)",
                 f"{stats['false_downs']}", "0", stats["false_downs"] == 0)
    finally:
        exporter.stop()


# ---------------------------------------------------------------------------------
# wardops


def inventory(path, addresses, snmp, interval):
    """One region, a branch per router; with `snmp`, each router polled with its two
    uplinks by alias (the inventory format decided for the poller)."""
    lines = ["# Generated by bench/snmp.py: routers on snmpsim's loopback agents.", "regions:",
             "  - name: bench", "    branches:"]
    for i, address in enumerate(addresses):
        assert address.startswith("127."), address
        name = f"bench-b{i:05d}-router-1"
        device = f"{{ name: {name}, address: {address}, kind: router"
        if snmp:
            every = "" if interval == "30s" else f", interval: {interval}"  # 30 s is the default
            device += (f", snmp: {{ community_env: WARDOPS_SNMP_COMMUNITY, port: 161{every} }}, uplinks: ["
                       + ", ".join(f"{{ isp: {isp}, alias: {alias} }}" for isp, alias in UPLINKS) + "]")
        lines += [f"      - name: bench-b{i:05d}", f"        parents: [{name}]", "        devices:",
                  f"          - {device} }}"]
    path.write_text("\n".join(lines) + "\n")


def wardops_config(base, label, addresses, interval, snmp):
    out = Path(base) / label
    common.demo(1, "10s", out=out)  # the demo's settings, then our own inventory
    for p in (out / "inventory").glob("*.yaml"):
        p.unlink()
    settings = out / "wardops.yaml"
    text = settings.read_text()
    text = re.sub(r"(?m)^  interval: .*$", f"  interval: {interval}", text, count=1)
    settings.write_text(text)
    inventory(out / "inventory" / "bench.yaml", addresses, snmp, interval)
    check = subprocess.run([str(common.BINARY), "check", "-c", str(settings)], capture_output=True, text=True,
                           env=dict(os.environ, WARDOPS_SNMP_COMMUNITY=COMMUNITY))
    if check.returncode != 0:
        raise SystemExit(f"wardops check refused the {label} config (has the poller landed?):\n"
                         + (check.stdout + check.stderr)[:3000])
    return out


def run_wardops(base, sim, a, snmp):
    interval = common.seconds_of(a.interval)
    addresses = sim.addresses
    config = wardops_config(base, "wardops-snmp" if snmp else "wardops-baseline", addresses, a.interval, snmp)
    with common.Appliance(config, env={"WARDOPS_SNMP_COMMUNITY": COMMUNITY}) as app:
        # Steady state: every device up (ping) and, with SNMP, every uplink read once.
        deadline = time.monotonic() + 3 * interval + 120
        while app.json("/api/v1/status")["devices"]["up"] < len(addresses) and time.monotonic() < deadline:
            time.sleep(2)
        time.sleep(interval + 5)
        m0, c0, s0, t0 = app.own_metrics(), app.cpu_seconds(), sim.cpu_seconds(), time.monotonic()
        time.sleep(max(60.0, a.rounds * interval))
        c1, s1, t1 = app.cpu_seconds(), sim.cpu_seconds(), time.monotonic()
        raw = common.parse_metrics(__import__("gzip").decompress(
            app.get("/metrics", {"Accept-Encoding": "gzip"})).decode())
        m1 = {k: v for k, v in raw.items() if not k[0].startswith("wardops_device_")}
        d = lambda name: common.metric(m1, name) - common.metric(m0, name)
        out = {"cpu": (c1 - c0) / (t1 - t0), "rss": app.rss_bytes() / 2**20, "window": t1 - t0,
               "sim_cpu": (s1 - s0) / (t1 - t0),
               "polls_per_s": d("wardops_uplink_polls_total") / (t1 - t0),
               "poll_failures": d("wardops_uplink_poll_failures_total"),
               "polls_skipped": d("wardops_uplink_polls_skipped_total"),
               "poll_p50": common.histogram_quantile(m0, m1, "wardops_uplink_poll_duration_seconds", 0.50),
               "poll_p99": common.histogram_quantile(m0, m1, "wardops_uplink_poll_duration_seconds", 0.99),
               "on_backup": sum(1 for (n, _), v in raw.items() if n == "wardops_device_on_backup_line" and v == 1.0)}
        if snmp:
            ups = [v for (n, _), v in raw.items() if n == "wardops_uplink_up"]
            out["uplink_samples"] = len(ups)
            out["uplinks_not_up"] = sum(1 for v in ups if v != 1.0) + (len(addresses) * len(UPLINKS) - len(ups))
            sample = addresses[::max(1, len(addresses) // 100)]
            bad = 0
            for i in range(0, len(addresses), max(1, len(addresses) // 100)):
                device = app.json(f"/api/v1/devices/bench-b{i:05d}-router-1")
                # `uplinks: { on_backup_line, problem?, lines: [{ isp, status, … }] }`
                view = device.get("uplinks") or {}
                statuses = [line.get("status") for line in view.get("lines", [])]
                bad += (sum(1 for s in statuses if s != "up") + (len(UPLINKS) - len(statuses))
                        + bool(view.get("on_backup_line")))
            out["json_sample"], out["json_not_up"] = len(sample), bad
        # Every alert stored during the run, open or resolved (a page at a time).
        conditions, before = [], None
        while True:
            page = app.json("/api/v1/alerts?limit=500" + (f"&before={before}" if before else ""))
            conditions += [x.get("condition") for x in page.get("alerts", [])]
            before = page.get("next_before")
            if not before:
                break
        out["uplink_down_alerts"] = conditions.count("uplink_down")
        out["device_down_alerts"] = conditions.count("device_down")
        return out


def part_wardops(r, sim, a, base):
    if not common.BINARY.exists():
        raise SystemExit(f"{common.BINARY} is missing: cargo build --release --bin wardops")
    base_run = run_wardops(base, sim, a, snmp=False)
    n = len(sim.addresses)
    r.figure(f"wardops: CPU (% of a core), {n:,} routers pinged, without SNMP (baseline)",
             f"{base_run['cpu'] * 100:.1f} % over {base_run['window']:.0f} s (RSS {base_run['rss']:.0f} MiB, "
             f"{base_run['device_down_alerts']} device_down alerts)")
    try:
        snmp_run = run_wardops(base, sim, a, snmp=True)
    except SystemExit as refused:  # the binary has no poller yet: the baseline stands alone
        lines = str(refused).splitlines()
        r.figure("wardops: with SNMP", "not measured: " + " ".join(lines[:2])[:300], "<= 10 %", False)
        return
    share = snmp_run["cpu"] - base_run["cpu"]
    r.figure(f"wardops: CPU with {n:,} agents × {len(UPLINKS)} uplinks polled every {a.interval}",
             f"{snmp_run['cpu'] * 100:.1f} % over {snmp_run['window']:.0f} s (RSS {snmp_run['rss']:.0f} MiB, "
             f"{snmp_run['polls_per_s']:.0f} polls/s, expected {n / common.seconds_of(a.interval):.0f}; "
             f"{snmp_run['poll_failures']:.0f} failed, {snmp_run['polls_skipped']:.0f} skipped; poll duration "
             f"p50 <= {common.fmt_ms(snmp_run['poll_p50'])}, p99 <= {common.fmt_ms(snmp_run['poll_p99'])}; "
             f"{snmp_run['device_down_alerts']} device_down alerts; the simulator beside it "
             f"{snmp_run['sim_cpu'] * 100:.1f} % of a core)")
    r.figure("wardops: the SNMP share (with minus without)", f"{share * 100:.1f} % of a core", "<= 10 %",
             share <= 0.10)
    false_downs = (snmp_run["uplinks_not_up"] + snmp_run["json_not_up"] + snmp_run["uplink_down_alerts"]
                   + snmp_run["on_backup"])
    r.figure("wardops: false downs (wardops_uplink_up not 1 or absent; sampled JSON uplinks not up; "
             "uplink_down alerts; wardops_device_on_backup_line 1)",
             f"{snmp_run['uplinks_not_up']} of {snmp_run['uplink_samples']} samples, "
             f"{snmp_run['json_not_up']} in {snmp_run['json_sample']} devices' JSON, "
             f"{snmp_run['uplink_down_alerts']} alerts, {snmp_run['on_backup']} branches on a backup line",
             "0", false_downs == 0)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agents", type=int, default=10000)
    p.add_argument("--interval", default="30s")
    p.add_argument("--rounds", type=int, default=2, help="poll rounds in each measured window (>= 60 s)")
    p.add_argument("--sim-processes", type=int, default=1, help="simulator processes sharing the agents")
    p.add_argument("--simulator", choices=["auto", "snmpsim", "replay"], default="auto",
                   help="auto: snmpsim, measured first, then this script's replay agent (the same "
                        "records from a cache, checked against snmpsim) for the other parts if "
                        "snmpsim could not keep up; or either one throughout")
    p.add_argument("--replay-agent", metavar="ARGS_FILE", help=argparse.SUPPRESS)
    p.add_argument("--sim-seconds", type=float, default=30, help="each simulator capacity window")
    p.add_argument("--concurrency", type=int, default=200, help="scrapes in flight at most (the driver)")
    p.add_argument("--exporter-repetitions", type=int, default=EXPORTER_REPETITIONS,
                   help="snmp_exporter's max_repetitions (its default 25)")
    p.add_argument("--exporter-agents", type=int, default=0,
                   help="scrape only the first K agents with snmp_exporter (0: all), where the "
                        "simulator cannot answer all of them at the exporter's request rate")
    p.add_argument("--parts", default="simulator,exporter,wardops",
                   help="comma-separated: simulator,exporter,wardops")
    p.add_argument("--no-wardops", action="store_true", help="leave the appliance out (no release build)")
    p.add_argument("--quick", action="store_true", help="500 agents, 10 s interval, short windows")
    p.add_argument("--no-build", action="store_true")
    a = p.parse_args()
    if a.replay_agent:
        return replay_main(a.replay_agent)
    if a.quick:
        a.agents, a.interval, a.sim_seconds = 500, "10s", 10
    parts = set(a.parts.split(",")) - ({"wardops"} if a.no_wardops else set())
    if "wardops" in parts and not a.no_build:
        common.build()
    common.need("snmpsim-command-responder", "snmpsim")
    r = common.Report(f"snmp-{a.agents}", f"ISP uplinks over SNMP: {a.agents:,} agents × {len(UPLINKS)} uplinks "
                                          f"every {a.interval}")
    rustc = subprocess.run(["pgrep", "-c", "rustc"], capture_output=True, text=True).stdout.strip()
    print(f"snmp: {a.agents} agents every {a.interval}, parts {sorted(parts)} "
          f"(load {' '.join(Path('/proc/loadavg').read_text().split()[:3])}, rustc processes {rustc})", flush=True)
    base = Path(tempfile.mkdtemp(prefix="wardops-bench-snmp-"))
    if not os.environ.get("WARDOPS_BENCH_KEEP"):
        import atexit
        atexit.register(shutil.rmtree, base, True)
    addresses = agent_addresses(a.agents)
    kind = "replay" if a.simulator == "replay" else "snmpsim"
    sim = Simulator(base, addresses, a.sim_processes, kind)
    try:
        if "simulator" in parts:
            results = part_simulator(r, sim, a)
            keeps_up = all(m["answered"] >= 0.999 for (_, factor), m in results.items() if factor == 1)
        else:
            keeps_up = a.simulator != "auto"
        if a.simulator == "auto" and not keeps_up and parts & {"exporter", "wardops"}:
            # The parts after this one measure the clients, not the simulator: an agent
            # that cannot answer in time would count as their false downs.
            r.note(f"snmpsim did not answer {a.agents:,} agents every {a.interval} in time (above): "
                   "the exporter and wardops parts ran on the replay agent")
            sim.stop()
            sim = Simulator(base, addresses, a.sim_processes, "replay")
        if sim.kind == "replay" and parts & {"exporter", "wardops"}:
            reference = Simulator(base / "reference", ["127.162.0.1"], 1, "snmpsim")
            try:
                same, what = same_answers(sim.addresses[0], reference.addresses[0])
            finally:
                reference.stop()
            r.figure("replay agent: the same varbinds as snmpsim for the same requests", what, "same", same)
            if not same:
                raise SystemExit("the replay agent answers differently from snmpsim")
        if "exporter" in parts:
            drain(sim)
            part_exporter(r, sim, a, base)
        if "wardops" in parts:
            drain(sim)
            part_wardops(r, sim, a, base)
    finally:
        sim.stop()
    r.note(f"simulator: {sim.kind}; snmpsim {subprocess.run(['pip', 'show', 'snmpsim'], capture_output=True, text=True).stdout.split('Version: ')[-1].split()[0]}"
           f" in {a.sim_processes} process(es); prometheus-snmp-exporter "
           f"{subprocess.run(['dpkg-query', '-W', '-f', '${Version}', 'prometheus-snmp-exporter'], capture_output=True, text=True).stdout}; "
           "the machine is shared: see the load printed at the start")
    if common.BINARY.exists():
        r.save()
    else:  # the results carry the binary's hash; without one there is nothing to render
        print(f"snmp: not saved for bench/run-all ({common.BINARY} is missing)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
