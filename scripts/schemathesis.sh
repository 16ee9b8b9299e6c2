#!/usr/bin/env bash
# Fuzzes the running service against its own OpenAPI spec with schemathesis:
# no request may get a server error or a response that breaks the spec.
#
#   scripts/schemathesis.sh            # builds the debug binary, starts it on a private PostgreSQL
#   MAX_EXAMPLES=200 MAX_TIME=300 scripts/schemathesis.sh   # longer: MAX_TIME bounds the whole run, in seconds
set -euo pipefail
cd "$(dirname "$0")/.."

MAX_EXAMPLES=${MAX_EXAMPLES:-40}
VENV=${SCHEMATHESIS_VENV:-${TMPDIR:-/tmp}/concert-schemathesis-venv}
PORT=${PORT:-18395}
DATA_DIR=$(mktemp -d "${TMPDIR:-/tmp}/concert-schemathesis.XXXXXX")
chmod 755 "$DATA_DIR"
ADMIN_TOKEN=schemathesis-admin

if [[ ! -x $VENV/bin/schemathesis ]]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet 'schemathesis>=4,<5'
fi

cargo build --quiet --bin concert
# Every queue token the hooks ask for is admitted at once.
CONCERT_DATA_DIR=$DATA_DIR CONCERT_ADMIN_TOKEN=$ADMIN_TOKEN CONCERT_BIND=127.0.0.1:$PORT \
    CONCERT_QUEUE_ACTIVE_MAX=100000 CONCERT_SCHEDULER_INTERVAL_MS=50 \
    "${CARGO_TARGET_DIR:-target}/debug/concert" serve --demo >"$DATA_DIR/serve.log" 2>&1 &
SERVER=$!
cleanup() {
    kill -INT "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    rm -rf "$DATA_DIR"
}
trap cleanup EXIT

# Waits up to a minute for the service to be ready (python3 is there already; curl may not be).
if ! "$VENV/bin/python" - "$PORT" <<'PY'
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

# The hooks give admin operations the admin token and the others a live queue
# token (scripts/schemathesis_hooks.py).
# Schema-valid requests the service refuses on purpose (a concert over a
# million seats in total, integral floats such as 5.0) are not failures: the
# positive-data-acceptance check is left out.
CONCERT_URL=http://127.0.0.1:$PORT CONCERT_ADMIN_TOKEN=$ADMIN_TOKEN \
    SCHEMATHESIS_HOOKS=scripts/schemathesis_hooks.py \
    "$VENV/bin/schemathesis" --config-file scripts/schemathesis.toml run "http://127.0.0.1:$PORT/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
    --max-examples "$MAX_EXAMPLES" \
    --max-time "${MAX_TIME:-60}" \
    --seed 1
