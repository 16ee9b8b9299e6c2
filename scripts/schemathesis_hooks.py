"""schemathesis hooks for concert: the right bearer token for each operation.

Admin and audit operations, and minting a user token
(`POST /api/v1/users/{user_id}/tokens`), get CONCERT_ADMIN_TOKEN.

Operations that need a user token (entering the queue, a wallet's balance and
charges) get one minted with the admin token through
`POST /api/v1/users/{user_id}/tokens`: for the user in the path when there is
one (when that is not a valid UUID the service refuses the path with 400
before it looks at the token, so any token will do); for a queue entry whose
body still names a `user_id` (a UUID), for that user, so the entry is not
refused as another user's; otherwise for a fresh user.

Operations that need a queue token get a live one, so schemathesis reaches past
the 401/403 answers into the handlers: a fresh user signs in (a user token
minted as above) and enters the queue of the concert in the path, or, for holds
and payments (whose concert is in the seat), of the concert the last token was
issued for, which is the one a stateful walk (dates → seats → hold → pay) is on.
A queue token is reused for a few seconds per concert; a 401 (a token spent by
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
# Seconds a minted user token lives: longer than any run.
USER_TOKEN_TTL_SECS = 86400


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


def _mint_user_token(user_id):
    """A user token for `user_id` (a UUID), minted with the admin token."""
    minted = _call(
        "POST",
        f"/api/v1/users/{user_id}/tokens",
        {"ttl_secs": USER_TOKEN_TTL_SECS},
        token=ADMIN_TOKEN,
    )
    return minted["token"]


def _as_uuid(value):
    """`value` as a UUID string, or None when it is not one."""
    if value is None:
        return None
    try:
        return str(uuid.UUID(str(value)))
    except (ValueError, TypeError, AttributeError):
        return None


def _user_of(case):
    """The user the case acts for as a UUID string: the `user_id` of its path,
    else the `user_id` of its JSON body; None when neither is a UUID."""
    path_parameters = case.path_parameters or {}
    if "user_id" in path_parameters:
        return _as_uuid(path_parameters["user_id"])
    if isinstance(case.body, dict):
        return _as_uuid(case.body.get("user_id"))
    return None


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


@schemathesis.auth(refresh_interval=None).apply_to(
    path_regex="^/api/v1/(audit/|concerts$|users/[^/]+/tokens$)"
)
class AdminToken:
    def get(self, case, context):
        return ADMIN_TOKEN

    def set(self, case, data, context):
        _set_bearer(case, data)


# Not cached: each case gets a token minted for its own user (a fresh one when
# the case names none), which is one cheap request.
@schemathesis.auth(refresh_interval=None).apply_to(
    path_regex="^/api/v1/(queue/tokens$|users/[^/]+/balance)"
)
class UserToken:
    def get(self, case, context):
        user_id = _user_of(case) or str(uuid.uuid4())
        return _mint_user_token(user_id)

    def set(self, case, data, context):
        _set_bearer(case, data)


@schemathesis.auth(refresh_interval=5, cache_by_key=lambda case, context: str(_concert_of(case))).apply_to(
    path_regex="^/api/v1/(queue/tokens/current|concerts/[^/]+/dates|reservations|payments)"
)
class ActiveQueueToken:
    def get(self, case, context):
        concert_id = _concert_of(case)
        # A fresh user signs in, then enters the queue with their user token.
        user_token = _mint_user_token(str(uuid.uuid4()))
        try:
            ticket = _call(
                "POST",
                "/api/v1/queue/tokens",
                {"concert_id": concert_id},
                token=user_token,
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
