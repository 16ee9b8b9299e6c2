import http.client, json, threading, uuid, time, os, sys, collections
ADM = "adm"
_local = threading.local()

def conn(port):
    d = getattr(_local, 'c', None)
    if d is None:
        d = _local.c = {}
    c = d.get(port)
    if c is None:
        c = d[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    return c

def req(port, method, path, body=None, token=None, headers=None, fresh=False):
    h = {"content-type": "application/json"}
    if token: h["authorization"] = "Bearer " + token
    if headers: h.update(headers)
    data = json.dumps(body) if body is not None else None
    for attempt in range(2):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60) if fresh else conn(port)
        try:
            try:
                c.request(method, "/api/v1" + path if not path.startswith("/api") and not path.startswith("/healthz") else path, body=data, headers=h)
            except (BrokenPipeError, ConnectionResetError):
                # stale kept-alive connection: the request was not delivered; reopen and resend once
                c.close(); c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                if not fresh: _local.c[port] = c
                c.request(method, "/api/v1" + path if not path.startswith("/api") and not path.startswith("/healthz") else path, body=data, headers=h)
            r = c.getresponse()
            raw = r.read()
            if fresh: c.close()
            elif r.getheader("connection", "").lower() == "close":
                c.close(); _local.c.pop(port, None)
            try: js = json.loads(raw) if raw else None
            except Exception: js = raw.decode(errors="replace")
            return r.status, js
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
            try: c.close()
            except Exception: pass
            if not fresh: _local.c.pop(port, None)
            if attempt == 1: return -1, repr(e)
            # only retry on a stale keepalive connection for GETs
            if method != "GET": return -1, repr(e)
        except Exception as e:
            try: c.close()
            except Exception: pass
            if not fresh: _local.c.pop(port, None)
            return -1, repr(e)

def user_token(port, uid=None):
    uid = uid or str(uuid.uuid4())
    s, b = req(port, "POST", f"/users/{uid}/tokens", {"ttl_secs": 86400}, token=ADM)
    assert s == 201, (s, b)
    return uid, b["token"]

def create_concert(port, seats=50, ndates=1, price=1000, title="t"):
    s, b = req(port, "POST", "/concerts", {"title": title, "dates": [{"starts_at": "2027-12-24T19:00:00Z", "seats": seats, "price": price} for _ in range(ndates)]}, token=ADM)
    assert s == 201, (s, b)
    return b

def enter(port, utok, cid):
    return req(port, "POST", "/queue/tokens", {"concert_id": cid}, token=utok)

def current(port, qtok):
    return req(port, "GET", "/queue/tokens/current", token=qtok)

def wait_active(port, qtok, timeout=60):
    t0 = time.time()
    while time.time() - t0 < timeout:
        s, b = current(port, qtok)
        if s == 200 and b["status"] == "active": return b
        time.sleep(0.2)
    raise Exception("not active")

def all_events(port=20390):
    out = []; after = 0
    while True:
        s, b = req(port, "GET", f"/audit/events?after={after}&limit=1000", token=ADM)
        assert s == 200, (s, b)
        out += b["events"]
        if not b["events"]: break
        after = b["next"]
    return out

def run_threads(fns):
    res = [None]*len(fns)
    barrier = threading.Barrier(len(fns))
    def w(i, f):
        barrier.wait()
        res[i] = f()
    ts = [threading.Thread(target=w, args=(i, f)) for i, f in enumerate(fns)]
    for t in ts: t.start()
    for t in ts: t.join()
    return res

def money_check(port):
    """from the log: sum of Charged amounts == sum balances + sum paid; seats sold at most once"""
    ev = all_events(port)
    types = collections.Counter(e["event_type"] for e in ev)
    return ev, types
