"""Shared pieces of the benchmark scripts: build, run the real binary, read its counters
cheaply, read /proc, install the peer tools, and record figures for `bench/run-all`.
Every figure is measured side by side with a peer or a target in the same run, because
the machine is shared and noisy."""

import gzip
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# bench/run-all pins a private copy of the build (WARDOPS_BENCH_BINARY), because
# target/release/wardops is shared and may be rebuilt by others in the middle of a run.
BINARY = Path(os.environ.get("WARDOPS_BENCH_BINARY") or ROOT / "target" / "release" / "wardops")
RESULTS = ROOT / "target" / "bench-results"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def build():
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "wardops"], cwd=ROOT, check=True)


def binary_id():
    """Short content hash and build time of the binary the benches run."""
    import hashlib
    digest = hashlib.sha256(BINARY.read_bytes()).hexdigest()[:12]
    built = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(BINARY.stat().st_mtime))
    return f"{digest} (built {built})"


def need(binary, package):
    """Path of `binary`, installing Debian `package` first if it is missing."""
    path = shutil.which(binary)
    if path:
        return path
    print(f"bench: {binary} is missing; installing the Debian package {package} "
          f"(or run scripts/bench-deps once)", file=sys.stderr)
    subprocess.run(["apt-get", "install", "-y", "-q", package], check=True, stdout=subprocess.DEVNULL)
    path = shutil.which(binary)
    if not path:
        raise SystemExit(f"bench: {package} installed but {binary} is still not on PATH")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seconds_of(text):
    """'10s', '1s', '500ms' -> seconds."""
    return float(text[:-2]) / 1000 if text.endswith("ms") else float(text[:-1])


