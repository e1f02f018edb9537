#!/bin/bash
# usage: run.sh BINARY SECONDS [wrapper...]  — 100k demo devices at 10s, serve for SECONDS
BIN=$1; SECS=$2; shift 2
D=${TMPDIR:-/tmp}/wardops-profile-$$; rm -rf $D
$BIN demo --devices 100000 --interval 10s --out $D >/dev/null
PORT=$((20000 + RANDOM % 10000))
WARDOPS_LISTEN=127.0.0.1:$PORT RUST_LOG=warn WARDOPS_DATABASE_URL=sqlite://$D/bench.db "$@" $BIN serve -c $D/wardops.yaml 2>$D/log &
PID=$!
sleep $SECS
ps -o rss= -p $(pgrep -P $PID || echo $PID) ; grep -E 'VmRSS|RssAnon' /proc/$PID/status 2>/dev/null
kill -INT $PID; wait $PID
rm -rf $D
