#!/usr/bin/env python3
"""Prober benchmark: N loopback devices at a given interval for a fixed time, then fping
on the same targets, in the same run. Reports CPU time per echo request, probes/s, loss,
scheduler lag p50/p99, RSS, false downs.

    bench/prober.py --devices 10000 --interval 1s --seconds 30
"""

import argparse
import resource
import subprocess
import sys
import time

import common


def run_wardops(devices, interval, seconds):
    config = common.demo(devices, interval)
    app = common.Appliance(config)
    try:
        warmup = common_interval(interval) * 2 + 2
        time.sleep(warmup)
        m0, c0, t0 = app.metrics(), app.cpu_seconds(), time.monotonic()
        time.sleep(seconds)
        m1, c1, t1 = app.metrics(), app.cpu_seconds(), time.monotonic()
        d = lambda name: common.metric(m1, name) - common.metric(m0, name)
        requests, replies, probes = d("wardops_echo_requests_total"), d("wardops_echo_replies_total"), d("wardops_probes_total")
        return {
            "devices": devices,
            "probes_per_s": probes / (t1 - t0),
            "requests": requests,
            "loss": 1 - replies / requests if requests else float("nan"),
            "cpu_per_request_us": (c1 - c0) / requests * 1e6 if requests else float("nan"),
            "cpu_share_of_core": (c1 - c0) / (t1 - t0),
            "lag_p50": common.histogram_quantile(m0, m1, "wardops_scheduler_lag_seconds", 0.50),
            "lag_p99": common.histogram_quantile(m0, m1, "wardops_scheduler_lag_seconds", 0.99),
            "skipped": d("wardops_probes_skipped_total"),
            "down": common.metric(m1, "wardops_devices", status="down"),
            "unknown": common.metric(m1, "wardops_devices", status="unknown"),
            "rss_mib": app.rss_bytes() / 2**20,
            "config": config,
        }
    finally:
        app.stop()


def common_interval(text):
    return float(text[:-2]) / 1000 if text.endswith("ms") else float(text[:-1])


def run_fping(targets, interval, seconds, config):
    """fping -i0 on the same targets: one echo request per target per interval."""
    path = config / "targets.txt"
    path.write_text("\n".join(targets) + "\n")
    period_ms = int(common_interval(interval) * 1000)
    count = max(2, int(seconds / common_interval(interval)))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.run(["fping", "-q", "-i", "0", "-p", str(period_ms), "-c", str(count), "-f", str(path)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t1 = time.monotonic()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    sent = received = 0
    for line in proc.stderr.splitlines():
        if "xmt/rcv/%loss" in line:
            xr = line.split("=")[1].split(",")[0].strip().split("/")
            sent, received = sent + int(xr[0]), received + int(xr[1])
    return {
        "requests": sent,
        "loss": 1 - received / sent if sent else float("nan"),
        "cpu_per_request_us": cpu / sent * 1e6 if sent else float("nan"),
        "cpu_share_of_core": cpu / (t1 - t0),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=10000)
    p.add_argument("--interval", default="1s")
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--no-build", action="store_true")
    a = p.parse_args()
    if not a.no_build:
        common.build()
    w = run_wardops(a.devices, a.interval, a.seconds)
    f = run_fping(common.addresses(w["config"]), a.interval, a.seconds, w["config"])
    ratio = w["cpu_per_request_us"] / f["cpu_per_request_us"]
    print(f"prober: {a.devices} devices at {a.interval} for {a.seconds:.0f}s")
    print(f"  wardops: {w['probes_per_s']:.0f} probes/s, {w['requests']:.0f} echo requests, loss {w['loss']:.4%}, "
          f"CPU {w['cpu_per_request_us']:.2f} us/request ({w['cpu_share_of_core']:.1%} of a core), "
          f"lag p50 <= {common.fmt_ms(w['lag_p50'])} p99 <= {common.fmt_ms(w['lag_p99'])}, skipped {w['skipped']:.0f}, "
          f"RSS {w['rss_mib']:.0f} MiB, down {w['down']:.0f}, unknown {w['unknown']:.0f}")
    print(f"  fping -i0: {f['requests']} echo requests, loss {f['loss']:.4%}, CPU {f['cpu_per_request_us']:.2f} us/request "
          f"({f['cpu_share_of_core']:.1%} of a core)")
    print(f"  CPU per request, wardops / fping: {ratio:.2f}x (target <= 2x)")
    ok = w["down"] == 0 and w["lag_p99"] < 0.010 and ratio <= 2 and w["loss"] == 0
    print(f"  targets {'met' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