def demo(devices, interval, out=None, settings=None):
    """A `wardops demo` config directory; `settings` is YAML text appended to wardops.yaml."""
    if out is None:
        out = Path(tempfile.mkdtemp(prefix="wardops-bench-"))
        # 100,000-device configs with their stores are ~45 MB each; keep them only when asked.
        if not os.environ.get("WARDOPS_BENCH_KEEP"):
            import atexit
            atexit.register(shutil.rmtree, out, True)
    out = Path(out)
    subprocess.run([str(BINARY), "demo", "--devices", str(devices), "--interval", interval, "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL)
    if settings:
        with open(out / "wardops.yaml", "a") as f:
            f.write(settings.rstrip() + "\n")
    return out


def devices_of(config_dir):
    """[(name, address)] of a demo inventory, in file order."""
    text = "".join(p.read_text() for p in sorted((config_dir / "inventory").glob("*.yaml")))
    return re.findall(r"name: ([\w.-]+), address: ['\"]?([0-9a-f.:]+)", text)


def addresses(config_dir):
    return [a for _, a in devices_of(config_dir)]


class Appliance:
    """The real binary on a free loopback port, with its own SQLite store in the config dir."""

    def __init__(self, config_dir, env=None, wait="/healthz"):
        self.config_dir = Path(config_dir)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        e = dict(os.environ, WARDOPS_LISTEN=f"127.0.0.1:{self.port}", RUST_LOG="warn",
                 WARDOPS_DATABASE_URL=f"sqlite://{self.config_dir}/bench.db")
        e.update(env or {})
        self.log = open(self.config_dir / "wardops.log", "a")
        self.started = time.monotonic()
        self.proc = subprocess.Popen([str(BINARY), "serve", "-c", str(self.config_dir / "wardops.yaml")],
                                     env=e, stdout=subprocess.DEVNULL, stderr=self.log)
        self.ready_after = self.wait_for(wait)

    def wait_for(self, path, timeout=180):
        """Seconds from start until `path` answers 200."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.get(path, timeout=5)
                return time.monotonic() - self.started
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"wardops did not answer {path}; see {self.log.name}")
                time.sleep(0.02)

    def get(self, path, headers=None, timeout=120):
        req = urllib.request.Request(self.base + path, headers=headers or {})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.read()

    def json(self, path):
        return json.loads(self.get(path))

    def own_metrics(self):
        """The appliance's own families (not the per-device ones), scraped gzipped and
        filtered before parsing: at 100,000 devices /metrics is ~60 MB of text and a
        full Python parse takes longer than the scrape interval."""
        raw = gzip.decompress(self.get("/metrics", {"Accept-Encoding": "gzip"}))
        keep = [line for line in raw.split(b"\n")
                if line.startswith((b"wardops_", b"process_")) and not line.startswith(b"wardops_device_")]
        return parse_metrics(b"\n".join(keep).decode())

    def probes_total(self):
        """The probe counter from the cheap dashboard endpoint (no /metrics encode)."""
        return self.json("/api/v1/dashboard")["prober"]["probes_total"]

    def cpu_seconds(self):
        return cpu_seconds(self.proc.pid)

    def rss_bytes(self):
        return rss_bytes(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid):
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


def socket_drops(pid):
    """Datagrams the kernel dropped on `pid`'s ICMP sockets (raw and datagram, both
    families) because their receive queue was full: the `drops` column of /proc/net/*
    for the socket inodes the process holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    drops = 0
    for table in ["raw", "raw6", "icmp", "icmp6"]:
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 12 and fields[9] in inodes:
                drops += int(fields[-1])
    return drops


def peak_rss_bytes(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def parse_metrics(text):
    """{(name, frozenset(labels)): value} for the sample lines of a text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)', line)
        if not m:
            continue
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def metric(metrics, name, **labels):
    want = set(labels.items())
    return sum(v for (n, l), v in metrics.items() if n == name and want <= set(l))


def histogram_quantile(before, after, name, q):
    """Upper bound of the bucket holding quantile q of the observations between two
    scrapes, from cumulative buckets."""
    buckets = []
    for (n, l), v in after.items():
        if n == name + "_bucket":
            le = dict(l)["le"]
            buckets.append((float("inf") if le == "+Inf" else float(le), v - before.get((n, l), 0)))
    buckets.sort()
    total = buckets[-1][1] if buckets else 0
    if total == 0:
        return float("nan")
    for le, count in buckets:
        if count >= q * total:
            return le
    return float("inf")


def percentile(values, q):
    """Nearest-rank percentile of a list (nan when empty)."""
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q * len(s) + 0.5)) - 1))]


def fmt_ms(seconds):
    return f"{seconds * 1000:.2f} ms"


class Nft:
    """An nftables table of the bench's own that blackholes some loopback addresses;
    always deleted (also on error, via `with`).

    drop="requests" drops the echo requests on output: the kernel then fails the send at
    once (EPERM), so a probe of a blackholed device ends immediately. drop="replies"
    drops the replies on input: the request leaves and nothing comes back, so the probe
    waits for its timeout, as with a real unreachable device."""

    def __init__(self, table, drop="requests"):
        need("nft", "nftables")
        self.table = table
        subprocess.run(["nft", "delete", "table", "inet", table], stderr=subprocess.DEVNULL)
        self._nft(f"add table inet {table}")
        self._nft(f"add set inet {table} black {{ type ipv4_addr; }}")
        if drop == "requests":
            self._nft(f"add chain inet {table} out {{ type filter hook output priority 0; }}")
            self._nft(f"add rule inet {table} out ip daddr @black icmp type echo-request drop")
        else:
            self._nft(f"add chain inet {table} in {{ type filter hook input priority 0; }}")
            self._nft(f"add rule inet {table} in ip saddr @black icmp type echo-reply drop")

    def _nft(self, cmd):
        # Through stdin: 10,000 addresses are past the kernel's 128 KiB limit on one argument.
        subprocess.run(["nft", "-f", "-"], input=cmd + "\n", text=True, check=True)

    def block(self, addresses):
        for a in addresses:
            assert a.startswith("127."), a
        self._nft(f"add element inet {self.table} black {{ {', '.join(addresses)} }}")

    def unblock(self, addresses):
        self._nft(f"delete element inet {self.table} black {{ {', '.join(addresses)} }}")

    def close(self):
        subprocess.run(["nft", "delete", "table", "inet", self.table], stderr=subprocess.DEVNULL)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Report:
    """Figures of one bench run, printed beside their targets and saved as JSON for
    `bench/run-all` to render into docs/benchmarks.md."""

    def __init__(self, name, title):
        self.name, self.title = name, title
        self.command = " ".join(["bench/" + Path(sys.argv[0]).name] + [a for a in sys.argv[1:] if a != "--no-build"])
        self.figures, self.notes = [], []

    def figure(self, what, value, target="", ok=None):
        """ok: True met, False missed, None no target."""
        self.figures.append({"what": what, "value": value, "target": target, "ok": ok, "command": self.command})
        verdict = "" if ok is None else ("  [met]" if ok else "  [MISSED]")
        print(f"  {what}: {value}" + (f"   (target {target})" if target else "") + verdict, flush=True)

    def note(self, text):
        self.notes.append(text)
        print(f"  note: {text}", flush=True)

    def save(self, key=None):
        """Saves the result for `bench/run-all` to render. A bench re-run alone never
        replaces the suite's own result: that one is kept beside it as `<key>.suite.json`,
        so the page can count both."""
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"{key or self.name}.json"
        suite = os.environ.get("WARDOPS_BENCH_SUITE") == "1"
        kept = path.with_suffix(".suite.json")
        if not suite and path.exists() and not kept.exists() and json.loads(path.read_text()).get("suite"):
            path.rename(kept)
        path.write_text(json.dumps({"name": self.name, "title": self.title, "command": self.command,
                                    "figures": self.figures, "notes": self.notes, "binary": binary_id(),
                                    "suite": suite,
                                    "at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}, indent=1))
        return path


class SseClient:
    """A raw-socket `GET /api/v1/events` client for asyncio: each read is stamped with
    the wall clock on arrival and parsed later, so that a thousand of them in one Python
    process add as little delay as possible. `events()` gives (receipt time, event
    name, data dict) for every complete event received."""

    def __init__(self, port, path="/api/v1/events"):
        self.port, self.path = port, path
        self.reads = []
        self.status = None
        self.transport = None
        self.connected = None

    async def connect(self):
        import asyncio
        loop = asyncio.get_running_loop()
        self.connected = loop.create_future()
        client = self

        class Proto(asyncio.Protocol):
            def connection_made(self, transport):
                client.transport = transport
                transport.write(f"GET {client.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                f"Accept: text/event-stream\r\n\r\n".encode())

            def data_received(self, data):
                client.reads.append((time.time(), data))
                if not client.connected.done():
                    client.connected.set_result(True)

            def connection_lost(self, exc):
                if not client.connected.done():
                    client.connected.set_result(False)

        await loop.create_connection(Proto, "127.0.0.1", self.port)
        return await self.connected

    def close(self):
        if self.transport:
            self.transport.close()

    def events(self):
        out = []
        head, body, chunked, pending = b"", b"", None, b""
        for t, data in self.reads:
            if chunked is None:
                head += data
                if b"\r\n\r\n" not in head:
                    continue
                head, data = head.split(b"\r\n\r\n", 1)
                self.status = int(head.split()[1])
                chunked = b"transfer-encoding: chunked" in head.lower()
            if chunked:
                pending += data
                while True:  # de-chunk what is complete
                    line_end = pending.find(b"\r\n")
                    if line_end < 0:
                        break
                    size = int(pending[:line_end].split(b";")[0] or b"0", 16)
                    if len(pending) < line_end + 2 + size + 2:
                        break
                    body += pending[line_end + 2:line_end + 2 + size]
                    pending = pending[line_end + 2 + size + 2:]
            else:
                body += data
            while b"\n\n" in body:
                frame, body = body.split(b"\n\n", 1)
                name, payload = "message", None
                for line in frame.decode().split("\n"):
                    if line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("data:"):
                        payload = line[5:].strip()
                if payload is not None:
                    out.append((t, name, json.loads(payload)))
        return out


def rfc3339(text):
    """RFC 3339 UTC ('...Z', any fraction) -> Unix seconds."""
    import datetime
    main, _, frac = text.rstrip("Z").partition(".")
    t = datetime.datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc).timestamp()
    return t + (float("0." + frac) if frac else 0.0)
