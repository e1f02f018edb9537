"""Shared pieces of the benchmark scripts: build, run the real binary, read /metrics and
/proc. Every figure is measured side by side with a peer in the same run, because the
machine is shared and noisy."""

import os
import re
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "release" / "wardops"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def build():
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "wardops"], cwd=ROOT, check=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo(devices, interval, out=None):
    out = Path(out or tempfile.mkdtemp(prefix="wardops-bench-"))
    subprocess.run([str(BINARY), "demo", "--devices", str(devices), "--interval", interval, "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL)
    return out


def addresses(config_dir):
    text = "".join(p.read_text() for p in sorted((config_dir / "inventory").glob("*.yaml")))
    return re.findall(r"address: ['\"]?([0-9a-f.:]+)", text)


class Appliance:
    def __init__(self, config_dir, env=None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        e = dict(os.environ, WARDOPS_LISTEN=f"127.0.0.1:{self.port}", RUST_LOG="warn",
                 WARDOPS_DATABASE_URL=f"sqlite://{config_dir}/bench.db")
        e.update(env or {})
        self.log = open(config_dir / "wardops.log", "w")
        self.started = time.monotonic()
        self.proc = subprocess.Popen([str(BINARY), "serve", "-c", str(config_dir / "wardops.yaml")],
                                     env=e, stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + 120
        while True:
            try:
                self.get("/healthz")
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("wardops did not start; see " + self.log.name)
                time.sleep(0.05)
        self.ready_after = time.monotonic() - self.started

    def get(self, path, headers=None):
        req = urllib.request.Request(self.base + path, headers=headers or {})
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.read()

    def metrics(self):
        return parse_metrics(self.get("/metrics").decode())

    def cpu_seconds(self):
        return cpu_seconds(self.proc.pid)

    def rss_bytes(self):
        return rss_bytes(self.proc.pid)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid):
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


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
    """Quantile of the observations between two scrapes, from cumulative buckets."""
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


def fmt_ms(seconds):
    return f"{seconds * 1000:.2f} ms"
