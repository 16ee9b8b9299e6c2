"""schemathesis hooks for concert: the right bearer token for each operation.

Admin and audit operations get CONCERT_ADMIN_TOKEN. Operations that need a
queue token get a live one, so schemathesis reaches past the 401/403 answers
into the handlers: a fresh user enters the queue of the concert in the path, or,
for holds and payments (whose concert is in the seat), of the concert the last
token was issued for, which is the one a stateful walk (dates → seats → hold →
pay) is on. A token is reused for a few seconds per concert; a 401 (a token spent by
a payment) fetches a new one.
"""

import json
import os
import time
import urllib.error
import urllib.request
import uuid

import schemathesis

BASE_URL = os.environ["CONCERT_URL"].rstrip("/")
ADMIN_TOKEN = os.environ["CONCERT_ADMIN_TOKEN"]


def _call(method, path, body=None, token=None):
    request = urllib.request.Request(
        BASE_URL + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    if token is not None:
        request.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


# The last concert a token was issued for, for the operations without one in their path.
_last_concert = {"id": None}


def _concert_of(case):
    concert_id = (case.path_parameters or {}).get("concert_id")
    if concert_id is not None:
        return str(concert_id)
    return _last_concert["id"] or _newest_concert()


def _newest_concert():
    concerts = _call("GET", "/api/v1/concerts")["concerts"]
    return concerts[0]["concert_id"] if concerts else None


def _set_bearer(case, token):
    case.headers = case.headers or {}
    case.headers["Authorization"] = f"Bearer {token}"


@schemathesis.auth(refresh_interval=None).apply_to(path_regex="^/api/v1/(audit/|concerts$)")
class AdminToken:
    def get(self, case, context):
        return ADMIN_TOKEN

    def set(self, case, data, context):
        _set_bearer(case, data)


@schemathesis.auth(refresh_interval=5, cache_by_key=lambda case, context: str(_concert_of(case))).apply_to(
    path_regex="^/api/v1/(queue/tokens/current|concerts/[^/]+/dates|reservations|payments)"
)
class ActiveQueueToken:
    def get(self, case, context):
        concert_id = _concert_of(case)
        try:
            ticket = _call(
                "POST",
                "/api/v1/queue/tokens",
                {"user_id": str(uuid.uuid4()), "concert_id": concert_id},
            )
        except urllib.error.HTTPError:
            # No such concert (a fuzzed id): the request goes out with a token that is refused.
            return "no-such-concert"
        _last_concert["id"] = concert_id
        deadline = time.monotonic() + 10
        while ticket["status"] != "active" and time.monotonic() < deadline:
            time.sleep(0.05)
            ticket = _call("GET", "/api/v1/queue/tokens/current", token=ticket["token"])
        return ticket["token"]

    def set(self, case, data, context):
        _set_bearer(case, data)
