#!/usr/bin/env bash
# Alternating builds (in /tmp/bin-<name>): a waiting room of 10,000 standing
# streams for 20 s, each round on a fresh private PostgreSQL (the
# nineteenth session's script, with the load generator of the first build).
set -u
OUT=${OUT:-/tmp/wr}; ROUNDS=${ROUNDS:-"base wait wait base"}
mkdir -p $OUT
bench=/tmp/bin-${ROUNDS%% *}/concert-sse-bench
i=0
for which in $ROUNDS; do
  i=$((i+1))
  rm -rf /tmp/wr-data
  CONCERT_DATA_DIR=/tmp/wr-data CONCERT_BIND=127.0.0.1:18500 CONCERT_ADMIN_TOKEN=bench \
    CONCERT_QUEUE_ACTIVE_MAX=100 CONCERT_QUEUE_ACTIVE_TTL_SECS=3 RUST_LOG=warn \
    /tmp/bin-$which/concert serve > $OUT/server-$i-$which.log 2>&1 &
  pid=$!
  for _ in $(seq 120); do curl -fs 127.0.0.1:18500/readyz >/dev/null 2>&1 && break; sleep 0.5; done
  $bench --url http://127.0.0.1:18500 --admin-token bench \
    --waiting-room 10000 --seconds 20 \
    --database-url "postgres:///concert?host=/tmp/wr-data&port=5432&user=postgres" > $OUT/$i-$which.txt 2>&1
  echo "== $i $which"; tail -12 $OUT/$i-$which.txt
  # The server's CPU time over the round, in clock ticks (10 ms).
  awk -v w=$which "{print \"cpu_ticks \" w \" \" \$14+\$15}" /proc/$pid/stat
  kill -INT $pid; wait $pid
done
