#!/usr/bin/env bash
# For each build: a fresh server; probe (refused holds, holds, listings,
# payments) with no maps, then with 15,000 date maps loaded (150 concerts of
# 100 dates listed), then probe again.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/../soak"
for build in ${ROUNDS:-head36 new}; do
  rm -rf /tmp/maps/data; mkdir -p /tmp/soak2/out /tmp/maps; rm -f /tmp/soak2/out/maps.jsonl
  CONCERT_DATA_DIR=/tmp/maps/data CONCERT_ADMIN_TOKEN=soak CONCERT_BIND=127.0.0.1:18383 RUST_LOG=warn \
    CONCERT_QUEUE_ACTIVE_MAX=100000 CONCERT_SCHEDULER_INTERVAL_MS=50 \
    /tmp/bin-$build/concert serve > /tmp/maps/server-$build.log 2>&1 &
  PID=$!; echo $PID > /tmp/soak2/server.pid
  for _ in $(seq 120); do curl -fs http://127.0.0.1:18383/readyz >/dev/null 2>&1 && break; sleep 0.5; done
  python3 "$HERE/ctx.py"
  python3 maps.py create 150 > /dev/null
  python3 maps.py probe "$build no maps" 
  python3 maps.py load
  python3 maps.py probe "$build 15000 maps"
  cp /tmp/soak2/out/maps.jsonl /tmp/maps/maps-$build.jsonl
  kill -INT $PID; wait $PID
done
