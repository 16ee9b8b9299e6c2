#!/usr/bin/env bash
# A/B at one client (or $C clients): alternating binaries, fresh database each time.
set -u
OUT=${OUT:-/tmp/abc1}; C=${C:-1}; SECS=${SECS:-10}
ENDPOINTS=${ENDPOINTS:-enter-queue charge hold pay seats}
ROUNDS=${ROUNDS:-"before after after before"}
PG="psql -q -h 127.0.0.1 -p 5499 -U postgres"
mkdir -p $OUT
i=0
for which in $ROUNDS; do
  i=$((i+1))
  $PG postgres -c "drop database if exists concert_ab" -c "create database concert_ab"
  $PG concert_ab -c "create extension pg_stat_statements"
  DATABASE_URL=postgres://postgres@127.0.0.1:5499/concert_ab CONCERT_ADMIN_TOKEN=bench CONCERT_BIND=127.0.0.1:18383 \
  CONCERT_QUEUE_ACTIVE_MAX=100000 CONCERT_SCHEDULER_INTERVAL_MS=50 CONCERT_HOLD_TTL_SECS=3600 \
  CONCERT_QUEUE_ACTIVE_TTL_SECS=3600 CONCERT_LOG_FORMAT=json /tmp/bin-$which/concert serve > $OUT/server-$i-$which.log 2>&1 &
  pid=$!
  for _ in $(seq 60); do curl -fs 127.0.0.1:18383/readyz >/dev/null && break; sleep 0.5; done
  for name in $ENDPOINTS; do
    /tmp/bin-$which/concert-bench endpoint --url http://127.0.0.1:18383 --admin-token bench --name $name \
      --concurrency $C --seconds $SECS --server-pid $pid ${PROFILE:+--profile-database-url postgres://postgres@127.0.0.1:5499/concert_ab} \
      --json $OUT/$i-$which-$name.json > $OUT/$i-$which-$name.txt 2>&1
    grep -E "^$name " $OUT/$i-$which-$name.txt | sed "s/^/$i $which /"
  done
  kill -INT $pid; wait $pid
done
