#!/usr/bin/env bash
# Alternating builds (in /tmp/bin-<name>), each on a fresh private PostgreSQL:
# every endpoint of $ENDPOINTS at $CONC clients (64) for $SECS s, with at most
# $ACTIVE_MAX active queue tokens (100000: every token is admitted).
set -u
OUT=${OUT:-/tmp/ab7}; SECS=${SECS:-10}
ENDPOINTS=${ENDPOINTS:-hold charge pay enter-queue}
ROUNDS=${ROUNDS:-"head36 new new head36"}
mkdir -p $OUT
i=0
for which in $ROUNDS; do
  i=$((i+1))
  rm -rf /tmp/ab7-data
  CONCERT_DATA_DIR=/tmp/ab7-data CONCERT_ADMIN_TOKEN=bench CONCERT_BIND=127.0.0.1:18383 \
  CONCERT_QUEUE_ACTIVE_MAX=${ACTIVE_MAX:-100000} CONCERT_SCHEDULER_INTERVAL_MS=50 CONCERT_HOLD_TTL_SECS=3600 \
  CONCERT_QUEUE_ACTIVE_TTL_SECS=3600 CONCERT_LOG_FORMAT=json /tmp/bin-$which/concert serve > $OUT/server-$i-$which.log 2>&1 &
  pid=$!
  for _ in $(seq 120); do curl -fs 127.0.0.1:18383/readyz >/dev/null 2>&1 && break; sleep 0.5; done
  for name in $ENDPOINTS; do
    /tmp/bin-$which/concert-bench endpoint --url http://127.0.0.1:18383 --admin-token bench --name $name \
      --concurrency ${CONC:-64} --seconds $SECS --server-pid $pid --json $OUT/$i-$which-$name.json > $OUT/$i-$which-$name.txt 2>&1
    awk 'found { print; exit } /statuses$/ { found = 1 }' $OUT/$i-$which-$name.txt | sed "s/^/$i $which /"
  done
  kill -INT $pid; wait $pid
done
