"""The pages in a real browser (headless Chromium driven by Playwright).

Two people on one date: Alice on a phone whose clock is 45 s fast, Bob on a
desktop. A forged user token is refused at sign-in. Each tab keeps one event
stream once its seat map is open, and none while hidden; back in view, Bob's
map is live again. Alice holds a seat (her first try, answered 503, is sent
again with its Idempotency-Key): her countdown shows the full hold time by the
service's clock, the page scrolls to Pay and moves the focus there, and Bob's
seat map and free count change without a reload. She reloads: still signed
in, back at Pay, her seat shown as hers. Refusals (a second seat, an amount, a
low balance) show in Alice's viewport. Her user token goes bad: the sign-in
comes back, and signing in again keeps her hold; a reload whose read of her
hold gets no answer still shows it; she double-clicks Charge (its first
answer lost on the way back: sent again with its key, charged once) and Pay
(paid once, no error after it), and sees the result
over a seat map that stops, her seat in it sold and hers; a reload still
shows what she bought. Free, held, sold and her own seats differ by more
than their colours, as the legend shows them. A waiting place's estimated
wait counts down. The auditors' page says when the admin token is wrong,
keeps the focus on a control when paging back to the first page, clears a
stream shown before an unknown one, shows the feed, a stream and a clean
audit whose checkpoint scripts/checkpoint.py recomputes and which holds the
log to it, and marks the events a violation names. No request may leave the
machine, no page asset may fail (the icon included) and no script may fail.
Screenshots of each step go to the folder given.

    python booking.py http://127.0.0.1:18396 <admin token> target/browser-screenshots
"""

import json
import re
import sys
import time
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from checkpoint import checkpoint as recompute_checkpoint  # noqa: E402
from harness import (  # noqa: E402
    ADMIN_TOKEN,
    BASE,
    CHROMIUM,
    SHOTS,
    calls,
    expect_message,
    expect_streams,
    forged_token,
    look_without_colour,
    problems,
    seat,
    set_visibility,
    shot,
    text_contrast,
    watch,
    within_5_s,
)

SEAT = 5
# The hold time of `serve --demo` (CONCERT_HOLD_TTL_SECS unset: 300 s).
FULL_HOLD = re.compile(r"^(4:5[0-9]|5:00)$")
# The device clock 45 s ahead: Date.now() and new Date() both.
CLOCK_AHEAD = """(() => {
  const RealDate = Date;
  const now = () => RealDate.now() + 45_000;
  globalThis.Date = class extends RealDate {
    constructor(...args) { super(...(args.length ? args : [now()])); }
    static now() { return now(); }
  };
})()"""


def to_seat_map(page, name):
    """Signs in as a new sample user, queues, is admitted and opens the first date."""
    page.goto(BASE + "/")
    # A double click signs in one sample user.
    page.dblclick("#sample-user")
    expect(page.locator("#queue")).to_be_visible()
    if calls(name, "POST", "/api/v1/demo/user-tokens") != 1:
        problems.append(f"{name}: a double click on the sample sign-in minted {calls(name, 'POST', '/api/v1/demo/user-tokens')} users")
    expect(page.locator("#queue h2")).to_be_focused()
    page.click("#enter-queue")
    expect(page.locator("#status")).to_have_text("active", timeout=15_000)
    expect(page.locator("#enter-queue")).to_be_disabled()  # nothing to enter again
    # Not lost with the disabled button: it follows the booking to the dates.
    expect(page.locator("#dates h2")).to_be_focused()
    shot(page, f"{name}-1-admitted")
    page.locator("#date-list button").first.click()
    expect(page.locator("#date-list button").first).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#seats h2")).to_be_focused()
    expect(seat(page, SEAT)).to_have_attribute("data-status", "free")
    expect(seat(page, SEAT)).to_have_accessible_name(f"seat {SEAT}, free")
    # The seat stream ends with the token, so the standing's is closed: one
    # connection a tab, of the six a browser opens to one host.
    expect_streams(page, name, 1)
    shot(page, f"{name}-2-seat-map")


