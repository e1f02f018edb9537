#!/usr/bin/env python3
"""Prober benchmark: N loopback devices at a given interval for a fixed time, then the
peers on the same targets in the same run. Reports CPU time per probe and per echo
request, probes/s, loss (and the kernel's receive-queue drops behind it), scheduler lag
p50/p99, RSS, false downs.

Two comparisons with fping (the pinger Zabbix uses):
- sustained, the one a user faces: the same targets at the same rate for the same
  window, fping -l (loop) beside wardops with `packets: 1` (one echo per target per
  interval for both), each process's whole CPU over the window;
- fping's best case: -c bursts with -i0, against wardops' default 2 echoes per probe.
And prometheus-smokeping-prober (which collapses early: it is given the largest size it
survives, searched upwards from 100).

    bench/prober.py --devices 10000 --interval 1s --seconds 30
    bench/prober.py --devices 100000 --interval 10s --seconds 30 --smokeping-max 0

Counters: probes/s and CPU come from the cheap /api/v1/dashboard read at the same
instant as /proc CPU time; requests per probe, loss and lag from two gzipped scrapes of
the appliance's own /metrics families (a 100,000-device /metrics is ~60 MB of text)."""

import argparse
import os
import resource
import signal
import subprocess
import sys
import time

import common


def run_wardops(devices, interval, seconds, packets=None):
    """The appliance on a demo inventory; `packets` overrides the demo's echo requests
    per probe (2)."""
    config = common.demo(devices, interval)
    if packets is not None:
        settings = config / "wardops.yaml"
        text = settings.read_text()
        assert "  packets: 2\n" in text, "the demo's settings changed: update the bench"
        settings.write_text(text.replace("  packets: 2\n", f"  packets: {packets}\n"))
    app = common.Appliance(config)
    try:
        time.sleep(common.seconds_of(interval) * 2 + 2)
        m0 = app.own_metrics()
        c0, p0, t0, k0 = app.cpu_seconds(), app.probes_total(), time.monotonic(), common.socket_drops(app.proc.pid)
        time.sleep(seconds)
        c1, p1, t1, k1 = app.cpu_seconds(), app.probes_total(), time.monotonic(), common.socket_drops(app.proc.pid)
        m1 = app.own_metrics()
        d = lambda name: common.metric(m1, name) - common.metric(m0, name)
        requests, replies, probes = d("wardops_echo_requests_total"), d("wardops_echo_replies_total"), d("wardops_probes_total")
        per_probe = requests / probes if probes else float("nan")
        cpu = c1 - c0
        return {
            "devices": devices,
            "probes_per_s": (p1 - p0) / (t1 - t0),
            "expected_per_s": devices / common.seconds_of(interval),
            "requests_per_probe": per_probe,
            "requests": requests,
            "lost": requests - replies,
            "loss": 1 - replies / requests if requests else float("nan"),
            # Where lost echoes went: never sent (send errors, no free slot), answered
            # after their timeout (ignored replies), or dropped by the kernel.
            "kernel_drops": k1 - k0,
            "send_errors": d("wardops_icmp_send_errors_total"),
            "late_or_stray": d("wardops_icmp_replies_ignored_total"),
            "cpu_per_probe_us": cpu / (p1 - p0) * 1e6 if p1 > p0 else float("nan"),
            "cpu_per_request_us": cpu / ((p1 - p0) * per_probe) * 1e6 if p1 > p0 else float("nan"),
            "cpu_share_of_core": cpu / (t1 - t0),
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


def run_fping(targets, interval, seconds, config):
    """fping -i0 on the same targets: one echo request per target per interval.

    fping keeps at most 65,535 sequence numbers in flight over its whole run, so it is
    given at most 30,000 targets at a time and as many rounds as fit in that budget."""
    common.need("fping", "fping")
    period_ms = int(common.seconds_of(interval) * 1000)
    chunks = [targets[i:i + 30000] for i in range(0, len(targets), 30000)]
    sent = received = 0
    cpu = wall = 0.0
    rss = 0
    for n, chunk in enumerate(chunks):
        path = config / f"targets-{n}.txt"
        path.write_text("\n".join(chunk) + "\n")
        count = max(1, min(int(seconds / common.seconds_of(interval)), 60000 // len(chunk)))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        proc = subprocess.run(["fping", "-q", "-i", "0", "-p", str(period_ms), "-c", str(count), "-f", str(path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wall += time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu += (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        rss = max(rss, after.ru_maxrss)
        for line in proc.stderr.splitlines():
            if "xmt/rcv/%loss" in line:
                xr = line.split("=")[1].split(",")[0].strip().split("/")
                sent, received = sent + int(xr[0]), received + int(xr[1])
            elif line.startswith("fping error"):
                raise RuntimeError(line)
    return {
        "requests": sent,
        "rounds": count,
        "loss": 1 - received / sent if sent else float("nan"),
        "cpu_per_request_us": cpu / sent * 1e6 if sent else float("nan"),
        "cpu_share_of_core": cpu / wall,
    }


# fping numbers requests 0-65,535 per process and will not reuse one for 10 s, so one
# process sends at most 6,553 requests/s; at 6,000/s it still ran out (and exited).
FPING_MAX_RATE = 4000


def run_fping_sustained(targets, interval, seconds, config):
    """fping -l on the same targets at the same rate (each target once per interval) for
    `seconds`, with -i0 (a round is a burst, as fping schedules it). One process cannot
    send more than FPING_MAX_RATE requests/s, so larger sets are split into chunks run
    one after the other, each for the whole window: run at once, every fping's raw
    socket would also receive (and mostly drop) the other processes' replies, which
    costs it CPU and loses some of its own. The figures add up the chunks: their whole
    CPU (rusage at exit), requests, replies and windows.

    fping -l prints every reply on stdout even with -q; that goes to /dev/null
    (block-buffered, a write per 4 KiB)."""
    common.need("fping", "fping")
    period = common.seconds_of(interval)
    per_process = max(1, int(FPING_MAX_RATE * period))
    chunks = [targets[i:i + per_process] for i in range(0, len(targets), per_process)]
    sent = received = 0
    cpu = wall = 0.0
    for n, chunk in enumerate(chunks):
        path = config / f"sustained-{n}.txt"
        path.write_text("\n".join(chunk) + "\n")
        proc = subprocess.Popen(["fping", "-l", "-q", "-i", "0", "-p", str(int(period * 1000)), "-f", str(path)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        t0 = time.monotonic()
        time.sleep(seconds)
        # Not proc.send_signal: it reaps an fping that exited on its own (an error), and
        # then neither its rusage nor its error could be read.
        os.kill(proc.pid, signal.SIGINT)
        # The summary first (it can exceed a pipe's buffer), then this child's own rusage.
        summary = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall += time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        cpu += usage.ru_utime + usage.ru_stime
        for line in summary.splitlines():
            if "xmt/rcv/%loss" in line:
                xr = line.split("=")[1].split(",")[0].strip().split("/")
                sent, received = sent + int(xr[0]), received + int(xr[1])
            elif line.startswith("fping error"):
                raise RuntimeError(line)
    # Each chunk ran for its own window: the rate is per window, summed over chunks.
    window = wall / len(chunks)
    return {
        "processes": len(chunks),
        "requests": sent,
        "requests_per_s": sent / window,
        "expected_per_s": len(targets) / period,
        "loss": 1 - received / sent if sent else float("nan"),
        "cpu_per_request_us": cpu / sent * 1e6 if sent else float("nan"),
        "cpu_share_of_core": cpu / window,
    }


def run_smokeping(targets, interval, seconds, config):
    """prometheus-smokeping-prober on `targets` for `seconds` after a warm-up; its own
    request/response counters give loss, /proc its CPU and RSS."""
    exe = common.need("prometheus-smokeping-prober", "prometheus-smokeping-prober")
    port = common.free_port()
    # Its own config file (the Debian default one pings localhost as well).
    cfg = config / f"smokeping-{len(targets)}.yml"
    cfg.write_text("targets:\n- interval: %s\n  network: ip4\n  protocol: icmp\n  hosts:\n%s"
                   % (interval, "".join(f"  - {t}\n" for t in targets)))
    proc = subprocess.Popen([exe, f"--web.listen-address=127.0.0.1:{port}", "--privileged",
                             "--log.level=error", f"--config.file={cfg}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def scrape():
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
            m = common.parse_metrics(r.read().decode())
        return common.metric(m, "smokeping_requests_total"), common.metric(m, "smokeping_response_duration_seconds_count")

    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                scrape()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    return {"targets": len(targets), "died": True}
                time.sleep(0.1)
        time.sleep(common.seconds_of(interval) * 2 + 1)
        (q0, r0), c0, t0 = scrape(), common.cpu_seconds(proc.pid), time.monotonic()
        time.sleep(seconds)
        (q1, r1), c1, t1 = scrape(), common.cpu_seconds(proc.pid), time.monotonic()
        requests = q1 - q0
        return {
            "targets": len(targets),
            "died": proc.poll() is not None,
            "requests": requests,
            "requests_per_s": requests / (t1 - t0),
            "expected_per_s": len(targets) / common.seconds_of(interval),
            # Replies to requests sent just before the window count in it: clamp at 0.
            "loss": max(0.0, 1 - (r1 - r0) / requests) if requests else 1.0,
            "cpu_per_request_us": (c1 - c0) / requests * 1e6 if requests else float("nan"),
            "cpu_share_of_core": (c1 - c0) / (t1 - t0),
            "rss_mib": common.rss_bytes(proc.pid) / 2**20,
        }
    except OSError:
        return {"targets": len(targets), "died": True}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def survives(s):
    """Keeps up: sends at least 95% of the expected requests and loses under 1%."""
    return not s.get("died") and s["requests_per_s"] >= 0.95 * s["expected_per_s"] and s["loss"] < 0.01


def smokeping_search(targets, interval, seconds, limit, config):
    """Largest size in 100, 200, 500, 1000, ... (up to `limit`) that smokeping_prober
    survives; returns (best result or None, first failing result or None)."""
    best = failed = None
    for n in [100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000]:
        if n > min(limit, len(targets)):
            break
        s = run_smokeping(targets[:n], interval, seconds, config)
        state = "survives" if survives(s) else "collapses"
        print(f"    smokeping_prober {n} targets at {interval}: {state} "
              f"({s.get('requests_per_s', 0):.0f}/{s.get('expected_per_s', 0):.0f} requests/s, "
              f"loss {s.get('loss', 1):.2%}, {s.get('cpu_share_of_core', 0):.0%} of a core)", flush=True)
        if survives(s):
            best = s
        else:
            failed = s
            break
    return best, failed


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=10000)
    p.add_argument("--interval", default="1s")
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--smokeping-max", type=int, default=100000,
                   help="largest target count tried with smokeping_prober (0: skip it)")
    p.add_argument("--no-build", action="store_true")
    a = p.parse_args()
    if not a.no_build:
        common.build()
    r = common.Report(f"prober-{a.devices}-{a.interval}", f"Prober: {a.devices:,} devices at {a.interval}")
    print(f"prober: {a.devices} devices at {a.interval} for {a.seconds:.0f}s", flush=True)
    w = run_wardops(a.devices, a.interval, a.seconds)
    f = run_fping(common.addresses(w["config"]), a.interval, a.seconds, w["config"])
    ratio = w["cpu_per_request_us"] / f["cpu_per_request_us"]
    r.figure("wardops probes/s", f"{w['probes_per_s']:,.0f} (expected {w['expected_per_s']:,.0f}); "
             f"{w['requests_per_probe']:.2f} echo requests per probe", "as configured",
             abs(w["probes_per_s"] / w["expected_per_s"] - 1) < 0.05)
    r.figure("wardops CPU per echo request", f"{w['cpu_per_request_us']:.2f} us ({w['cpu_per_probe_us']:.2f} us per probe)")
    r.figure("fping -i0 CPU per echo request (its best case: -c bursts)", f"{f['cpu_per_request_us']:.2f} us "
             f"({f['requests']:,} requests, {f['rounds']} rounds), loss {f['loss']:.3%}")
    r.figure("CPU per echo request, wardops / fping best case", f"{ratio:.2f}x", "<= 2x", ratio <= 2)
    r.figure("wardops loss", f"{w['loss']:.4%} ({w['lost']:,.0f} of {w['requests']:,.0f} echo requests; "
             f"of which {w['send_errors']:,.0f} not sent, {w['kernel_drops']:,} dropped by the kernel on a full "
             f"receive queue; {w['late_or_stray']:,.0f} replies came after their timeout or matched nothing)",
             "0", w["loss"] == 0)
    # The comparison a user faces: the same targets, rate and window, 1 echo each.
    w1 = run_wardops(a.devices, a.interval, a.seconds, packets=1)
    s1 = run_fping_sustained(common.addresses(w1["config"]), a.interval, a.seconds, w1["config"])
    sustained = w1["cpu_share_of_core"] / s1["cpu_share_of_core"]
    r.figure("sustained, wardops packets: 1", f"{w1['cpu_share_of_core']:.1%} of a core (whole process), "
             f"{w1['cpu_per_request_us']:.2f} us per echo request, {w1['probes_per_s']:,.0f} requests/s, "
             f"loss {w1['loss']:.4%}")
    r.figure("sustained, fping -l", f"{s1['cpu_share_of_core']:.1%} of a core ({s1['processes']} processes, one after the other), "
             f"{s1['cpu_per_request_us']:.2f} us per echo request, {s1['requests_per_s']:,.0f} of "
             f"{s1['expected_per_s']:,.0f} requests/s, loss {s1['loss']:.4%}")
    r.figure("sustained CPU, wardops / fping -l", f"{sustained:.2f}x", "<= 2x", sustained <= 2)
    r.figure("false downs / still unknown", f"{w['down']:.0f} / {w['unknown']:.0f}", "0 / 0", w["down"] == 0 and w["unknown"] == 0)
    r.figure("scheduler lag p50 / p99 (bucket upper bounds)",
             f"<= {common.fmt_ms(w['lag_p50'])} / <= {common.fmt_ms(w['lag_p99'])}; {w['skipped']:.0f} slots skipped",
             "p99 < 10 ms", w["lag_p99"] < 0.010)
    big = a.devices >= 100000 and common.seconds_of(a.interval) >= 10
    r.figure("wardops CPU", f"{w['cpu_share_of_core']:.1%} of a core (fping: {f['cpu_share_of_core']:.1%})",
             "< 50% of a core" if big else "", (w["cpu_share_of_core"] < 0.5) if big else None)
    r.figure("wardops RSS", f"{w['rss_mib']:.0f} MiB", "< 500 MiB" if big else "", (w["rss_mib"] < 500) if big else None)
    if a.smokeping_max:
        best, failed = smokeping_search(common.addresses(w["config"]), a.interval, min(a.seconds, 10),
                                        a.smokeping_max, w["config"])
        if best:
            r.figure(f"smokeping_prober, largest size it survives at {a.interval}"
                     + ("" if failed else f" (search stopped at --smokeping-max {a.smokeping_max})"),
                     f"{best['targets']:,} targets: {best['cpu_per_request_us']:.2f} us CPU per request "
                     f"({best['cpu_per_request_us'] / f['cpu_per_request_us']:.1f}x fping), loss {best['loss']:.2%}, "
                     f"RSS {best['rss_mib']:.0f} MiB")
        else:
            r.figure(f"smokeping_prober at {a.interval}", "does not survive even 100 targets")
        if failed:
            r.figure(f"smokeping_prober collapses at {a.interval}",
                     f"{failed['targets']:,} targets: " + ("exited" if failed.get("died") else
                     f"{failed['requests_per_s']:,.0f} of {failed['expected_per_s']:,.0f} requests/s sent, "
                     f"loss {failed['loss']:.1%}, {failed['cpu_share_of_core']:.0%} of a core"))
    r.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
