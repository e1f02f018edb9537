#!/usr/bin/env python3
"""/metrics at scale: encode time (time to the last byte over loopback, 5 scrapes) and
size, plain and gzip, for N devices; then a real VictoriaMetrics (Debian package
victoria-metrics, on a loopback port with a temporary storage dir) scraping the
appliance with its default flags (only the storage path, the listen address and the
scrape config): scrape errors, samples per scrape, series created,
`count(wardops_device_up)`. Beyond 20,000 devices it scrapes `/metrics?shard=K/N` as N
targets (docs/metrics.md, "Scraping a big fleet"); the sizes of the whole body and of
the largest slice are reported beside each other.

    bench/metrics.py --devices 10000
    bench/metrics.py --devices 100000 --vm-seconds 180
"""

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import common


def timed_scrape(url, gzip):
    args = ["curl", "-s", "-o", "/dev/null", "-w", "%{time_total} %{size_download}", url]
    if gzip:
        args[1:1] = ["-H", "Accept-Encoding: gzip"]
    t, size = subprocess.run(args, capture_output=True, text=True, check=True).stdout.split()
    return float(t), int(size)


def vm_query(base, q):
    with urllib.request.urlopen(f"{base}/api/v1/query?query={urllib.parse.quote(q)}", timeout=60) as r:
        res = json.load(r)["data"]["result"]
    return [float(x["value"][1]) for x in res]


