#!/bin/sh
# tests/rt_wait under a hard time limit: were its SCHED_FIFO thread to spin
# again where real-time throttling is off (sched_rt_runtime_us = -1), it
# would hold its CPU for good.
timeout -s KILL 300 "${top_builddir:-.}/tests/rt_wait"
rc=$?
[ $rc -eq 137 ] && echo "FAIL: tests/rt_wait killed after 300 s: the SCHED_FIFO thread spun"
exit $rc
