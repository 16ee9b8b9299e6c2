"""The booking page behind something that lets no event stream through (a
proxy that blocks or holds them back), in a real browser.

The page then asks the plain routes every few seconds instead: its standing,
so that it learns of its admission (a probe's page showed "waiting" 50 s
after it); and the seat listing, so that it draws the seat map (none was
drawn) and sees another user's hold. It says that live updates are not
getting through, not that the service cannot be reached. A screen reader
hears the standing as one sentence. No request may leave the machine and no
script may fail.

    python blocked_streams.py http://127.0.0.1:18396 <admin token> target/browser-screenshots
"""

import re
import sys

from playwright.sync_api import expect, sync_playwright

from harness import BASE, CHROMIUM, admitted_as_sample_user, create_concert, holding_a_seat, problems, seat, shot, watch

with sync_playwright() as playwright:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    blocked = []

    def block(route):
        blocked.append(route.request.url)
        route.abort()

    context.route(lambda url: url.startswith(BASE + "/") and url.split("?")[0].endswith("/events"), block)
    page = watch(context, "blocked")
    concert_id = create_concert(page, "Blocked streams", 12, 1_000, "2031-09-01T19:00:00Z")

    # Admitted though no standing stream got through.
    admitted_as_sample_user(page, concert_id)
    if not blocked:
        problems.append("blocked: no event stream was asked for")
    expect(page.locator("#message")).to_contain_text("Live updates are not getting through")
    expect(page.locator("#message")).not_to_contain_text("cannot be reached")
    # Read out as one sentence, not as the parts that changed.
    expect(page.locator("#standing-words")).to_contain_text("Admitted until")
    if page.locator("#standing").get_attribute("aria-live") is not None:
        problems.append("blocked: the standing's parts are a live region of their own")

    # The seat map, from the seat listing.
    page.locator("#date-list button").first.click()
    expect(page.locator("#seat-map .seat")).to_have_count(12, timeout=10_000)
    expect(page.locator("#seat-map .seat.free")).to_have_count(12)
    shot(page, "blocked-1-seat-map-from-the-listing", full_page=False)

    # Another user's hold shows within a few seconds, as taken.
    other = holding_a_seat(browser, "other", concert_id)
    expect(seat(page, 1)).to_have_attribute("aria-label", "seat 1, taken", timeout=10_000)
    expect(page.locator("#seat-map .seat.free")).to_have_count(11)
    # (Marked, not disabled: the arrow keys walk every seat.)
    seat(page, 1).click(force=True)
    expect(page.locator("#message")).to_contain_text("Seat 1 is taken")

    # A hold from the listing's map.
    seat(page, 2).click()
    expect(page.locator("#hold")).to_be_visible()
    expect(page.locator("#held-seat")).to_have_text("2")
    # The date named, to the minute, its zone too (it read "9/1/2031, 7:00:00 PM").
    expect(page.locator("#held-date")).to_have_text(" on Sep 1, 2031, 7:00 PM UTC")
    expect(page.locator("#date-list button").first).to_contain_text("Sep 1, 2031, 7:00 PM UTC")
    expect(seat(page, 2)).to_have_attribute("aria-label", "seat 2, yours", timeout=10_000)
    # Never more time than is left (rounded up, 45 s were "1 minute left").
    expect(page.locator("#countdown-words")).to_have_text(re.compile(r"^At least [45] minutes left to pay$"))
    shot(page, "blocked-2-held", full_page=False)
    other.close()
    browser.close()

if problems:
    sys.exit("blocked-streams browser test failed:\n" + "\n".join(problems))
print("blocked-streams browser test passed")