def run_vm(app, seconds, interval, shards, scrapes=3):
    exe = common.need("victoria-metrics", "victoria-metrics")
    port = common.free_port()
    base = f"http://127.0.0.1:{port}"
    data = Path(tempfile.mkdtemp(prefix="wardops-bench-vm-"))
    if shards == 1:
        targets = f"  - targets: ['127.0.0.1:{app.port}']\n"
    else:
        targets = "".join(f"  - targets: ['127.0.0.1:{app.port}']\n"
                          f"    labels: {{__param_shard: '{k}/{shards}', shard: '{k}'}}\n"
                          for k in range(1, shards + 1))
    (data / "scrape.yml").write_text(
        f"scrape_configs:\n- job_name: wardops\n  scrape_interval: {interval}\n  scrape_timeout: {interval}\n"
        f"  static_configs:\n{targets}")
    # Default flags: the scrape size limit (16 MiB) is the point. Queries then see
    # samples 30 s old at the newest (-search.latencyOffset): the counts are polled.
    proc = subprocess.Popen([exe, f"-storageDataPath={data / 'storage'}", f"-httpListenAddr=127.0.0.1:{port}",
                             f"-promscrape.config={data / 'scrape.yml'}"],
                            stdout=subprocess.DEVNULL, stderr=open(data / "vm.log", "w"))
    def own():
        return common.parse_metrics(urllib.request.urlopen(f"{base}/metrics", timeout=60).read().decode())

    try:
        # At least `scrapes` scrapes, or `seconds` at most: at 100,000 devices the first
        # scrape creates ~540,000 series, which takes VictoriaMetrics a while on 2 cores.
        started = time.time()
        while time.time() - started < seconds:
            time.sleep(2)
            try:
                if common.metric(own(), "vm_promscrape_scrapes_total") >= scrapes * shards:
                    break
            except OSError:
                pass
        urllib.request.urlopen(f"{base}/internal/force_flush", timeout=60).read()
        # The newest samples show 30 s late (default -search.latencyOffset).
        deadline = time.time() + 45
        while time.time() < deadline and (vm_query(base, "count(wardops_device_up)") or [0])[0] < app.devices:
            time.sleep(2)
        with urllib.request.urlopen(f"{base}/api/v1/targets", timeout=60) as r:
            targets = json.load(r)["data"]["activeTargets"]
        vm = own()
        bad = {n: v for (n, l), v in vm.items() if n.startswith("vm_promscrape_scrapes_")
               and any(w in n for w in ("failed", "timed_out", "skipped", "gunzip_failed")) and v}
        return {
            "waited": time.time() - started,
            "bad": bad,
            "last_duration": [t.get("lastScrapeDuration") for t in targets],
            "health": [t["health"] for t in targets],
            "last_error": [t.get("lastError", "") for t in targets if t.get("lastError")],
            "scrapes": common.metric(vm, "vm_promscrape_scrapes_total"),
            "failed": common.metric(vm, "vm_promscrape_scrapes_failed_total"),
            "samples": vm_query(base, 'sum(scrape_samples_scraped{job="wardops"})'),
            "duration": vm_query(base, 'max(scrape_duration_seconds{job="wardops"})'),
            "series": common.metric(vm, "vm_new_timeseries_created_total"),
            "device_up": vm_query(base, "count(wardops_device_up)"),
            "rss_mib": common.rss_bytes(proc.pid) / 2**20,
        }
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(data, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=10000)
    p.add_argument("--interval", default="10s", help="probe interval of the inventory")
    p.add_argument("--scrapes", type=int, default=5)
    p.add_argument("--vm-seconds", type=float, default=120, help="longest wait for 3 scrapes")
    p.add_argument("--vm-scrape-interval", default="10s")
    p.add_argument("--shards", type=int, default=0,
                   help="slices VictoriaMetrics scrapes (default: devices / 20,000, rounded up)")
    p.add_argument("--no-build", action="store_true")
    a = p.parse_args()
    if not a.no_build:
        common.build()
    r = common.Report(f"metrics-{a.devices}", f"/metrics: {a.devices:,} devices")
    print(f"metrics: {a.devices} devices", flush=True)
    config = common.demo(a.devices, a.interval)
    with common.Appliance(config) as app:
        deadline = time.time() + common.seconds_of(a.interval) * 3 + 60
        while app.json("/api/v1/status")["devices"]["up"] < a.devices and time.time() < deadline:
            time.sleep(0.5)
        for gz in (False, True):
            runs = [timed_scrape(app.base + "/metrics", gz) for _ in range(a.scrapes)]
            times = sorted(t for t, _ in runs)
            big = a.devices >= 100000
            median = times[len(times) // 2]
            r.figure(f"/metrics {'gzip' if gz else 'plain'}: time to last byte (median / max of {a.scrapes}), size",
                     f"{median * 1000:.0f} ms / {times[-1] * 1000:.0f} ms, {runs[-1][1] / 2**20:.1f} MiB",
                     "< 300 ms" if big and not gz else "", (median < 0.300) if big and not gz else None)
        shards = a.shards or max(1, math.ceil(a.devices / 20000))
        if shards > 1:
            slices = [timed_scrape(f"{app.base}/metrics?shard={k}/{shards}", False) for k in range(1, shards + 1)]
            gz = [timed_scrape(f"{app.base}/metrics?shard={k}/{shards}", True) for k in range(1, shards + 1)]
            r.figure(f"/metrics?shard=K/{shards}: largest slice plain / gzip, its time to last byte",
                     f"{max(s for _, s in slices) / 2**20:.1f} MiB / {max(s for _, s in gz) / 2**20:.2f} MiB, "
                     f"{max(t for t, _ in slices) * 1000:.0f} ms",
                     "< 16 MiB plain", max(s for _, s in slices) < 16 * 2**20)
        r.figure("bytes a device, whole body plain", f"{timed_scrape(app.base + '/metrics', False)[1] / a.devices:.0f}")
        c0 = app.cpu_seconds()
        for _ in range(3):
            app.get("/metrics")
        r.figure("appliance CPU per plain scrape", f"{(app.cpu_seconds() - c0) / 3 * 1000:.0f} ms")
        app.devices = a.devices
        vm = run_vm(app, a.vm_seconds, a.vm_scrape_interval, shards)
        clean = vm["failed"] == 0 and not vm["bad"] and not vm["last_error"] and all(h == "up" for h in vm["health"])
        r.figure(f"VictoriaMetrics, default flags, {shards} target(s): scrapes done / failed, target health, last scrape duration",
                 f"{vm['scrapes']:.0f} / {vm['failed']:.0f} in {vm['waited']:.0f} s, {','.join(vm['health'])}, "
                 f"{','.join(f'{d * 1000:.0f} ms' for d in vm['last_duration'] if d is not None)}"
                 + (f"; {vm['bad']}" if vm["bad"] else "")
                 + (f"; last error: {vm['last_error'][0][:200]}" if vm["last_error"] else ""),
                 "no scrape errors", clean)
        r.figure("VictoriaMetrics: samples per scrape / series created / scrape duration",
                 f"{max(vm['samples'] or [0]):,.0f} / {vm['series']:,.0f} / "
                 f"{max(vm['duration'] or [float('nan')]) * 1000:.0f} ms")
        got = vm["device_up"][0] if vm["device_up"] else 0
        r.figure("VictoriaMetrics `count(wardops_device_up)`", f"{got:,.0f}", f"{a.devices:,}", got == a.devices)
    r.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
