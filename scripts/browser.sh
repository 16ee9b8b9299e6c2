#!/usr/bin/env bash
# The pages in a real browser: starts `concert serve --demo` on a private
# PostgreSQL and drives headless Chromium through tests/browser/*.py
# (Playwright for Python, launched on the
# system's Chromium: no browser download). Screenshots go to target/browser-screenshots/.
#
#   scripts/browser.sh          # needs /usr/bin/chromium (Debian: apt-get install chromium)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/serve.sh
. scripts/lib/serve.sh

VENV=${BROWSER_VENV:-${TMPDIR:-/tmp}/concert-browser-venv}
PORT=${PORT:-18396}
SHOTS=${SHOTS:-${CARGO_TARGET_DIR:-target}/browser-screenshots}
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

# Every queue entry is admitted at once.
serve_demo browser "$PORT" "$ADMIN_TOKEN"

rm -rf "$SHOTS"
# booking.py: two people on the demo date; stadium.py: a 50,000-seat date,
# and one booking in two tabs (after booking.py, which reads the demo's log);
# held_out.py: a concert whose only seat another holds; late_answers.py:
# answers that come after the hold's end, a wallet charged elsewhere;
# blocked_streams.py: no event stream gets through.
for test in booking stadium held_out late_answers blocked_streams; do
    if ! timeout 180 "$VENV/bin/python" "tests/browser/$test.py" "http://127.0.0.1:$PORT" "$ADMIN_TOKEN" "$SHOTS"; then
        echo "--- service log ---" >&2
        tail -n 50 "$DATA_DIR/serve.log" >&2
        exit 1
    fi
done