with sync_playwright() as playwright:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    phone = browser.new_context(viewport={"width": 375, "height": 667})
    phone.add_init_script(CLOCK_AHEAD)
    alice = watch(phone, "alice")
    bob = watch(browser.new_context(viewport={"width": 1200, "height": 900}), "bob")

    # A forged user token is refused at sign-in, not at the first booking step.
    bob.goto(BASE + "/")
    bob.fill("#user-token", forged_token("0b7c4a5e-6a1d-4c2e-9f3a-2d5b8e1f7c90"))
    bob.click("#token-form button")
    expect(bob.locator("#message")).to_contain_text("not accepted")
    expect(bob.locator("#message")).to_contain_text("(token_invalid)")
    expect(bob.locator("#sign-in")).to_be_visible()

    to_seat_map(alice, "alice")
    to_seat_map(bob, "bob")
    bob_dates = bob.locator("#date-list button").first
    expect(bob_dates).to_contain_text("50/50 free")
    # Bob's tab, hidden, gives its connection back; shown again, it reopens
    # its seat stream (live again: it shows Alice's hold below), though the
    # first try meets a 503 (a stream is tried again unless refused for good).
    set_visibility(bob, "hidden")
    expect_streams(bob, "bob", 0)
    stream_tries = []

    def first_stream_unavailable(route):
        stream_tries.append(route.request.url)
        if len(stream_tries) > 1:
            return route.continue_()
        route.fulfill(status=503, content_type="application/problem+json", body=json.dumps(
            {"type": "/problems/unavailable", "title": "Service unavailable", "status": 503,
             "detail": "busy", "code": "unavailable"}))

    bob.route(re.compile(r".*/seats/events\b.*"), first_stream_unavailable)
    set_visibility(bob, "visible")
    if not within_5_s(bob, lambda: len(stream_tries) == 2):
        problems.append(f"bob: the seat stream was tried {len(stream_tries)} times after a 503")
    bob.unroute(re.compile(r".*/seats/events\b.*"))
    expect_streams(bob, "bob", 1)
    expect(bob.locator("#message")).to_be_hidden()

    # Alice holds a seat: the page brings Pay into view, the countdown shows
    # the whole hold by the service's clock, and Bob's map shows it taken
    # without a reload. Her first try meets a 503, as a request cut short
    # would: the page sends it again with the same Idempotency-Key.
    hold_keys = []

    def first_hold_unavailable(route):
        hold_keys.append(route.request.headers.get("idempotency-key"))
        if len(hold_keys) > 1:
            return route.continue_()
        problem = {"type": "/problems/unavailable", "title": "Service unavailable",
                   "status": 503, "detail": "busy", "code": "unavailable"}
        route.fulfill(status=503, content_type="application/problem+json", body=json.dumps(problem))

    alice.route(BASE + "/api/v1/reservations", first_hold_unavailable)
    seat(alice, SEAT).click()
    expect(alice.locator("#hold")).to_be_visible()
    alice.unroute(BASE + "/api/v1/reservations")
    if len(hold_keys) != 2 or not hold_keys[0] or hold_keys[0] != hold_keys[1]:
        problems.append(f"a hold sent again after a 503 carried the keys {hold_keys}")
    expect(alice.locator("#hold h2")).to_be_focused()
    expect(alice.locator("#pay")).to_be_in_viewport()
    expect(alice.locator("#countdown")).to_have_text(FULL_HOLD)
    expect(seat(alice, SEAT)).to_have_accessible_name(f"seat {SEAT}, yours")
    bob_seat = seat(bob, SEAT)
    expect(bob_seat).to_have_attribute("data-status", "held", timeout=5_000)
    expect(bob_seat).to_be_disabled()
    expect(bob_seat).to_have_accessible_name(f"seat {SEAT}, held")
    # Free, held, sold and yours are told apart without their colours
    # (WCAG 1.4.1: sold and free were 1.2:1 in greyscale, yours and sold
    # looked free to a colour-blind user), each as the legend shows it.
    looks = {"free": look_without_colour(seat(bob, SEAT + 1)), "held": look_without_colour(bob_seat),
             "yours": look_without_colour(seat(alice, SEAT))}
    expect(bob_dates).to_contain_text("49/50 free")
    shot(alice, "alice-3-held")
    shot(bob, "bob-3-sees-held")

    # A reload in the middle of the hold: still signed in, back at Pay with
    # the time left, the seat shown as hers (and the one-hold rule kept).
    alice.reload()
    expect(alice.locator("#hold")).to_be_visible()
    expect(alice.locator("#sign-in")).to_be_hidden()
    expect(alice.locator("#hold h2")).to_be_focused()
    expect(alice.locator("#countdown")).to_have_text(FULL_HOLD)
    expect(seat(alice, SEAT)).to_have_accessible_name(f"seat {SEAT}, yours")
    expect_streams(alice, "alice", 1)
    shot(alice, "alice-3-reloaded")

    # A reload whose read of the hold gets no answer (the connection reset)
    # keeps the hold: shown as saved, and still there at the next reload.
    hold_reads = []

    def first_hold_read_lost(route):
        hold_reads.append(route.request.url)
        if len(hold_reads) > 1:
            return route.continue_()
        route.abort("connectionreset")

    one_reservation = re.compile(r".*/api/v1/reservations/[0-9a-f-]{36}$")
    alice.route(one_reservation, first_hold_read_lost)
    alice.reload()
    expect(alice.locator("#hold")).to_be_visible()
    expect(seat(alice, SEAT)).to_have_accessible_name(f"seat {SEAT}, yours")
    alice.reload()
    expect(alice.locator("#hold")).to_be_visible()
    expect(seat(alice, SEAT)).to_have_accessible_name(f"seat {SEAT}, yours")
    alice.unroute(one_reservation)
    if len(hold_reads) != 2:
        problems.append(f"alice: the hold was read {len(hold_reads)} times over two reloads")

    # Refusals on a phone show where Alice is, far below the top of the page.
    seat(alice, SEAT + 1).click()
    expect_message(alice, f"You hold seat {SEAT} already")
    alice.click("#pay")
    expect_message(alice, "balance is too low")
    if alice.evaluate("scrollY") < 200:
        problems.append("alice: the page is not scrolled down to Pay; the viewport checks prove little")
    shot(alice, "alice-4-refused", full_page=False)  # what the phone shows
    alice.fill("#amount", "-5")  # stopped by the browser's own validation
    alice.click("#charge-form button")
    expect_message(alice, "Enter an amount in won")
    alice.locator("#message").evaluate("message => message.textContent = ''")
    alice.fill("#amount", "")
    alice.click("#charge-form button")
    expect_message(alice, "Enter an amount in won (1 to 1,000,000,000)")
    # Two sends of her one hold (the 503, then its retry), and no third.
    if calls("alice", "POST", "/api/v1/reservations") != 2 or alice.evaluate("state.reservation.seat_no") != SEAT:
        problems.append("alice: a second seat was held while the first still was")

    # Alice's user token goes bad: the sign-in comes back, and signing in
    # again with a good token keeps her hold.
    user_token = alice.evaluate("state.userToken")
    alice.evaluate(f"state.userToken = {json.dumps(forged_token(alice.evaluate('state.userId')))}")
    alice.fill("#amount", "150000")
    alice.click("#charge-form button")
    expect(alice.locator("#sign-in")).to_be_visible()
    expect_message(alice, "sign in again")
    shot(alice, "alice-5-sign-in-again")
    # Pasted as the service's log shows it, with the header's scheme.
    alice.fill("#user-token", f"Bearer {user_token}")
    alice.click("#token-form button")
    expect(alice.locator("#sign-in")).to_be_hidden()
    expect(alice.locator("#hold")).to_be_visible()
    if calls("alice", "POST", f"/api/v1/users/{alice.evaluate('state.userId')}/balance/charges") != 1:
        problems.append("alice: an empty or refused amount was sent")

    # Alice's page, as if opened over plain HTTP from another address (no
    # crypto.randomUUID outside a secure context), still builds version-4
    # keys for the charge and the payment below.
    alice.evaluate('Object.defineProperty(crypto, "randomUUID", { value: undefined })')
    key = alice.evaluate("idempotencyKey()")
    if not re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", key):
        problems.append(f"alice: an Idempotency-Key without crypto.randomUUID is {key!r}")

    # Alice charges her wallet and pays, each with a double click: one
    # charge, one payment, and no refusal after it. Bob sees the seat sold.
    # The charge's first answer is lost on the way back (the connection
    # reset after the service charged): the page sends it again with the
    # same Idempotency-Key, and is answered without a second charge.
    user_id = alice.evaluate("state.userId")
    charges = f"{BASE}/api/v1/users/{user_id}/balance/charges"
    charge_keys = []

    def first_charge_answer_lost(route):
        charge_keys.append(route.request.headers.get("idempotency-key"))
        if len(charge_keys) > 1:
            return route.continue_()
        route.fetch()
        route.abort("connectionreset")

    alice.route(charges, first_charge_answer_lost)
    alice.dblclick("#charge-form button")
    expect_message(alice, "Charged")
    alice.unroute(charges)
    expect(alice.locator("#charge-form button")).to_be_enabled()
    balance = alice.request.get(
        f"{BASE}/api/v1/users/{user_id}/balance", headers={"Authorization": f"Bearer {user_token}"}
    ).json()["balance"]
    if balance != 150_000 or calls("alice", "POST", f"/api/v1/users/{user_id}/balance/charges") != 3:
        problems.append(f"alice: a double click on Charge left a balance of {balance}")
    if len(charge_keys) != 2 or not charge_keys[0] or charge_keys[0] != charge_keys[1]:
        problems.append(f"alice: a charge whose answer was lost was sent again with the keys {charge_keys}")
    # A charge refused for the balance's limit (stubbed: reaching 10^12 won
    # takes a thousand charges) says so, and the balance is read again.
    refused = {"type": "/problems/validation-failed", "title": "Validation failed", "status": 422,
               "code": "validation_failed",
               "detail": "a balance of 150000 plus 150000 would pass the limit of 1000000000000"}
    alice.route(f"{BASE}/api/v1/users/{user_id}/balance/charges",
                lambda route: route.fulfill(status=422, content_type="application/problem+json",
                                            body=json.dumps(refused)))
    reads = calls("alice", "GET", f"/api/v1/users/{user_id}/balance")
    alice.click("#charge-form button")
    expect_message(alice, "would pass the limit of 1000000000000")
    alice.unroute(f"{BASE}/api/v1/users/{user_id}/balance/charges")
    if not within_5_s(alice, lambda: calls("alice", "GET", f"/api/v1/users/{user_id}/balance") == reads + 1):
        problems.append("alice: the balance was not read again after a refused charge")
    alice.dblclick("#pay")
    expect(alice.locator("#result")).to_be_visible()
    expect(alice.locator("#result-text")).to_contain_text(re.compile(rf"Seat {SEAT} on .+ is yours"))
    expect(alice.locator("#message")).to_have_text("Payment complete.")
    if calls("alice", "POST", "/api/v1/payments") != 2:  # the 402 above, then this one
        problems.append("alice: a double click on Pay sent the payment twice")
    expect(bob_seat).to_have_attribute("data-status", "sold", timeout=5_000)
    looks["sold"] = look_without_colour(bob_seat)
    if len(set(looks.values())) != 4:
        problems.append(f"seat states told apart by colour alone: {looks}")
    for status, letter in [("free", "F"), ("held", "H"), ("sold", "S"), ("mine", "Y")]:
        legend = look_without_colour(bob.locator(".legend .seat", has_text=letter))
        if legend != looks["yours" if status == "mine" else status]:
            problems.append(f"the legend's {status} seat looks {legend}, its seats {looks}")
    # Her token is spent: her map stops, her seat sold and hers, nothing to click.
    expect(seat(alice, SEAT)).to_have_attribute("data-status", "sold")
    expect(seat(alice, SEAT)).to_have_accessible_name(f"seat {SEAT}, yours")
    expect(seat(alice, SEAT + 1)).to_be_disabled()
    # The stopped map says so, and its free seats stay readable (they were
    # faded to 2.4:1).
    expect(alice.locator("#seats-frozen")).to_be_visible()
    if (ratio := text_contrast(seat(alice, SEAT + 1))) < 4.5:
        problems.append(f"alice: a free seat of the stopped map is drawn at {ratio:.1f}:1 contrast")
    expect(alice.locator("#enter-queue")).to_be_enabled()
    expect_streams(alice, "alice", 0)
    shot(alice, "alice-6-paid")
    shot(bob, "bob-6-sees-sold")
    # Bob's token is spent elsewhere (his other device pays with it): his
    # seat stream ends, and the page asks where the token stands instead of
    # opening the stream again to be refused with a 401.
    refused_streams = []
    bob.on("response", lambda response: "/seats/events" in response.url and response.status == 401
           and refused_streams.append(response.url))
    user_id, user_token, queue_token, date_id = bob.evaluate(
        "[state.userId, state.userToken, state.queueToken, state.date.date_id]")
    queue = {"Authorization": f"Bearer {queue_token}"}
    free = bob.request.get(f"{BASE}/api/v1/concerts/{bob.evaluate('state.concertId')}/dates/{date_id}/seats",
                           headers=queue).json()["seats"][0]
    held = bob.request.post(f"{BASE}/api/v1/reservations", headers=queue, data={"seat_id": free["seat_id"]}).json()
    bob.request.post(f"{BASE}/api/v1/users/{user_id}/balance/charges",
                     headers={"Authorization": f"Bearer {user_token}"}, data={"amount": free["price"]})
    paid = bob.request.post(f"{BASE}/api/v1/payments", headers=queue, data={"reservation_id": held["reservation_id"]})
    if paid.status != 201:
        problems.append(f"bob: his other device's payment was answered {paid.status}")
    expect_message(bob, "Your queue token has ended")
    expect_streams(bob, "bob", 0)
    if refused_streams:
        problems.append(f"bob: a seat stream was opened with his spent token: {len(refused_streams)} refused")
    # A reload after paying still shows what she bought, and she is back at
    # the queue (her token is spent).
    alice.reload()
    expect(alice.locator("#result-text")).to_contain_text(re.compile(rf"Seat {SEAT} on .+ is yours"))
    expect(alice.locator("#sign-out")).to_be_visible()
    expect(alice.locator("#enter-queue")).to_be_enabled()
    # Signing out forgets her tokens in this tab: a reload starts at the sign-in.
    alice.click("#sign-out")
    expect(alice.locator("#sign-in")).to_be_visible()
    if alice.evaluate("sessionStorage.length") != 0:
        problems.append("alice: signing out left her session in storage")
    alice.reload()
    expect(alice.locator("#sign-in")).to_be_visible()
    expect(alice.locator("#sign-out")).to_be_hidden()

    # Bob's user token goes bad and Carol signs in on his tab: the page starts
    # afresh as her (a reload), so nothing of Bob's (his queue place, his map,
    # a request still in flight) lands on her screen.
    carol_id = "5d0c8f3e-2b7a-4c1e-8f6d-9a3b2c1d0e4f"
    carol_token = bob.request.post(
        f"{BASE}/api/v1/users/{carol_id}/tokens",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, data={},
    ).json()["token"]
    bob.evaluate("askToSignInAgain()")  # as a refused user token does (Alice's above)
    expect(bob.locator("#sign-in")).to_be_visible()
    bob.evaluate("window.beforeCarol = true")
    bob.fill("#user-token", carol_token)
    bob.click("#token-form button")
    expect(bob.locator("#who")).to_have_text(f"user {carol_id[:8]}")
    expect(bob.locator("#queue")).to_be_visible()
    if bob.evaluate("window.beforeCarol === true"):
        problems.append("bob: another user signed in on the same page instead of a fresh one")
    if bob.evaluate("[state.userId, state.queueToken, state.reservation]") != [carol_id, None, None]:
        problems.append("bob: Carol's page kept Bob's queue place or hold")
    expect(bob.locator("#standing")).to_be_hidden()
    expect(bob.locator("#seats")).to_be_hidden()
    expect_streams(bob, "bob", 0)
    shot(bob, "carol-signed-in-on-bobs-tab")

    # The auditors' page: an admin-specific refusal, the feed, one stream's
    # history, the audit.
    bob.goto(BASE + "/audit")
    for wrong in ["", "wrong"]:
        bob.fill("#admin-token", wrong)
        bob.click("#admin-form button")
        expect(bob.locator("#message")).to_have_text("The admin token is missing or wrong. (token_invalid)")
    bob.fill("#admin-token", ADMIN_TOKEN)
    bob.click("#admin-form button")
    expect(bob.locator("#events tr").first).to_be_visible()
    # One page of events here: no page before the first, none newer yet, and
    # the newest page is this one. Times are the log's, in UTC.
    expect(bob.locator("#previous-page")).to_be_disabled()
    first_range = bob.locator("#page-range").inner_text()
    bob.click("#next-page")
    expect(bob.locator("#message")).to_have_text("No newer events yet.")
    bob.click("#newest-page")
    expect(bob.locator("#page-range")).to_have_text(first_range)
    # Straight to a position, and to a stream named by hand.
    bob.fill("#goto-position", "2")
    bob.click("#goto-form button")
    expect(bob.locator("#page-range")).to_contain_text("events 2–")
    named = bob.locator("#events a").first.get_attribute("title")
    bob.fill("#stream-ref", named)
    bob.click("#stream-form button")
    expect(bob.locator("#stream-name")).to_have_text(named)
    # An unknown stream is not found, and the one shown before goes (it
    # stayed under the message, read as the answer).
    bob.fill("#stream-ref", "Seat/00000000-0000-4000-8000-000000000000")
    bob.click("#stream-form button")
    expect_message(bob, "Not found")
    expect(bob.locator("#stream")).to_be_hidden()
    bob.fill("#stream-ref", "Wallet")
    bob.click("#stream-form button")
    expect_message(bob, "Name a stream as TYPE/ID")
    # Not the parser's sentence ("UUID parsing failed").
    bob.fill("#stream-ref", "Nope/123")
    bob.click("#stream-form button")
    expect_message(bob, '"Nope/123" is not a stream: name one as TYPE/ID, the ID a UUID')
    # "Previous page" pressed from the keyboard back to page 1 is disabled
    # there: the focus goes on to "Next page", not down to the page.
    bob.focus("#previous-page")
    bob.keyboard.press("Enter")
    expect(bob.locator("#page-range")).to_contain_text("events 1–")
    expect(bob.locator("#previous-page")).to_be_disabled()
    expect(bob.locator("#next-page")).to_be_focused()
    bob.click("#first-page")
    expect(bob.locator("#events tr").first.locator("td").nth(5)).to_have_text(
        re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$"))
    # A hole at a page's start is marked as one between two of its events
    # is: position 1 gone (stubbed: the store here is intact).
    def first_event_gone(route):
        answer = route.fetch().json()
        answer["events"] = answer["events"][1:]
        route.fulfill(json=answer)

    bob.route(re.compile(r".*/audit/events\?after=0&.*"), first_event_gone)
    bob.click("#first-page")
    expect(bob.locator("#events tr.flagged")).to_have_text("position 1 is missing from the log")
    bob.unroute(re.compile(r".*/audit/events\?after=0&.*"))
    bob.click("#first-page")
    expect(bob.locator("#events tr.flagged")).to_have_count(0)
    bob.locator("#events a", has_text="QueueTicket").first.click()  # entered, admitted, expired
    expect(bob.locator("#stream-events tr")).to_have_count(3)
    expect(bob.locator("#stream h2")).to_be_focused()  # the focus follows the link
    # A refused audit's message goes with the next audit's answer.
    bob.fill("#checkpoint", "garbage")
    bob.click("#run-audit")
    expect_message(bob, "a checkpoint is POSITION:DIGEST")
    bob.fill("#checkpoint", "")
    bob.click("#run-audit")
    expect(bob.locator("#message")).to_be_hidden()
    expect(bob.locator("#audit-summary")).to_contain_text("All rules hold")
    expect(bob.locator("#stream-events tr.flagged")).to_have_count(0)
    expect(bob.locator("#audit-checkpoint")).to_contain_text("Checkpoint: ")
    # The settings no event states, as the serve recorded them.
    expect(bob.locator("#audit-held-to")).to_contain_text("CONCERT_QUEUE_ACTIVE_MAX=")
    expect(bob.locator("#audit-held-to")).to_contain_text("CONCERT_HOLD_TTL_SECS=")
    shot(bob, "audit")
    # The checkpoint it gave, recomputed apart from the service from the
    # audit API's events (scripts/checkpoint.py), then given back: the log
    # up to it is unchanged.
    taken = bob.locator("#audit-checkpoint").inner_text().split()[1].rstrip(".")
    position = taken.split(":")[0]
    logged = bob.request.get(
        f"{BASE}/api/v1/audit/events?limit=1000",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    ).json()["events"]
    upto = [event for event in logged if event["position"] <= int(position)]
    recomputed = recompute_checkpoint(upto)
    if recomputed != taken:
        problems.append(f"checkpoint {taken} recomputed as {recomputed}")
    bob.fill("#checkpoint", taken)
    bob.click("#run-audit")
    expect(bob.locator("#audit-summary")).to_contain_text(
        f"the log up to position {position} is the one checkpointed"
    )
    bob.fill("#checkpoint", "")

    # A report (stubbed: the store here is intact) that names the stream's
    # second event: the violation links to the stream, which marks that row.
    named = bob.evaluate("audit.stream.events[1]")
    stream = f"{named['aggregate_type']}/{named['aggregate_id']}"
    label = f"#{named['position']} {stream} seq {named['sequence']} {named['event_type']}"
    violation = {"rule": "hash chain intact", "detail": "edited", "events": [label]}
    def slow_report(route):
        time.sleep(0.3)  # answered after a double click's second press
        route.fulfill(json={"events": 99, "violations": [violation]})

    bob.route(BASE + "/api/v1/audit/report", slow_report)
    reports = calls("bob", "GET", "/api/v1/audit/report")
    bob.dblclick("#run-audit")  # one audit: the button waits for its report
    expect(bob.locator("#audit-summary")).to_contain_text("1 violation")
    bob.wait_for_timeout(500)
    if calls("bob", "GET", "/api/v1/audit/report") != reports + 1:
        problems.append(f"a double click on Run the audit asked {calls('bob', 'GET', '/api/v1/audit/report') - reports} times")
    expect(bob.locator("#stream-events tr.flagged")).to_have_count(1)
    expect(bob.locator("#stream-events tr").nth(1)).to_contain_text("violates: hash chain intact")
    bob.locator("#events a").first.click()  # another stream
    expect(bob.locator("#stream-name")).not_to_have_text(stream)
    bob.locator("#violations a").click()
    expect(bob.locator("#stream-name")).to_have_text(stream)
    expect(bob.locator("#stream-events tr.flagged")).to_have_count(1)
    shot(bob, "audit-violation")

    # A waiting place's estimate counts down between the standing's updates,
    # which come when the position changes (or the estimate drifts from the
    # countdown).
    dave = watch(browser.new_context(), "dave")
    dave.goto(BASE + "/")
    dave.evaluate("showStanding({status: 'waiting', position: 3, estimated_wait_seconds: 61, expires_at: null})")
    expect(dave.locator("#wait")).to_have_text("about 2 min")
    expect(dave.locator("#wait")).to_have_text("under a minute", timeout=5_000)

    # Browsers ask for /favicon.ico whatever a page links to.
    icon = bob.request.get(BASE + "/favicon.ico")
    if not icon.ok or icon.headers["content-type"] != "image/svg+xml":
        problems.append(f"/favicon.ico answered {icon.status} {icon.headers.get('content-type')}")

    browser.close()

if problems:
    sys.exit("browser test failed:\n" + "\n".join(problems))
print(f"browser test passed; screenshots in {SHOTS}")
