#!/usr/bin/env bash
# Alternating builds: each round starts the build's server on a fresh private
# PostgreSQL and times charges to a fresh wallet and to one of 20,000 events.
set -euo pipefail
OUT=${OUT:-/tmp/hist/out}; mkdir -p $OUT
for build in ${ROUNDS:-head36 new head36 new}; do
  DATA=/tmp/hist/data; rm -rf $DATA; PORT=18484
  CONCERT_DATA_DIR=$DATA CONCERT_ADMIN_TOKEN=bench CONCERT_BIND=127.0.0.1:$PORT RUST_LOG=warn \
    /tmp/bin-$build/concert serve > $OUT/server-$build.log 2>&1 &
  PID=$!
  for _ in $(seq 120); do curl -fs http://127.0.0.1:$PORT/readyz >/dev/null 2>&1 && break; sleep 0.5; done
  n=$(ls $OUT | grep -c "^history-$build" || true)
  /tmp/bin-$build/concert-bench history --url http://127.0.0.1:$PORT --admin-token bench \
    --wallet-events ${WALLET_EVENTS:-20000} --waiting 0 > $OUT/history-$build-$((n+1)).txt 2>&1
  echo "$build: $(grep -i 'charge' $OUT/history-$build-$((n+1)).txt | tr '\n' ' ')"
  kill -INT $PID; wait $PID || true
done
