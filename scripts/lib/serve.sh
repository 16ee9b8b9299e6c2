# shellcheck shell=bash
# Sourced by scripts/schemathesis.sh and scripts/browser.sh: the service as
# both drive it, `concert serve --demo` (debug build) on a private
# PostgreSQL in a fresh folder, every queue entry admitted at once.
#
#   serve_demo NAME PORT ADMIN_TOKEN
#
# Sets DATA_DIR (the folder; the service's log is $DATA_DIR/serve.log) and
# SERVER (its pid), stops the service and removes the folder on exit, and
# returns once /readyz answers; after a minute without, prints the log and
# exits 1.

serve_demo() {
    local name=$1 port=$2 admin_token=$3
    cargo build --quiet --bin concert
    DATA_DIR=$(mktemp -d "${TMPDIR:-/tmp}/concert-$name.XXXXXX")
    chmod 755 "$DATA_DIR"
    CONCERT_DATA_DIR=$DATA_DIR CONCERT_ADMIN_TOKEN=$admin_token CONCERT_BIND=127.0.0.1:$port \
        CONCERT_QUEUE_ACTIVE_MAX=100000 CONCERT_SCHEDULER_INTERVAL_MS=50 \
        "${CARGO_TARGET_DIR:-target}/debug/concert" serve --demo >"$DATA_DIR/serve.log" 2>&1 &
    SERVER=$!
    trap stop_demo EXIT

    # python3 is there already (the callers' virtualenvs); curl may not be.
    if ! python3 - "$port" <<'PY'
import sys, time, urllib.request
for _ in range(120):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/readyz", timeout=2)
        sys.exit(0)
    except Exception:
        time.sleep(0.5)
sys.exit("the service did not become ready")
PY
    then
        cat "$DATA_DIR/serve.log" >&2
        exit 1
    fi
}

# Stops the service started by serve_demo and removes its folder.
stop_demo() {
    kill -INT "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    rm -rf "$DATA_DIR"
}
