#!/usr/bin/env bash
# Reproduces the figures of BENCHMARKS.md on this machine: builds both
# binaries, starts `concert serve` on a fresh private PostgreSQL, runs the
# flash sales, the pgbench ceiling, every endpoint in a closed loop, the
# ceiling again (minutes apart), and stops the server. Results (JSON and the printed tables)
# go to $OUT.
#
#   bench/run.sh                       # everything, about 35 minutes plus the build
#   STEPS="ceiling endpoints" bench/run.sh
#
# Settings (environment): BIN (folder holding concert and concert-bench:
# no build then), OUT, DATA (private PostgreSQL's folder, wiped
# first), PORT, CONCURRENCY (64), SECONDS_PER_RUN (15), STEPS (flash audit
# ceiling endpoints ceiling history million), ENDPOINTS (enter-queue charge
# hold pay seats dates; also healthz, the HTTP floor), FLASH ("2000:500 20000:5000",
# users:seats pairs), MILLION_WALLETS and MILLION_PER_WALLET (10000 x 100), QUIET_PERCENT
# (wait before each run until the machine is less busy than this, 20; 100
# disables the wait), PREPARED (work prepared per endpoint, concert-bench's
# --prepared).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-bench/results/$(date -u +%Y%m%dT%H%M%SZ)}
DATA=${DATA:-/tmp/bench-data}
PORT=${PORT:-18181}
CONCURRENCY=${CONCURRENCY:-64}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-15}
STEPS=${STEPS:-flash audit ceiling endpoints ceiling history million}
FLASH=${FLASH:-2000:500 20000:5000}
ENDPOINTS=${ENDPOINTS:-enter-queue charge hold pay seats dates}
QUIET_PERCENT=${QUIET_PERCENT:-20}
ADMIN=bench
URL=http://127.0.0.1:$PORT

mkdir -p "$OUT"
if [ -z "${BIN:-}" ]; then
  cargo build --release --bins
  BIN=target/release
fi

# The machine, once.
{
  echo "date: $(date -u +%FT%TZ)"
  echo "cpus: $(nproc) ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'))"
  echo "memory: $(free -m | awk '/Mem:/ {print $2 " MiB"}')"
  echo "kernel: $(uname -r)"
  echo "rustc: $(rustc --version)"
  echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo none) $(git status --porcelain 2>/dev/null | wc -l) files changed"
} | tee "$OUT/machine.txt"

# Waits until the whole machine is less busy than QUIET_PERCENT over 3 s
# (other builds or tests would be measured too), at most 10 minutes.
wait_quiet() {
  [ "$QUIET_PERCENT" -ge 100 ] && return 0
  local deadline=$((SECONDS + 600)) busy
  while :; do
    busy=$(awk '{u=$2+$3+$4+$7+$8+$9; t=u+$5+$6; print u, t}' <(head -1 /proc/stat); sleep 3; \
           awk '{u=$2+$3+$4+$7+$8+$9; t=u+$5+$6; print u, t}' <(head -1 /proc/stat))
    busy=$(echo "$busy" | tr '\n' ' ' | awk '{printf "%d", 100*($3-$1)/($4-$2+1)}')
    if [ "$busy" -lt "$QUIET_PERCENT" ]; then return 0; fi
    if [ $SECONDS -gt $deadline ]; then
      echo "warning: the machine stayed ${busy}% busy; measuring anyway" | tee -a "$OUT/notes.txt"
      return 0
    fi
    echo "machine ${busy}% busy; waiting for quiet..." >&2
    sleep 10
  done
}

SERVER_PID=
start_server() {
  CONCERT_DATA_DIR=$DATA CONCERT_ADMIN_TOKEN=$ADMIN CONCERT_BIND=127.0.0.1:$PORT \
  CONCERT_QUEUE_ACTIVE_MAX=${ACTIVE_MAX:-100000} CONCERT_SCHEDULER_INTERVAL_MS=50 \
  CONCERT_HOLD_TTL_SECS=3600 CONCERT_QUEUE_ACTIVE_TTL_SECS=3600 CONCERT_LOG_FORMAT=json \
    "$BIN/concert" serve >>"$OUT/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 120); do
    curl -fs "$URL/healthz" >/dev/null 2>&1 && break
    sleep 0.5
  done
  curl -fs "$URL/readyz" >/dev/null
  DATABASE_URL=$(grep -o '"url":"[^"]*"' "$OUT/server.log" | tail -1 | cut -d'"' -f4)
  echo "server pid $SERVER_PID, database $DATABASE_URL"
}

stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill -INT "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 120); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.5; done
  SERVER_PID=
  if pgrep -f -- "-D $DATA/pgdata" >/dev/null; then
    echo "warning: a PostgreSQL of $DATA is still running" | tee -a "$OUT/notes.txt"
  fi
}
trap stop_server EXIT

