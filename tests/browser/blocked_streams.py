"""The booking page behind something that lets no event stream through (a
proxy that blocks or holds them back), in a real browser.

The page then asks the plain routes every few seconds instead: its standing,
so that it learns of its admission (a probe's page showed "waiting" 50 s
after it); and the seat listing, so that it draws the seat map (none was
drawn) and sees another user's hold. It says that live updates are not
getting through, not that the service cannot be reached. A screen reader
hears the standing as one sentence. No request may leave the machine and no
script may fail. After a service restart, the stream is tried again as
soon as the service answers, not blamed on something in between.

    python blocked_streams.py http://127.0.0.1:18396 <admin token> target/browser-screenshots
"""

import json
import re
import sys
import time

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
    # In words, not by a colour a colour-blind user cannot tell.
    expect(page.locator("#message")).to_have_text("Seat 1 is taken: pick a free seat.")

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

    # A service restart: the seat stream drops (here one that carried its
    # snapshot ends) and for 8 s nothing answers. Once the plain route
    # answers again the stream is tried at once: the page says the service
    # cannot be reached while it cannot, and never that something in
    # between holds the streams back (it did for 6-15 s, until the stream's
    # backoff ran out), and the message goes once the stream is back.
    restart = watch(browser.new_context(viewport={"width": 1200, "height": 900}), "restart")
    restarted = create_concert(restart, "Restart", 6, 1_000, "2031-09-03T19:00:00Z")
    admitted_as_sample_user(restart, restarted)
    down_until = []

    def restarting(route):
        url = route.request.url
        if "/seats/events" in url and not down_until:
            down_until.append(time.monotonic() + 8)
            date_id = url.split("/dates/")[1].split("/")[0]
            snapshot = json.dumps({"date_id": date_id, "total_seats": 6, "seats": "FFFFFF"})
            return route.fulfill(status=200, content_type="text/event-stream", body=f"event: snapshot\ndata: {snapshot}\n\n")
        if down_until and time.monotonic() < down_until[0]:
            return route.abort("connectionrefused")
        route.continue_()

    restart.route(lambda url: url.startswith(BASE + "/api/"), restarting)
    restart.locator("#date-list button").first.click()
    expect(restart.locator("#message")).to_contain_text("cannot be reached", timeout=10_000)
    said = set()
    deadline = time.monotonic() + 25
    while time.monotonic() < deadline and not (time.monotonic() > down_until[0] and restart.locator("#message").is_hidden()):
        said.add(restart.locator("#message").text_content())
        restart.wait_for_timeout(100)
    back_for = time.monotonic() - down_until[0]
    print(f"after a restart, the page's message went {back_for:.1f} s after the service answered again")
    if any("not getting through" in text for text in said):
        problems.append(f"restart: the page blamed something in between after a restart: {said}")
    expect(restart.locator("#message")).to_be_hidden()
    expect(seat(restart, 6)).to_have_attribute("data-status", "free")
    browser.close()

if problems:
    sys.exit("blocked-streams browser test failed:\n" + "\n".join(problems))
print("blocked-streams browser test passed")
