#!/bin/bash
# usage: ab_active.sh BIN
# Three instances of BIN on the PostgreSQL in $DATABASE_URL (default: port
# 20398, database concert), then s15_short_active.py with N users (100).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$1; LOGS=${LOGS:-/tmp/missed-admissions}; mkdir -p "$LOGS"
URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:20398/concert}
for i in 0 1 2; do
  DATABASE_URL=$URL CONCERT_ADMIN_TOKEN=adm CONCERT_BIND=127.0.0.1:2039$i CONCERT_QUEUE_ACTIVE_MAX=5 \
  CONCERT_HOLD_TTL_SECS=5 CONCERT_QUEUE_ACTIVE_TTL_SECS=20 "$BIN" serve >> "$LOGS/s$i.log" 2>&1 &
  echo $! > "$LOGS/s$i.pid"
done
for i in 0 1 2; do for _ in $(seq 60); do curl -fs 127.0.0.1:2039$i/readyz >/dev/null && break; sleep 0.5; done; done
N=${N:-100} SSEP=20392 timeout 300 python3 "$HERE/s15_short_active.py"
for i in 0 1 2; do kill -INT "$(cat "$LOGS/s$i.pid")"; done; wait
