#!/bin/bash
# One run, before and after side by side: each bench on the base binary, then on this branch's.
cd "$(dirname "$0")/../.."
BASE=${BASE:?the before binary}
AFTER=${AFTER:?the after binary}
for spec in "prober.py --devices 100000 --interval 10s --seconds 30 --smokeping-max 0" \
            "prober.py --devices 10000 --interval 1s --seconds 30 --smokeping-max 0" \
            "memory.py --devices 100000 --interval 10s --seconds 60 --scrapes 1"; do
  for side in base after; do
    BIN=$BASE; [ $side = after ] && BIN=$AFTER
    echo "=== $side: bench/$spec  ($(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg))"
    WARDOPS_BENCH_BINARY=$BIN python3 bench/$spec --no-build 2>&1
  done
done
echo "=== end $(date -u +%H:%M:%S)"
