#!/bin/bash
BIN=$1
D=${TMPDIR:-/tmp}/wardops-profile-$$; rm -rf $D
$BIN demo --devices 100000 --interval 10s --out $D >/dev/null
PORT=$((20000 + RANDOM % 10000))
WARDOPS_LISTEN=127.0.0.1:$PORT RUST_LOG=warn WARDOPS_DATABASE_URL=sqlite://$D/bench.db $BIN serve -c $D/wardops.yaml 2>$D/log &
PID=$!
sleep 60
echo "before trim: $(grep VmRSS /proc/$PID/status)"
gdb -p $PID -batch -ex 'call (int)malloc_trim(0)' 2>&1 | grep '^\$' 
sleep 2
echo "after trim:  $(grep VmRSS /proc/$PID/status)"
sleep 20
echo "20 s later:  $(grep VmRSS /proc/$PID/status)"
kill -INT $PID; wait $PID; rm -rf $D
