import aiohttp, asyncio, json, time, uuid, random, datetime
BASE = "http://127.0.0.1:18383/api/v1"
ADMIN = {"Authorization": "Bearer soak"}
def now(): return datetime.datetime.now(datetime.timezone.utc)
def iso(dt): return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
class Stats:
    def __init__(self): self.codes = {}
    def add(self, name, code):
        k = (name, code); self.codes[k] = self.codes.get(k, 0) + 1
async def req(s, method, path, headers=None, body=None, stats=None, name=None):
    t = time.perf_counter()
    async with s.request(method, path if path.startswith("http") else BASE + path, headers=headers, json=body) as r:
        data = await r.read()
        dt = time.perf_counter() - t
        if stats is not None: stats.add(name or path, r.status)
        try: j = json.loads(data) if data else None
        except Exception: j = None
        return r.status, j, dt, len(data)
async def user_token(s, uid, stats=None):
    st, j, _, _ = await req(s, "POST", f"/users/{uid}/tokens", ADMIN, {"ttl_secs": 86400}, stats, "mint")
    assert st == 201, (st, j)
    return {"Authorization": "Bearer " + j["token"]}
async def create_concert(s, title, dates, stats=None):
    st, j, dt, _ = await req(s, "POST", "/concerts", ADMIN, {"title": title, "dates": dates}, stats, "create_concert")
    return st, j, dt
async def enter(s, uh, cid, stats=None):
    st, j, dt, _ = await req(s, "POST", "/queue/tokens", uh, {"concert_id": cid}, stats, "enter")
    return st, j, dt
async def wait_active(s, qt, timeout=30, stats=None):
    h = {"Authorization": "Bearer " + qt}
    t0 = time.time()
    while time.time() - t0 < timeout:
        st, j, _, _ = await req(s, "GET", "/queue/tokens/current", h, None, stats, "current")
        if st == 200 and j["status"] == "active": return h
        if st == 200 and j["status"] == "expired": return None
        await asyncio.sleep(0.2)
    return None
