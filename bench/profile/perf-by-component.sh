#!/bin/bash
# inclusive share of the prober thread's samples per component entry point
F=$1
perf report -i $F --children --comm wardops-prober --sort symbol -g none 2>/dev/null | grep -v '^#' > $F.children
TOTAL=$(perf report -i $F --no-children --sort comm -g none 2>/dev/null | grep wardops-prober | awk '{print $1}')
echo "prober thread: $TOTAL of all samples; inclusive shares within it:"
for s in '__libc_sendto' '__libc_recvmsg' 'recvmmsg' 'epoll_wait' 'time::wheel::Wheel::poll\b' 'process_at_time' 'wardops::state::State::record_probe' 'ProberMetrics::probe_done' 'pending::register' 'pending::credit' 'Channel::dispatch' 'run_device'; do
  grep -E "\] .*$s" $F.children | head -1 | awk -v s="$s" '{printf "  %-45s %s (children) %s (self)\n", s, $1, $2}'
done
