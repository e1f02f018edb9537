#!/usr/bin/env python3
import sys, re, collections
# heaptrack_print -f <file> --print-peaks 0 --print-allocators 0 --print-temporary 0 --print-leaks 0 --flamegraph-cost-type leaked -F <stacks>; then: heap-by-component.py <stacks>
rules = [
 ("store feed: writer queue", "writer::queue::Queue"),
 ("store feed: snapshot Latest", "store::snapshot::Latest"),
 ("store feed: spooler other", "Spooler::run"),
 ("store: sqlite", "sqlite3"),
 ("scheduler: task", "task::core::Cell"),
 ("scheduler: watch per device", "watch::channel"),
 ("scheduler: Tasks map", "schedule::tasks::Tasks::sync"),
 ("history (read_model)", "read_model::history"),
 ("state: replace_inventory", "State::replace_inventory"),
 ("state: other", "wardops::state::"),
 ("inventory: config load", "wardops::config::"),
 ("feed", "wardops::feed::"),
 ("pinger", "wardops::probe::"),
 ("metrics", "wardops::metrics"),
 ("web/minijinja", "minijinja"),
]
tot = collections.Counter(); ex = collections.defaultdict(collections.Counter)
for line in open(sys.argv[1]):
    stack, _, cost = line.rstrip().rpartition(" ")
    cost = int(cost)
    for name, pat in rules:
        if pat in stack:
            tot[name] += cost; break
    else:
        tot["other"] += cost
        frames = [f for f in stack.split(";") if "wardops::" in f]
        ex["other"][frames[-1][:120] if frames else stack.split(";")[-1][:120]] += cost
s = sum(tot.values())
for k, v in tot.most_common(): print(f"{v/2**20:8.1f} MiB  {v/1e5:7.0f} B/device  {k}")
print(f"{s/2**20:8.1f} MiB total")
for k, v in ex["other"].most_common(12): print(f"   other {v/2**20:6.1f} MiB {k}")
