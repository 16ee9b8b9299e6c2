"""What the browser tests share: the service's address and the screenshot
folder from the command line, a page that records what must not happen
(a request leaving the machine, a script or console error, a page asset
that fails) into `problems`, and small checks.

    python <test>.py http://127.0.0.1:18396 <admin token> target/browser-screenshots
"""

import base64
import json
import sys
from pathlib import Path

from playwright.sync_api import expect

BASE, ADMIN_TOKEN, SHOTS = sys.argv[1], sys.argv[2], Path(sys.argv[3])
CHROMIUM = "/usr/bin/chromium"
SHOTS.mkdir(parents=True, exist_ok=True)
problems = []
api_calls = []
streams = {}  # each page's event streams still open


def watch(context, name):
    """Refuses and records any request beyond the service; records script
    errors, console errors and failed page assets."""

    def leaves(url):
        return not url.startswith(BASE + "/")

    def refuse(route):
        problems.append(f"{name}: request left the machine: {route.request.url}")
        route.abort()

    def api(url):
        return url.startswith(BASE + "/api/")

    context.route(leaves, refuse)
    page = context.new_page()
    page.on("pageerror", lambda error: problems.append(f"{name}: script error: {error}"))
    # Chromium logs each refused API request (a 402 the test provokes) as a
    # console error; those are answers. Any other console error counts.
    page.on(
        "console",
        lambda message: message.type == "error"
        and not api(message.location.get("url", ""))
        and problems.append(f"{name}: console error: {message.text}"),
    )
    page.on(
        "response",
        lambda response: response.status >= 400
        and not api(response.url)
        and problems.append(f"{name}: {response.url} answered {response.status}"),
    )
    page.on(
        "request",
        lambda request: api(request.url)
        and api_calls.append((name, request.method, request.url.split("?")[0][len(BASE) :])),
    )
    open_streams = streams.setdefault(name, set())
    page.on("request", lambda request: request.url.split("?")[0].endswith("/events") and open_streams.add(request))
    page.on("requestfinished", lambda request: open_streams.discard(request))
    page.on("requestfailed", lambda request: open_streams.discard(request))
    return page


def create_concert(page, title, seats, price, starts_at):
    """A concert of one date, created with the admin token; its id."""
    created = page.request.post(
        f"{BASE}/api/v1/concerts",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        data={"title": title, "dates": [{"starts_at": starts_at, "seats": seats, "price": price}]},
    )
    if created.status != 201:
        sys.exit(f"{title}: the concert was not created: {created.status} {created.text()}")
    return created.json()["concert_id"]


def admitted_as_sample_user(page, concert_id):
    """Signs the page in as a new sample user who queues for `concert_id`
    and is admitted."""
    page.goto(BASE + "/")
    page.click("#sample-user")
    expect(page.locator("#queue")).to_be_visible()
    page.select_option("#concert", concert_id)
    page.click("#enter-queue")
    expect(page.locator("#status")).to_have_text("active", timeout=15_000)


def holding_a_seat(browser, name, concert_id, width=1200, height=900):
    """A new page, named `name` for the checks, of a new sample user who is
    admitted to `concert_id` and holds its first free seat."""
    page = watch(browser.new_context(viewport={"width": width, "height": height}), name)
    admitted_as_sample_user(page, concert_id)
    page.locator("#date-list button").first.click()
    page.locator("#seat-map .seat.free").first.click()
    expect(page.locator("#hold")).to_be_visible()
    return page


def calls(name, method, path):
    return sum(1 for call in api_calls if call == (name, method, path))


def shot(page, name, full_page=True):
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def forged_token(user_id):
    """A well-formed JWT for `user_id` that no key signed."""

    def part(value):
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    header = part({"alg": "RS256", "typ": "JWT", "kid": "forged"})
    return f"{header}.{part({'sub': user_id, 'exp': 4_102_444_800})}.c2lnbmF0dXJl"


def within_5_s(page, check):
    """Whether `check()` comes true within 5 s."""
    for _ in range(50):
        if check():
            return True
        page.wait_for_timeout(100)
    return False


def expect_streams(page, name, count):
    """`name`'s page has `count` event streams open (within 5 s)."""
    if not within_5_s(page, lambda: len(streams[name]) == count):
        problems.append(f"{name}: {len(streams[name])} event streams open, not {count}")


def set_visibility(page, visibility):
    """As if the tab were hidden or shown again (headless tabs never are)."""
    page.evaluate(
        """visibility => {
            Object.defineProperty(document, "visibilityState", { value: visibility, configurable: true });
            document.dispatchEvent(new Event("visibilitychange"));
        }""",
        visibility,
    )


def seat(page, number):
    return page.locator(f'#seat-map .seat[data-seat-no="{number}"]')


def expect_message(page, text):
    """The message says `text` and is on screen wherever the page is scrolled."""
    expect(page.locator("#message")).to_contain_text(text)
    expect(page.locator("#message")).to_be_in_viewport()


def text_contrast(locator):
    """The WCAG contrast ratio of an element's text on its own background,
    as drawn over the white page (its opacity blended in)."""
    return locator.evaluate(
        """element => {
            const style = getComputedStyle(element);
            const rgb = (value) => value.match(/[\\d.]+/g).slice(0, 3).map(Number);
            const opacity = Number(style.opacity);
            const drawn = (colour) => rgb(colour).map((part) => part * opacity + 255 * (1 - opacity));
            const luminance = (colour) => {
                const [r, g, b] = colour.map((part) => {
                    const c = part / 255;
                    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
                });
                return 0.2126 * r + 0.7152 * g + 0.0722 * b;
            };
            const [light, dark] = [drawn(style.color), drawn(style.backgroundColor)].map(luminance).sort((a, b) => b - a);
            return (light + 0.05) / (dark + 0.05);
        }"""
    )


def look_without_colour(locator):
    """What tells an element's state apart besides its colours: a pattern,
    a line through its text, a ring, its text's weight, its border."""
    return locator.evaluate(
        """element => {
            const style = getComputedStyle(element);
            return [style.backgroundImage !== "none", style.textDecorationLine, style.boxShadow !== "none",
                    style.fontWeight, style.borderStyle].join(" ");
        }"""
    )
