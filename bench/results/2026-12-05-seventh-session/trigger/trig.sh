#!/usr/bin/env bash
set -euo pipefail
cd /work/main
BIN=target/release; DATA=/tmp/exp/data; PORT=18282; URL=http://127.0.0.1:$PORT; OUT=/tmp/exp/out; mkdir -p $OUT
rm -rf $DATA
CONCERT_DATA_DIR=$DATA CONCERT_ADMIN_TOKEN=bench CONCERT_BIND=127.0.0.1:$PORT \
  CONCERT_QUEUE_ACTIVE_MAX=100000 CONCERT_SCHEDULER_INTERVAL_MS=50 \
  CONCERT_HOLD_TTL_SECS=3600 CONCERT_QUEUE_ACTIVE_TTL_SECS=3600 CONCERT_LOG_FORMAT=json \
  $BIN/concert serve >>$OUT/server.log 2>&1 &
PID=$!
trap "kill -INT $PID" EXIT
for _ in $(seq 120); do curl -fs $URL/healthz >/dev/null 2>&1 && break; sleep 0.5; done
DB=$(grep -o '"url":"[^"]*"' $OUT/server.log | tail -1 | cut -d'"' -f4)
echo "db $DB"
for round in 1 2 3; do
 for mode in on off; do
  if [ $mode = off ]; then psql "$DB" -qc "alter table events disable trigger events_chain_hash"; else psql "$DB" -qc "alter table events enable trigger events_chain_hash"; fi
  for name in ${ENDPOINTS:-hold}; do
  $BIN/concert-bench endpoint --url $URL --admin-token bench --name $name --concurrency 64 --seconds 10 --server-pid $PID --json $OUT/$name-$mode-$round.json > $OUT/$name-$mode-$round.txt
  echo "$name $mode $round: $(grep -iE 'per second|/s' $OUT/$name-$mode-$round.txt | head -2 | tr '\n' ' ')"
  done
 done
done
psql "$DB" -qc "alter table events enable trigger events_chain_hash"
