#!/usr/bin/env bash
# usage: [SECS=15] run.sh <label> <concert binary> [bench flags...]
label=$1; bin=$2; shift 2
ulimit -n 65536
port=18500
rm -rf /tmp/ssebench-data; mkdir -p /tmp/ssebench-data; chown postgres /tmp/ssebench-data 2>/dev/null
CONCERT_DATA_DIR=/tmp/ssebench-data CONCERT_BIND=127.0.0.1:$port CONCERT_ADMIN_TOKEN=bench \
  CONCERT_QUEUE_ACTIVE_MAX=100000 CONCERT_QUEUE_ACTIVE_TTL_SECS=3600 RUST_LOG=warn \
  env ${ENVPREFIX:-} $bin serve > /tmp/sse/$label.server.log 2>&1 &
pid=$!
for i in $(seq 1 100); do curl -sf http://127.0.0.1:$port/healthz >/dev/null && break; sleep 0.5; done
/tmp/sse/concert-sse-bench --url http://127.0.0.1:$port --admin-token bench \
  --server-pid $pid --subscribers ${SUBS:-10000} --seconds ${SECS:-15} --holders 32 "$@" > /tmp/sse/$label.txt 2>&1
curl -s http://127.0.0.1:$port/metrics | grep -E "concert_live|concert_seat_listings" > /tmp/sse/$label.metrics
kill -TERM $pid; wait $pid
echo "== $label"; cat /tmp/sse/$label.txt
