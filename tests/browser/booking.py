"""The pages in a real browser (headless Chromium driven by Playwright).

Two people on one date: one holds a seat and the other's seat map shows it
taken without a reload; the first charges, pays and sees the result; the
auditors' page shows the feed, a stream and a clean audit. No request may
leave the machine and no script may fail. Screenshots of each step go to the
folder given.

    python booking.py http://127.0.0.1:18396 <admin token> target/browser-screenshots
"""

import re
import sys
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

BASE, ADMIN_TOKEN, SHOTS = sys.argv[1], sys.argv[2], Path(sys.argv[3])
CHROMIUM = "/usr/bin/chromium"
SEAT = 5

SHOTS.mkdir(parents=True, exist_ok=True)
problems = []


def watch(context, name):
    """Refuses and records any request beyond the service; records script errors."""

    def leaves(url):
        return not url.startswith(BASE + "/")

    def refuse(route):
        problems.append(f"{name}: request left the machine: {route.request.url}")
        route.abort()

    context.route(leaves, refuse)
    page = context.new_page()
    page.on("pageerror", lambda error: problems.append(f"{name}: script error: {error}"))
    # Chromium logs each refused request (a 402 the test provokes) as a
    # console error; those are answers, not script errors.
    page.on(
        "console",
        lambda message: message.type == "error"
        and not message.text.startswith("Failed to load resource")
        and problems.append(f"{name}: console error: {message.text}"),
    )
    return page


def shot(page, name):
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def to_seat_map(page, name):
    """Signs in as a new sample user, queues, is admitted and opens the first date."""
    page.goto(BASE + "/")
    page.click("#sample-user")
    expect(page.locator("#queue")).to_be_visible()
    page.click("#enter-queue")
    expect(page.locator("#status")).to_have_text("active", timeout=15_000)
    shot(page, f"{name}-1-admitted")
    page.locator("#date-list button").first.click()
    expect(page.locator(f'#seat-map .seat[data-seat-no="{SEAT}"]')).to_have_attribute(
        "data-status", "free"
    )
    shot(page, f"{name}-2-seat-map")


with sync_playwright() as playwright:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    # A phone-sized screen for one, a desktop for the other.
    alice = watch(browser.new_context(viewport={"width": 390, "height": 844}), "alice")
    bob = watch(browser.new_context(viewport={"width": 1200, "height": 900}), "bob")
    to_seat_map(alice, "alice")
    to_seat_map(bob, "bob")

    # Alice holds a seat; Bob's map shows it taken without a reload.
    alice.click(f'#seat-map .seat[data-seat-no="{SEAT}"]')
    expect(alice.locator("#hold")).to_be_visible()
    expect(alice.locator("#countdown")).to_have_text(re.compile(r"^[0-9]+:[0-9]{2}$"))
    bob_seat = bob.locator(f'#seat-map .seat[data-seat-no="{SEAT}"]')
    expect(bob_seat).to_have_attribute("data-status", "held", timeout=5_000)
    expect(bob_seat).to_be_disabled()
    shot(alice, "alice-3-held")
    shot(bob, "bob-3-sees-held")

    # A refusal is explained: paying before charging the wallet.
    alice.click("#pay")
    expect(alice.locator("#message")).to_contain_text("balance is too low")
    shot(alice, "alice-4-refused")

    # Alice's page, as if opened over plain HTTP from another address (no
    # crypto.randomUUID outside a secure context), still builds version-4
    # keys for the charge and the payment below.
    alice.evaluate('Object.defineProperty(crypto, "randomUUID", { value: undefined })')
    key = alice.evaluate("idempotencyKey()")
    if not re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", key):
        problems.append(f"alice: an Idempotency-Key without crypto.randomUUID is {key!r}")

    # Alice charges her wallet and pays; Bob sees the seat sold.
    alice.fill("#amount", "150000")
    alice.click("#charge-form button")
    expect(alice.locator("#message")).to_contain_text("Charged")
    alice.click("#pay")
    expect(alice.locator("#result")).to_be_visible()
    expect(alice.locator("#result-text")).to_contain_text(f"Seat {SEAT} is yours")
    expect(bob_seat).to_have_attribute("data-status", "sold", timeout=5_000)
    shot(alice, "alice-5-paid")
    shot(bob, "bob-5-sees-sold")

    # The auditors' page: the feed, one stream's history, the audit.
    alice.goto(BASE + "/audit")
    alice.fill("#admin-token", ADMIN_TOKEN)
    alice.click("#admin-form button")
    expect(alice.locator("#events tr").first).to_be_visible()
    alice.locator("#events a").first.click()
    expect(alice.locator("#stream-events tr").first).to_be_visible()
    alice.click("#run-audit")
    expect(alice.locator("#audit-summary")).to_contain_text("All rules hold")
    shot(alice, "audit")

    browser.close()

if problems:
    sys.exit("browser test failed:\n" + "\n".join(problems))
print(f"browser test passed; screenshots in {SHOTS}")
