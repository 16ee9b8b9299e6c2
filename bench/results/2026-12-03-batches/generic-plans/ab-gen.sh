#!/usr/bin/env bash
# A/B of plan_cache_mode=force_generic_plan on every connection (URL option), same binary.
set -u
OUT=${OUT:-/tmp/abgen}; C=${C:-64}; SECS=${SECS:-10}
ENDPOINTS=${ENDPOINTS:-hold charge enter-queue pay}
ROUNDS=${ROUNDS:-"plain gen gen plain"}
PG="psql -q -h 127.0.0.1 -p 5499 -U postgres"
mkdir -p $OUT
i=0
for which in $ROUNDS; do
  i=$((i+1))
  opts=""; [ "$which" = gen ] && opts="?options=-c%20plan_cache_mode%3Dforce_generic_plan"
  $PG postgres -c "drop database if exists concert_ab" -c "create database concert_ab"
  DATABASE_URL="postgres://postgres@127.0.0.1:5499/concert_ab$opts" CONCERT_ADMIN_TOKEN=bench CONCERT_BIND=127.0.0.1:18383 \
  CONCERT_QUEUE_ACTIVE_MAX=100000 CONCERT_SCHEDULER_INTERVAL_MS=50 CONCERT_HOLD_TTL_SECS=3600 \
  CONCERT_QUEUE_ACTIVE_TTL_SECS=3600 CONCERT_LOG_FORMAT=json /tmp/bin-v4/concert serve > $OUT/server-$i-$which.log 2>&1 &
  pid=$!
  for _ in $(seq 60); do curl -fs 127.0.0.1:18383/readyz >/dev/null && break; sleep 0.5; done
  $PG concert_ab -tAc "select 'session plan_cache_mode: ' || current_setting('plan_cache_mode')"
  for name in $ENDPOINTS; do
    /tmp/bin-v4/concert-bench endpoint --url http://127.0.0.1:18383 --admin-token bench --name $name \
      --concurrency $C --seconds $SECS --server-pid $pid \
      --json $OUT/$i-$which-$name.json > $OUT/$i-$which-$name.txt 2>&1
    grep -E "^$name " $OUT/$i-$which-$name.txt | sed "s/^/$i $which /"
    grep -E "^CPU" $OUT/$i-$which-$name.txt | sed "s/^/$i $which /"
  done
  psql -h 127.0.0.1 -p 5499 -U postgres concert_ab -tAc "select count(*) from pg_stat_activity where datname='concert_ab' and backend_type='client backend'" | sed "s/^/$i connections: /"
  kill -INT $pid; wait $pid
done
