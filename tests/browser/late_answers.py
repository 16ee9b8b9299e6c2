"""What the booking page shows when the service's answers come late or the
wallet moves elsewhere, in a real browser.

A payment sent before its hold's end but answered after it: the page waits
for the answer (it said the hold had run out, and offered to queue again,
while the seat was being paid). A wallet charged from elsewhere: the balance
shown follows once the page is in view again. A person's double click and a
held Enter key on Charge: one charge each. A hold that ran out while the
page was closed: said when it opens again. A payment refused for the
balance: says how much to charge, and the charge field holds it. A payment
whose answers were all lost: shown bought once the page opens again.
Signing in again: the charge field holds what the hold needs. A waiting
tab in the background: it learns of its admission within 30 s (half its
estimated wait, 15 s to 30 s) and says so in its title. A refused token: the message
names the problem's code. No concert yet: the page looks again, and shows
one scheduled later without a reload. No request may leave the machine and
no script may fail.

    python late_answers.py http://127.0.0.1:18396 <admin token> target/browser-screenshots
"""

import json
import sys
from datetime import datetime, timedelta, timezone

from playwright.sync_api import expect, sync_playwright

from harness import (
    BASE,
    CHROMIUM,
    admitted_as_sample_user,
    calls,
    create_concert,
    expect_streams,
    forged_token,
    holding_a_seat,
    problems,
    set_visibility,
    shot,
    watch,
)


def hold_shown_ending_in(page, seconds):
    """Makes the page read the hold's answer with an `expires_at` `seconds`
    from now (the service keeps its own, minutes away)."""

    def shorten(route):
        answer = route.fetch()
        body = answer.json()
        soon = datetime.now(timezone.utc) + timedelta(seconds=seconds)
        body["expires_at"] = soon.isoformat().replace("+00:00", "Z")
        route.fulfill(response=answer, body=json.dumps(body))

    page.route(f"{BASE}/api/v1/reservations", shorten)


def payments_held_back(page):
    """Holds every payment's answer back (the payment itself goes through
    at once) until the test lets it go: the list of answers waiting."""
    waiting = []

    def held_back(route):
        waiting.append((route, route.fetch()))

    page.route(f"{BASE}/api/v1/payments", held_back)
    return waiting


