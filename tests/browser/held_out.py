"""A concert whose only seat someone else holds, in a real browser.

The dates list no date then (none has a free seat): the page says that no
date has a free seat right now, not that every date is sold out, and asks
for the dates again every few seconds, so the date shows once the hold runs
out (the page was left saying "sold out" until a reload). No request may
leave the machine and no script may fail.

    python held_out.py http://127.0.0.1:18396 <admin token> target/browser-screenshots
"""

import sys
import time

from playwright.sync_api import expect, sync_playwright

from harness import BASE, CHROMIUM, admitted_as_sample_user, calls, create_concert, problems, shot, watch


def holder_takes_the_seat(request, concert_id):
    """Another sample user queues, is admitted and holds the concert's only seat."""
    user = request.post(f"{BASE}/api/v1/demo/user-tokens").json()
    entered = request.post(
        f"{BASE}/api/v1/queue/tokens",
        headers={"Authorization": f"Bearer {user['token']}"},
        data={"concert_id": concert_id},
    ).json()
    queue = {"Authorization": f"Bearer {entered['token']}"}
    deadline = time.monotonic() + 15
    while request.get(f"{BASE}/api/v1/queue/tokens/current", headers=queue).json()["status"] != "active":
        if time.monotonic() > deadline:
            sys.exit("the holder was never admitted")
        time.sleep(0.2)
    date_id = request.get(f"{BASE}/api/v1/concerts/{concert_id}/dates", headers=queue).json()["dates"][0]["date_id"]
    seats = request.get(f"{BASE}/api/v1/concerts/{concert_id}/dates/{date_id}/seats", headers=queue).json()["seats"]
    held = request.post(f"{BASE}/api/v1/reservations", headers=queue, data={"seat_id": seats[0]["seat_id"]})
    if held.status != 201:
        sys.exit(f"the holder's hold was refused: {held.status} {held.text()}")


with sync_playwright() as playwright:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = watch(context, "held-out")
    concert_id = create_concert(page, "One seat", 1, 1_000, "2031-08-01T19:00:00Z")
    holder_takes_the_seat(page.request, concert_id)

    admitted_as_sample_user(page, concert_id)
    expect(page.locator("#message")).to_contain_text("No date has a free seat right now")
    expect(page.locator("#date-list button")).to_have_count(0)
    shot(page, "held-out-1-no-free-seat", full_page=False)

    dates = f"/api/v1/concerts/{concert_id}/dates"
    first = calls("held-out", "GET", dates)
    page.wait_for_timeout(11_000)
    if calls("held-out", "GET", dates) < first + 2:
        problems.append(f"the dates were asked for {calls('held-out', 'GET', dates) - first} more times in 11 s, not every 5 s")
    if "No date has a free seat" not in page.locator("#message").text_content():
        problems.append("the message that no date has a free seat went while none has one")
    browser.close()

if problems:
    sys.exit("held-out browser test failed:\n" + "\n".join(problems))
print("held-out browser test passed")
