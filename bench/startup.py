#!/usr/bin/env python3
"""Start-up and reload at scale. Start-up: N devices in the inventory and in the store
(a first run fills the SQLite store and is stopped), then a timed second start: until
the listener answers, until `/readyz` passes, until the devices API serves all N, and
RSS. Reload: 1,000 changes (per changed file 40 relabelled, 20 re-addressed, 20
removed, 20 added; 10 files, each saved editor-style: temp file + rename), timed from
the first write until `/api/v1/status` shows the new inventory revision.

    bench/startup.py --devices 100000 --rounds 3
"""

import argparse
import os
import re
import sys
import time

import common

DEVICE = re.compile(r"^(\s+)- \{ name: ([\w.-]+), address: ([0-9.]+), (.*) \}$")


def change_files(config, round_no, files=10, per_file=100):
    """Applies 1,000 changes (with per_file=100 and files=10); returns the time the first
    write started and the expected device count delta (0)."""
    paths = sorted((config / "inventory").glob("*.yaml"))[:files]
    texts = []
    for f, path in enumerate(paths):
        lines = path.read_text().split("\n")
        q = per_file // 5
        # Removed: cameras and access points, so that no branch is left without devices
        # (its router and switch stay); the other changes go to the other kinds.
        idx = [i for i, line in enumerate(lines) if DEVICE.match(line)]
        spare = [i for i in idx if re.search(r"-(camera|ap)-\d+,", lines[i])][:q]
        rest = [i for i in idx if i not in spare][:3 * q]
        relabel, readdress, remove, add_after = rest[:2 * q], rest[2 * q:3 * q], spare, rest[0]
        for n, i in enumerate(relabel):
            ind, name, addr, rest = DEVICE.match(lines[i]).groups()
            rest = re.sub(r', bench: "r\d+"', "", rest)
            if rest.endswith(" }"):  # inside the labels map
                rest = rest[:-2] + f', bench: "r{round_no}" }}'
            lines[i] = f"{ind}- {{ name: {name}, address: {addr}, {rest} }}"
        for n, i in enumerate(readdress):
            ind, name, addr, rest = DEVICE.match(lines[i]).groups()
            lines[i] = f"{ind}- {{ name: {name}, address: 127.254.{round_no * files + f}.{n + 1}, {rest} }}"
        ind, _, _, rest = DEVICE.match(lines[add_after]).groups()
        added = [f"{ind}- {{ name: bench-added-r{round_no}-f{f}-{n}, address: 127.253.{round_no * files + f}.{n + 1}, {rest} }}"
                 for n in range(q)]
        # Bottom-up, so that each edit leaves the indices of the ones still to do alone.
        for i in sorted(remove + [add_after], reverse=True):
            if i == add_after:
                lines[i + 1:i + 1] = added
            else:
                del lines[i]
        texts.append((path, "\n".join(lines)))
    started = time.time()
    for path, text in texts:
        tmp = path.parent / f".{path.name}.bench-tmp"
        tmp.write_text(text)
        os.rename(tmp, path)
    return started


