#!/bin/bash
# usage: perf.sh BINARY OUT — 100k demo devices at 10s; perf record the prober for 15 s after 20 s
BIN=$1; OUT=$2
D=${TMPDIR:-/tmp}/wardops-profile-$$; rm -rf $D
$BIN demo --devices 100000 --interval 10s --out $D >/dev/null
PORT=$((20000 + RANDOM % 10000))
WARDOPS_LISTEN=127.0.0.1:$PORT RUST_LOG=warn WARDOPS_DATABASE_URL=sqlite://$D/bench.db $BIN serve -c $D/wardops.yaml 2>$D/log &
PID=$!
sleep 20
T0=$(awk '{print $14+$15}' /proc/$PID/stat)
perf record -g -o $OUT -p $PID -- sleep 15 2>/dev/null >/dev/null
T1=$(awk '{print $14+$15}' /proc/$PID/stat)
echo "cpu over 15 s: $(( (T1-T0) )) ticks ($(python3 -c "print(($T1-$T0)/100/15*100)")% of a core)"
grep -E 'VmRSS' /proc/$PID/status
kill -INT $PID; wait $PID
rm -rf $D
