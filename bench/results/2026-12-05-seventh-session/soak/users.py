import asyncio, aiohttp, datetime, time, uuid, random, json, statistics, sys
from common import *
OUT = "/tmp/soak2/out/"
WORKERS = int(sys.argv[1]) if len(sys.argv) > 1 else 16
stats = Stats()
lat = {}  # name -> list ms (current minute window)
def note(name, dt, st):
    lat.setdefault(name, []).append(dt * 1000); stats.add(name, st)
def pool():
    try: return [l.strip() for l in open(OUT + "concerts.txt") if l.strip()]
    except FileNotFoundError: return []
P = []
users_done = 0
async def worker(s, wid):
    global users_done
    while True:
        try:
            if not P: await asyncio.sleep(1); continue
            uid = str(uuid.uuid4())
            t = time.perf_counter(); uh = await user_token(s, uid); note("mint", time.perf_counter() - t, 201)
            key = str(uuid.uuid4())
            st, j, dt, _ = await req(s, "POST", f"/users/{uid}/balance/charges", {**uh, "Idempotency-Key": key}, {"amount": 100000}); note("charge", dt, st)
            if random.random() < 0.2:
                st, j, dt, _ = await req(s, "POST", f"/users/{uid}/balance/charges", {**uh, "Idempotency-Key": key}, {"amount": 100000}); note("charge_repeat", dt, st)
            cid = random.choice(P)
            st, q, dt = await enter(s, uh, cid); note("enter", dt, st)
            users_done += 1
            if st not in (200, 201): continue
            if random.random() < 0.3: continue  # just leaves; token waits then expires
            h = await wait_active(s, q["token"], timeout=8)
            if not h: continue
            st, j, dt, _ = await req(s, "GET", f"/concerts/{cid}/dates", h); note("dates", dt, st)
            if st != 200 or not j["dates"]: continue
            d = random.choice(j["dates"])["date_id"]
            st, j, dt, _ = await req(s, "GET", f"/concerts/{cid}/dates/{d}/seats", h); note("seats", dt, st)
            if st != 200 or not j["seats"]: continue
            seat = random.choice(j["seats"])["seat_id"]
            st, r, dt, _ = await req(s, "POST", "/reservations", h, {"seat_id": seat}); note("hold", dt, st)
            if st != 201: continue
            if random.random() < 0.35:
                st, p, dt, _ = await req(s, "POST", "/payments", {**h, "Idempotency-Key": str(uuid.uuid4())}, {"reservation_id": r["reservation_id"]}); note("pay", dt, st)
        except Exception as e:
            stats.add("exception:" + type(e).__name__, 0); await asyncio.sleep(0.5)
async def whale(s):
    uid = str(uuid.uuid4()); uh = await user_token(s, uid)
    open(OUT + "whale.txt", "w").write(uid)
    await req(s, "POST", f"/users/{uid}/balance/charges", uh, {"amount": 900000000000})
    n = 0
    while True:
        try:
            if not P: await asyncio.sleep(1); continue
            cid = random.choice(P)
            st, q, dt = await enter(s, uh, cid)
            if st not in (200, 201): await asyncio.sleep(1); continue
            h = await wait_active(s, q["token"], timeout=8)
            if not h: continue
            st, j, dt, _ = await req(s, "GET", f"/concerts/{cid}/dates", h)
            if st != 200 or not j["dates"]: continue
            d = random.choice(j["dates"])["date_id"]
            st, j, dt, _ = await req(s, "GET", f"/concerts/{cid}/dates/{d}/seats", h)
            if st != 200 or not j["seats"]: continue
            st, r, dt, _ = await req(s, "POST", "/reservations", h, {"seat_id": random.choice(j["seats"])["seat_id"]}); note("whale_hold", dt, st)
            if st != 201: continue
            st, p, dt, _ = await req(s, "POST", "/payments", {**h, "Idempotency-Key": str(uuid.uuid4())}, {"reservation_id": r["reservation_id"]}); note("whale_pay", dt, st)
            if st == 201: n += 1
            # also a charge on the long wallet
            st, j, dt, _ = await req(s, "POST", f"/users/{uid}/balance/charges", {**uh, "Idempotency-Key": str(uuid.uuid4())}, {"amount": 1}); note("whale_charge", dt, st)
            st, j, dt, _ = await req(s, "GET", f"/users/{uid}/balance", uh); note("whale_balance", dt, st)
        except Exception as e:
            stats.add("exception:" + type(e).__name__, 0); await asyncio.sleep(0.5)
async def reporter():
    f = open(OUT + "bg.jsonl", "a")
    while True:
        await asyncio.sleep(60)
        global lat
        cur, lat = lat, {}
        P[:] = pool()
        row = {"t": time.time(), "users_done": users_done, "pool": len(P), "errors": {f"{k[0]}:{k[1]}": v for k, v in stats.codes.items() if k[1] >= 500 or k[1] == 0}}
        for k, v in cur.items():
            v.sort(); row[k] = {"n": len(v), "med": round(statistics.median(v), 2), "p90": round(v[int(len(v)*0.9)], 2)}
        f.write(json.dumps(row) + "\n"); f.flush()
async def main():
    P[:] = pool()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as s:
        await asyncio.gather(reporter(), whale(s), *[worker(s, i) for i in range(WORKERS)])
asyncio.run(main())
