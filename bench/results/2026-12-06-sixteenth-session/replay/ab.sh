#!/usr/bin/env bash
# `concert replay` of two builds, alternating, on the same two logs in one
# private PostgreSQL: a flash sale's log (FLASH users:seats, the service's own
# interleaving of seats, wallets and tickets) and the synthetic million-event
# log of bench/million_events.sql (MILLION_WALLETS x MILLION_PER_WALLET
# charges, each wallet's in a row).
#
#   A=/tmp/bin-base B=/tmp/bin-new OUT=/tmp/replay-ab bash ab.sh
set -euo pipefail
cd "$(dirname "$0")/../../../.."
A=${A:?folder of build A} B=${B:?folder of build B}
OUT=${OUT:-/tmp/replay-ab}
DATA=${DATA:-/tmp/replay-ab-data}
PORT=${PORT:-18190}
FLASH=${FLASH:-20000:5000}
ROUNDS_FLASH=${ROUNDS_FLASH:-a b b a a b}
ROUNDS_MILLION=${ROUNDS_MILLION:-a b b a}
URL=http://127.0.0.1:$PORT
mkdir -p "$OUT"
rm -rf "$DATA"
{
  echo "date: $(date -u +%FT%TZ)"
  echo "cpus: $(nproc) ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'))"
  echo "A: $A ($("$A/concert" --version 2>/dev/null || true)); B: $B"
} | tee "$OUT/machine.txt"

CONCERT_DATA_DIR=$DATA CONCERT_ADMIN_TOKEN=bench CONCERT_BIND=127.0.0.1:$PORT \
CONCERT_QUEUE_ACTIVE_MAX=100000 CONCERT_SCHEDULER_INTERVAL_MS=50 \
CONCERT_HOLD_TTL_SECS=3600 CONCERT_QUEUE_ACTIVE_TTL_SECS=3600 CONCERT_LOG_FORMAT=json \
  "$B/concert" serve >"$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill -INT $SERVER 2>/dev/null; wait $SERVER 2>/dev/null' EXIT
for _ in $(seq 120); do curl -fs "$URL/readyz" >/dev/null 2>&1 && break; sleep 0.5; done
DATABASE_URL=$(grep -o '"url":"[^"]*"' "$OUT/server.log" | tail -1 | cut -d'"' -f4)

"$B/concert-bench" flash-sale --url "$URL" --admin-token bench --users "${FLASH%%:*}" \
  --seats "${FLASH##*:}" --concurrency 64 > "$OUT/flash.txt"
psql "$DATABASE_URL" -Atc "select count(*) || ' events in the flash sale log' from events" | tee "$OUT/logs.txt"

million_url=${DATABASE_URL/\/concert\?//concert_million?}
psql "$DATABASE_URL" -qc "drop database if exists concert_million" -c "create database concert_million"
DATABASE_URL=$million_url "$B/concert" migrate > /dev/null
psql "$million_url" -q -v wallets="${MILLION_WALLETS:-10000}" -v per_wallet="${MILLION_PER_WALLET:-100}" \
  -f bench/million_events.sql
psql "$million_url" -Atc "select count(*) || ' events in the million log' from events" | tee -a "$OUT/logs.txt"

run() { # log url build-letter round
  local bin=$A; [ "$3" = b ] && bin=$B
  local start end
  start=$(date +%s.%N)
  DATABASE_URL=$2 "$bin/concert" replay > "$OUT/$1-$4-$3.out" 2>&1
  end=$(date +%s.%N)
  printf '%s %s round %s: %.2f s\n' "$1" "$3" "$4" "$(echo "$end - $start" | bc)" | tee -a "$OUT/times.txt"
}
# One unmeasured replay each first: positions assigned, caches warm.
run flash "$DATABASE_URL" b warmup
run million "$million_url" b warmup
n=0; for build in $ROUNDS_FLASH; do n=$((n + 1)); run flash "$DATABASE_URL" "$build" "$n"; done
n=0; for build in $ROUNDS_MILLION; do n=$((n + 1)); run million "$million_url" "$build" "$n"; done
psql "$DATABASE_URL" -qc "drop database concert_million"
