#!/usr/bin/env bash
# usage: run1.sh <bin-name> <endpoint> <label>
set -u
which=$1; name=$2; label=$3; C=${C:-64}; SECS=${SECS:-10}
PG="psql -q -h 127.0.0.1 -p 5499 -U postgres"
$PG postgres -c "drop database if exists concert_ab" -c "create database concert_ab"
$PG concert_ab -c "create extension pg_stat_statements"
env ${EXTRA:-} DATABASE_URL=postgres://postgres@127.0.0.1:5499/concert_ab CONCERT_ADMIN_TOKEN=bench CONCERT_BIND=127.0.0.1:18383 \
CONCERT_QUEUE_ACTIVE_MAX=100000 CONCERT_SCHEDULER_INTERVAL_MS=50 CONCERT_HOLD_TTL_SECS=3600 \
CONCERT_QUEUE_ACTIVE_TTL_SECS=3600 CONCERT_LOG_FORMAT=json /tmp/bin-$which/concert serve > server-$label.log 2>&1 &
pid=$!
for _ in $(seq 60); do curl -fs 127.0.0.1:18383/readyz >/dev/null && break; sleep 0.5; done
(sleep 3; vmstat 1 6 > vmstat-$label.txt) &
/tmp/bin-$which/concert-bench endpoint --url http://127.0.0.1:18383 --admin-token bench --name $name \
  --concurrency $C --seconds $SECS --server-pid $pid --profile-database-url postgres://postgres@127.0.0.1:5499/concert_ab \
  --json $label.json > $label.txt 2>&1
curl -s 127.0.0.1:18383/metrics > metrics-$label.txt
kill -INT $pid; wait $pid
grep -E "^$name " $label.txt
