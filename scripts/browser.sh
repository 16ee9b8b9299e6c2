#!/usr/bin/env bash
# The pages in a real browser: starts `concert serve --demo` on a private
# PostgreSQL and drives headless Chromium through tests/browser/booking.py
# (Playwright for Python, launched on the system's Chromium: no browser
# download). Screenshots go to target/browser-screenshots/.
#
#   scripts/browser.sh          # needs /usr/bin/chromium (Debian: apt-get install chromium)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${BROWSER_VENV:-${TMPDIR:-/tmp}/concert-browser-venv}
PORT=${PORT:-18396}
SHOTS=${SHOTS:-${CARGO_TARGET_DIR:-target}/browser-screenshots}
DATA_DIR=$(mktemp -d "${TMPDIR:-/tmp}/concert-browser.XXXXXX")
chmod 755 "$DATA_DIR"
ADMIN_TOKEN=browser-admin

if [[ ! -x /usr/bin/chromium ]]; then
    echo "error: /usr/bin/chromium is missing (apt-get install -y --no-install-recommends chromium)" >&2
    exit 1
fi
if ! "$VENV/bin/python" -c 'import playwright' 2>/dev/null; then
    python3 -m venv "$VENV"
    # The driver only; `playwright install` (a browser download) is never run.
    "$VENV/bin/pip" install --quiet 'playwright>=1.40,<2'
fi

cargo build --quiet --bin concert
# Every queue entry is admitted at once.
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

rm -rf "$SHOTS"
if ! timeout 120 "$VENV/bin/python" tests/browser/booking.py "http://127.0.0.1:$PORT" "$ADMIN_TOKEN" "$SHOTS"; then
    echo "--- service log ---" >&2
    tail -n 50 "$DATA_DIR/serve.log" >&2
    exit 1
fi
