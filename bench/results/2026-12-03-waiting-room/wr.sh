#!/usr/bin/env bash
# usage: wr.sh <label> <concert binary> [bench flags...]: the waiting-room run
label=$1; bin=$2; shift 2
port=18500
rm -rf /tmp/ssebench-data; mkdir -p /tmp/ssebench-data; chown postgres /tmp/ssebench-data 2>/dev/null
CONCERT_DATA_DIR=/tmp/ssebench-data CONCERT_BIND=127.0.0.1:$port CONCERT_ADMIN_TOKEN=bench \
  CONCERT_QUEUE_ACTIVE_MAX=100 CONCERT_QUEUE_ACTIVE_TTL_SECS=3 RUST_LOG=warn \
  $bin serve > /tmp/sse/$label.server.log 2>&1 &
pid=$!
for i in $(seq 1 100); do curl -sf http://127.0.0.1:$port/healthz >/dev/null && break; sleep 0.5; done
/tmp/sse/concert-sse-bench --url http://127.0.0.1:$port --admin-token bench --server-pid $pid \
  --waiting-room ${WATCHERS:-10000} --seconds 20 \
  --database-url "postgres:///concert?host=/tmp/ssebench-data&port=5432&user=postgres" "$@" > /tmp/sse/$label.txt 2>&1
kill -TERM $pid; wait $pid
echo "== $label"; cat /tmp/sse/$label.txt