def reject_invalid_change(app, config):
    """Gives one device of the first file the address of another, saved editor-style;
    returns the seconds until `/api/v1/status` shows the refused reload and its error."""
    path = sorted((config / "inventory").glob("*.yaml"))[0]
    lines = path.read_text().split("\n")
    idx = [i for i, line in enumerate(lines) if DEVICE.match(line)]
    first_address = DEVICE.match(lines[idx[0]]).group(3)
    ind, name, _, rest = DEVICE.match(lines[idx[1]]).groups()
    lines[idx[1]] = f"{ind}- {{ name: {name}, address: {first_address}, {rest} }}"
    tmp = path.parent / f".{path.name}.bench-tmp"
    tmp.write_text("\n".join(lines))
    started = time.time()
    os.rename(tmp, path)
    while time.time() - started < 30:
        last = app.json("/api/v1/status")["inventory"].get("last_reload") or {}
        if last.get("result") == "failure" and any("duplicate address" in e for e in last.get("errors", [])):
            return time.time() - started
        time.sleep(0.05)
    return float("inf")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=100000)
    p.add_argument("--interval", default="10s")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--files", type=int, default=10,
                   help="inventory files the 1,000 changes are spread over (demo writes one per region)")
    p.add_argument("--no-build", action="store_true")
    a = p.parse_args()
    if not a.no_build:
        common.build()
    r = common.Report(f"startup-{a.devices}" + (f"-files{a.files}" if a.files != 10 else ""),
                      f"Start-up and reload: {a.devices:,} devices" + (f", changes in {a.files} file(s)" if a.files != 10 else ""))
    print(f"startup: {a.devices} devices", flush=True)
    config = common.demo(a.devices, a.interval)
    with common.Appliance(config) as first:  # fills the store
        deadline = time.time() + common.seconds_of(a.interval) * 3 + 60
        while first.json("/api/v1/status")["devices"]["up"] < a.devices and time.time() < deadline:
            time.sleep(0.5)
        time.sleep(2)  # let the writer drain
    app = common.Appliance(config)
    try:
        listening = app.ready_after
        ready = app.wait_for("/readyz")
        while True:
            body = app.json("/api/v1/devices?limit=1")
            if body["total"] == a.devices:
                serving = time.monotonic() - app.started
                break
            time.sleep(0.01)
        rss_ready = app.rss_bytes() / 2**20
        restored = app.json("/api/v1/status")["devices"]
        r.figure(f"start-up with {a.devices:,} devices in inventory and store: listening / ready / serving all",
                 f"{listening:.2f} s / {ready:.2f} s / {serving:.2f} s", "< 5 s", max(ready, serving) < 5)
        r.figure("status right after start-up (restored from the store)",
                 f"up {restored['up']:,}, down {restored['down']:,}, unknown {restored['unknown']:,}")
        time.sleep(common.seconds_of(a.interval) * 2 + 2)
        r.figure("RSS at ready / after two intervals of probing",
                 f"{rss_ready:.0f} MiB / {app.rss_bytes() / 2**20:.0f} MiB (peak {common.peak_rss_bytes(app.proc.pid) / 2**20:.0f} MiB)",
                 "< 500 MiB", app.rss_bytes() / 2**20 < 500)
        times, seen, own = [], [], []
        for round_no in range(1, a.rounds + 1):
            rev0 = app.json("/api/v1/status")["inventory"]["revision"]
            started = change_files(config, round_no, files=a.files, per_file=1000 // a.files)
            st = None
            while time.time() - started < 30:
                st = app.json("/api/v1/status")
                if st["inventory"]["revision"] > rev0:
                    break
                # Not faster: /api/v1/status walks all N statuses; polling it every few ms
                # at 100,000 devices costs the appliance CPU the reload needs.
                time.sleep(0.05)
            times.append(time.time() - started if st["inventory"]["revision"] > rev0 else float("inf"))
            # The devices API serves the added device (the state, not only the reloader).
            while time.time() - started < 30:
                if app.json(f"/api/v1/devices?q=bench-added-r{round_no}-f0-0")["total"] == 1:
                    break
                time.sleep(0.05)
            seen.append(time.time() - started if time.time() - started < 30 else float("inf"))
            st = app.json("/api/v1/status")
            ok = st["inventory"]["last_reload_successful"] and st["devices"]["total"] == a.devices
            last = st["inventory"].get("last_reload") or {}
            own.append(last.get("duration_seconds") or float("nan"))
            print(f"    reload round {round_no}: status {times[-1]:.3f} s, devices API {seen[-1]:.3f} s, "
                  f"reloader's own duration {own[-1]:.3f} s, {'ok' if ok else 'WRONG'} (diff {last.get('diff')})", flush=True)
            if not ok:
                r.note(f"reload round {round_no} did not apply as expected: {st['inventory']}")
            time.sleep(3)
        nfiles = len(list((config / "inventory").glob("*.yaml")))
        r.figure(f"reload of 1,000 changes in {a.files} of {nfiles} files at {a.devices:,}: write → new revision in "
                 "`/api/v1/status` (each round)",
                 ", ".join(f"{t:.2f} s" for t in times), "< 1 s", max(times) < 1)
        r.figure("… → the devices API serves an added device", ", ".join(f"{t:.2f} s" for t in seen), "< 1 s",
                 max(seen) < 1)
        r.figure("… of which the reload itself (`last_reload.duration_seconds` in /api/v1/status)",
                 ", ".join(f"{t:.2f} s" for t in own))
        r.figure("devices down after the reloads (false downs)", f"{app.json('/api/v1/status')['devices']['down']}", "0",
                 app.json("/api/v1/status")["devices"]["down"] == 0)
        rejected = reject_invalid_change(app, config)
        r.figure("an invalid change (a duplicate address in one file): write → rejected, its error in `/api/v1/status`",
                 f"{rejected:.2f} s", "< 1 s", rejected < 1)
    finally:
        app.stop()
    r.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