rss() {
  grep -E 'VmHWM|VmRSS' "/proc/$SERVER_PID/status" | tr -s ' \t' ' ' | tr '\n' ' '
}

rm -rf "$DATA"
start_server
{
  echo "postgres: $(psql "$DATABASE_URL" -Atc 'show server_version')"
  psql "$DATABASE_URL" -Atc "select name || ' = ' || setting || coalesce(' ' || unit, '') from pg_settings
    where name in ('max_connections','shared_buffers','fsync','synchronous_commit','full_page_writes',
                   'wal_level','max_wal_size','checkpoint_timeout','wal_buffers','commit_delay','work_mem')"
} | tee -a "$OUT/machine.txt"

for step in $STEPS; do
  case $step in
    flash)
      for pair in $FLASH; do
        users=${pair%%:*}; seats=${pair##*:}
        wait_quiet
        "$BIN/concert-bench" flash-sale --url "$URL" --admin-token $ADMIN --users "$users" --seats "$seats" \
          --concurrency "$CONCURRENCY" --server-pid "$SERVER_PID" --json "$OUT/flash-$users-$seats.json" \
          | tee "$OUT/flash-$users-$seats.txt"
        echo "after flash sale $users/$seats: $(rss)" | tee -a "$OUT/rss.txt"
      done
      ;;
    ceiling)
      n=$(find "$OUT" -maxdepth 1 -name "ceiling-*.json" | wc -l)
      wait_quiet
      "$BIN/concert-bench" ceiling --database-url "$DATABASE_URL" --clients "$CONCURRENCY" \
        --seconds "$SECONDS_PER_RUN" --service-shape --json "$OUT/ceiling-$((n + 1)).json" \
        | tee "$OUT/ceiling-$((n + 1)).txt"
      ;;
    endpoints)
      for name in $ENDPOINTS; do
        wait_quiet
        "$BIN/concert-bench" endpoint --url "$URL" --admin-token $ADMIN --name $name \
          --concurrency "$CONCURRENCY" --seconds "$SECONDS_PER_RUN" --server-pid "$SERVER_PID" \
          ${PREPARED:+--prepared "$PREPARED"} --json "$OUT/endpoint-$name.json" | tee "$OUT/endpoint-$name.txt"
      done
      echo "after endpoints: $(rss)" | tee -a "$OUT/rss.txt"
      ;;
    audit)
      # `concert audit` over everything the runs above wrote (flash sales included).
      wait_quiet
      /usr/bin/time -v env DATABASE_URL="$DATABASE_URL" "$BIN/concert" audit --queue-active-max 100000 \
        >"$OUT/audit-service.txt" 2>"$OUT/audit-service.time" && echo "audit of the service's log: passed" \
        || { echo "audit of the service's log FAILED (see $OUT/audit-service.txt)"; exit 1; }
      grep -E "Maximum resident|Elapsed" "$OUT/audit-service.time"
      ;;
    million)
      # Replay and audit of a synthetic log of MILLION_WALLETS x MILLION_PER_WALLET
      # charges (bench/million_events.sql) in a database of its own.
      million_url=${DATABASE_URL/\/concert\?//concert_million?}
      psql "$DATABASE_URL" -qc "drop database if exists concert_million" -c "create database concert_million"
      DATABASE_URL=$million_url "$BIN/concert" migrate
      psql "$million_url" -q -v wallets="${MILLION_WALLETS:-10000}" -v per_wallet="${MILLION_PER_WALLET:-100}" \
        -f bench/million_events.sql
      psql "$million_url" -Atc "select count(*) || ' events in the log' from events" | tee "$OUT/million.txt"
      for tool in replay audit; do
        wait_quiet
        /usr/bin/time -v env DATABASE_URL="$million_url" "$BIN/concert" $tool \
          >"$OUT/million-$tool.out" 2>"$OUT/million-$tool.err" || { echo "concert $tool failed"; tail "$OUT/million-$tool.err"; exit 1; }
        { echo "concert $tool:"; grep -E "events in|events/s" "$OUT/million-$tool.err" | tail -1;
          grep -E "Maximum resident|Elapsed" "$OUT/million-$tool.err"; } | tee -a "$OUT/million.txt"
      done
      psql "$DATABASE_URL" -qc "drop database concert_million"
      ;;
    history)
      # A wallet with 10,000 events against a fresh one; a queue with 100,000
      # waiting against one with 100 (needs a server that admits no one).
      stop_server
      ACTIVE_MAX=1 start_server
      wait_quiet
      "$BIN/concert-bench" history --url "$URL" --admin-token $ADMIN --json "$OUT/history.json" | tee "$OUT/history.txt"
      stop_server
      start_server
      ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
  esac
done

stop_server
echo "results in $OUT"