with sync_playwright() as playwright:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    page = watch(browser.new_context(viewport={"width": 1200, "height": 900}), "late")
    concert_id = create_concert(page, "Late answers", 4, 1_000, "2031-09-01T19:00:00Z")
    admitted_as_sample_user(page, concert_id)
    user_id = page.evaluate("state.userId")
    wallet = {"Authorization": f"Bearer {page.evaluate('state.userToken')}"}

    # A hold the page shows ending in 12 s.
    hold_shown_ending_in(page, 12)
    page.locator("#date-list button").first.click()
    page.locator("#seat-map .seat.free").first.click()
    expect(page.locator("#hold")).to_be_visible()

    # Charged from elsewhere: the page shows it once back in view.
    page.fill("#amount", "5000")
    page.click("#charge-form button")
    expect(page.locator("#balance")).to_have_text("₩5,000")
    charged = page.request.post(f"{BASE}/api/v1/users/{user_id}/balance/charges", headers=wallet, data={"amount": 2_500})
    if charged.status != 200:
        sys.exit(f"the charge from elsewhere was refused: {charged.status} {charged.text()}")
    set_visibility(page, "hidden")
    set_visibility(page, "visible")
    expect(page.locator("#balance")).to_have_text("₩7,500")

    # A person's double click on Charge (two presses 150 ms apart, the first
    # answered before the second) and a held Enter key: one charge each.
    # Each charged two to sixteen times while a quick answer re-enabled it.
    button = page.locator("#charge-form button")
    button.scroll_into_view_if_needed()
    box = button.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.fill("#amount", "1000")
    page.wait_for_timeout(700)  # past the charge above, which a press 0.6 s later would repeat
    page.mouse.click(x, y)
    page.wait_for_timeout(150)
    page.mouse.click(x, y)
    expect(page.locator("#balance")).to_have_text("₩8,500")
    page.wait_for_timeout(1_000)
    page.focus("#amount")
    for _ in range(10):
        page.keyboard.down("Enter")  # again without an up: a repeat
        page.wait_for_timeout(60)
    page.keyboard.up("Enter")
    page.wait_for_timeout(1_000)
    balance = page.request.get(f"{BASE}/api/v1/users/{user_id}/balance", headers=wallet).json()["balance"]
    if balance != 9_500:
        problems.append(f"a double click and a held Enter on Charge left a balance of {balance}, not 9,500")

    # Paid before the hold's end, answered after it.
    waiting = payments_held_back(page)
    page.click("#pay")
    expect(page.locator("#message")).to_contain_text("wait for the answer", timeout=15_000)
    shot(page, "late-1-payment-answered-after-the-hold", full_page=False)
    page.wait_for_timeout(1_500)
    if "ran out" in page.locator("#message").text_content() or not page.locator("#hold").is_visible():
        problems.append("the hold was said to have run out while its payment was answered")
    route, answer = waiting[0]
    route.fulfill(response=answer)
    expect(page.locator("#message")).to_have_text("Payment complete.")
    expect(page.locator("#result-text")).to_contain_text("is yours")
    page.wait_for_timeout(1_500)
    if page.locator("#message").text_content() != "Payment complete.":
        problems.append(f"after the payment: {page.locator('#message').text_content()}")

    # A user token refused (looking at the balance again): the message names the code.
    page.evaluate(f"state.userToken = {json.dumps(forged_token(user_id))}")
    set_visibility(page, "hidden")
    set_visibility(page, "visible")
    expect(page.locator("#message")).to_contain_text("(token_invalid)")

    # A hold that ran out while the page was closed: the page says so when
    # it opens again (the hold was gone without a word).
    away = holding_a_seat(browser, "away", concert_id)
    seat_no = away.evaluate("state.reservation.seat_no")

    def ran_out(route):
        answer = route.fetch()
        route.fulfill(response=answer, body=json.dumps({**answer.json(), "status": "expired"}))

    away.route(f"{BASE}/api/v1/reservations/*", ran_out)
    away.goto("about:blank")
    away.go_back()
    expect(away.locator("#message")).to_contain_text(f"Your hold on seat {seat_no} ran out while this page was closed")
    expect(away.locator("#hold")).to_be_hidden()

    # A payment refused for the balance says how much is missing, and the
    # charge field holds it (a fixed 150,000 fell short of dearer seats).
    lost = holding_a_seat(browser, "lost-payment", concert_id)
    lost.click("#pay")
    expect(lost.locator("#message")).to_contain_text("charge at least ₩1,000 more")
    expect(lost.locator("#amount")).to_have_value("1000")
    lost.click("#charge-form button")
    expect(lost.locator("#balance")).to_have_text("₩1,000")

    # A control the keyboard reaches under the sticky message (here at
    # 200 % zoom) is scrolled out from under it.
    zoomed = holding_a_seat(browser, "focus-under-message", concert_id, width=640, height=450)
    zoomed.click("#pay")
    expect(zoomed.locator("#message")).to_contain_text("charge at least")
    zoomed.focus("#amount")
    date = "document.querySelector('#date-list button')"
    zoomed.evaluate(f"window.scrollBy(0, {date}.getBoundingClientRect().top - 10)")
    under_message = f"document.querySelector('#message').getBoundingClientRect().bottom - {date}.getBoundingClientRect().top"
    if zoomed.evaluate(under_message) <= 0:
        problems.append("the date button was not under the message before the focus: the check proves nothing")
    zoomed.locator("#date-list button").first.focus()
    covered = zoomed.evaluate(under_message)
    if covered > 0:
        problems.append(f"the focused date button is {covered:.0f} px under the message")

    # A payment whose every answer is lost (the first went through): once
    # the page opens again, the seat shows as bought. It was left saying the
    # token had ended, inviting the user to buy another seat.
    def answer_lost(route):
        route.fetch()
        route.abort("connectionreset")

    lost.route(f"{BASE}/api/v1/payments", answer_lost)
    lost.wait_for_timeout(700)  # past the charge's press
    lost.click("#pay")
    expect(lost.locator("#message")).to_contain_text("cannot be reached", timeout=30_000)
    lost.unroute(f"{BASE}/api/v1/payments")
    lost.reload()
    expect(lost.locator("#result-text")).to_contain_text("is yours: it was paid while this page was away")
    expect(lost.locator("#message")).to_have_text("This seat was paid already.")
    expect(lost.locator("#hold")).to_be_hidden()
    shot(lost, "late-2-lost-payment-answer-reloaded", full_page=False)

    # Signing in again refills the charge field with what the held seat
    # still needs, as a balance read does: a hold made while the sign-in was
    # refused left the page's 150,000 there, charged for a 1,000 seat.
    second = create_concert(page, "Second look", 2, 1_000, "2031-09-02T19:00:00Z")
    again = watch(browser.new_context(viewport={"width": 1200, "height": 900}), "sign-in-again")
    admitted_as_sample_user(again, second)
    good = again.evaluate("state.userToken")
    again.evaluate(f"state.userToken = {json.dumps(forged_token(again.evaluate('state.userId')))}")
    again.locator("#date-list button").first.click()
    again.locator("#seat-map .seat.free").first.click()
    expect(again.locator("#hold")).to_be_visible()
    expect(again.locator("#sign-in")).to_be_visible()
    again.fill("#user-token", good)
    again.click("#token-form button")
    expect(again.locator("#sign-in")).to_be_hidden()
    expect(again.locator("#amount")).to_have_value("1000")

    # A waiting tab in the background (the queue's answer stubbed to
    # "waiting": here every entry is admitted at once) holds no stream, but
    # asks where its token stands after half its estimated wait, 15 s to
    # 30 s: it learns of its admission and says so in its title. It
    # said "waiting" until the admission lapsed. The page's clock is
    # Playwright's, to skip the wait.
    def hidden_waiting_tab(name, position, estimate):
        """A tab entering the queue while hidden, told it waits `position`
        places ahead, `estimate` seconds; the page's clock is Playwright's."""
        tab = watch(browser.new_context(viewport={"width": 1200, "height": 900}), name)
        tab.clock.install()

        def waiting(route):
            answer = route.fetch()
            told = {"status": "waiting", "position": position, "estimated_wait_seconds": estimate, "expires_at": None}
            route.fulfill(response=answer, body=json.dumps({**answer.json(), **told}))

        tab.route(f"{BASE}/api/v1/queue/tokens", waiting)
        tab.goto(BASE + "/")
        tab.click("#sample-user")
        expect(tab.locator("#queue")).to_be_visible()
        tab.select_option("#concert", second)
        set_visibility(tab, "hidden")
        tab.click("#enter-queue")
        expect(tab.locator("#status")).to_have_text("waiting")
        return tab

    current = "/api/v1/queue/tokens/current"

    def asks_after(tab, name, silent_ms, why):
        """The hidden `tab` asks nothing for `silent_ms`, then asks within
        6 s more and learns of its admission; returns the calls before."""
        asked = calls(name, "GET", current)
        tab.clock.fast_forward(silent_ms)
        tab.wait_for_timeout(500)
        if calls(name, "GET", current) != asked:
            problems.append(f"a hidden tab {why} asked its standing sooner than {silent_ms + 5_000} ms")
        tab.clock.fast_forward(6_000)
        expect(tab).to_have_title("Your turn – concert")
        return asked

    behind = hidden_waiting_tab("hidden-waiting", 3, 50)
    asked = asks_after(behind, "hidden-waiting", 20_000, "waiting 50 s")
    expect(behind.locator("#status")).to_have_text("active")
    if calls("hidden-waiting", "GET", current) != asked + 1:
        problems.append(f"a hidden tab asked its standing {calls('hidden-waiting', 'GET', current) - asked} times in 26 s")
    expect_streams(behind, "hidden-waiting", 0)
    # Shown again: the title is the page's, and the standing's stream is back.
    set_visibility(behind, "visible")
    expect(behind).to_have_title("concert: book a seat")
    expect_streams(behind, "hidden-waiting", 1)
    shot(behind, "late-3-admitted-while-hidden", full_page=False)

    # Far back in a long line (estimated 1,000 s), a hidden tab still asks
    # every 30 s, and so learns of its admission with most of its time left.
    far = hidden_waiting_tab("hidden-far-back", 9000, 1000)
    asks_after(far, "hidden-far-back", 25_000, "far back in the line")

    # No concert yet: a concert scheduled later shows without a reload.
    fresh = watch(browser.new_context(viewport={"width": 1200, "height": 900}), "no-concert")
    answered_empty = []

    def none_yet(route):
        if answered_empty:
            return route.continue_()
        answered_empty.append(True)
        route.fulfill(status=200, content_type="application/json", body='{"concerts": []}')

    fresh.route(f"{BASE}/api/v1/concerts", none_yet)

    # A proxy's HTML error page in front of a stopped service reads as the
    # service being unavailable, not as a script's JSON error, and promises
    # nothing of payments at a sign-in.
    def proxy_down(route):
        fresh.unroute(f"{BASE}/api/v1/demo/user-tokens")
        route.fulfill(status=502, content_type="text/html", body="<html><head><title>502 Bad Gateway</title></head></html>")

    fresh.route(f"{BASE}/api/v1/demo/user-tokens", proxy_down)
    fresh.goto(BASE + "/")
    fresh.click("#sample-user")
    expect(fresh.locator("#message")).to_contain_text("The service is busy or unavailable")
    said = fresh.locator("#message").text_content()
    if "Unexpected token" in said or "paid twice" in said:
        problems.append(f"a proxy's 502 page at the sign-in said: {said}")
    fresh.wait_for_timeout(700)  # past the press
    fresh.click("#sample-user")
    expect(fresh.locator("#message")).to_contain_text("No concert is scheduled yet")
    expect(fresh.locator("#concert option")).not_to_have_count(0, timeout=20_000)
    browser.close()

if problems:
    sys.exit("late-answers browser test failed:\n" + "\n".join(problems))
print("late-answers browser test passed")
