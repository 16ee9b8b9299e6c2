import asyncio, aiohttp, datetime, time, uuid, random, json, statistics, sys, os, signal
from common import *
OUT = "/tmp/soak2/out/"
f = open(OUT + "maps.jsonl", "a")
ctx = json.load(open(OUT + "ctx.json"))
C0, D0, D1 = ctx["c0"], ctx["d0"], ctx["d1"]
def rss(): return int([l for l in open(f"/proc/{open('/tmp/soak2/server.pid').read().strip()}/status") if l.startswith("VmRSS")][0].split()[1])
async def active(s, cid, uh=None):
    uh = uh or await user_token(s, str(uuid.uuid4()))
    st, q, _ = await enter(s, uh, cid)
    return uh, await wait_active(s, q["token"])
async def probe(s, label):
    uid = str(uuid.uuid4()); uh, h = await active(s, C0, await user_token(s, uid))
    await req(s, "POST", f"/users/{uid}/balance/charges", uh, {"amount": 10**9})
    # a seat to hold, then repeated refused holds (409 from memory)
    st, j, _, _ = await req(s, "GET", f"/concerts/{C0}/dates/{D1}/seats?limit=2000", h)
    seats = [x["seat_id"] for x in j["seats"]]; random.shuffle(seats)
    st, r, _, _ = await req(s, "POST", "/reservations", h, {"seat_id": seats[0]})
    res = {}
    ds = []
    for _ in range(300):
        st, j, dt, _ = await req(s, "POST", "/reservations", h, {"seat_id": seats[0]}); ds.append(dt*1000)
    res["hold409"] = (statistics.median(ds), st)
    ds = []
    for i in range(1, 41):
        st, j, dt, _ = await req(s, "POST", "/reservations", h, {"seat_id": seats[i]}); ds.append(dt*1000)
    res["hold201"] = (statistics.median(ds), st)
    ds = []
    for _ in range(100):
        st, j, dt, _ = await req(s, "GET", f"/concerts/{C0}/dates/{D0}/seats?limit=100", h); ds.append(dt*1000)
    res["seats"] = (statistics.median(ds), st)
    ds = []
    for _ in range(100):
        st, j, dt, _ = await req(s, "GET", "http://127.0.0.1:18383/healthz"); ds.append(dt*1000)
    res["healthz"] = (statistics.median(ds), st)
    # pays: each needs a fresh active token
    ds = []
    for i in range(41, 56):
        uh2, h2 = await active(s, C0, uh)
        st, r, _, _ = await req(s, "POST", "/reservations", h2, {"seat_id": seats[i]})
        if st != 201: continue
        st, p, dt, _ = await req(s, "POST", "/payments", h2, {"reservation_id": r["reservation_id"]}); ds.append(dt*1000)
    res["pay"] = (statistics.median(ds) if ds else None, st)
    row = {"t": time.time(), "label": label, "rss_kb": rss(), **{k: v[0] for k, v in res.items()}, "codes": {k: v[1] for k, v in res.items()}}
    print(row, flush=True); f.write(json.dumps(row) + "\n"); f.flush()
async def main():
    mode = sys.argv[1]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as s:
        if mode == "create":
            n = now(); ids = []
            for c in range(int(sys.argv[2])):
                dates = [{"starts_at": iso(n + datetime.timedelta(days=10 + d, minutes=c)), "seats": 20, "price": 1000} for d in range(100)]
                st, j, dt = await create_concert(s, f"wide {c}", dates); assert st == 201, j
                ids.append(j["concert_id"])
            json.dump(ids, open(OUT + "wide.json", "w")); print("created", len(ids))
        elif mode == "probe":
            await probe(s, sys.argv[2])
        elif mode == "load":
            ids = json.load(open(OUT + "wide.json"))
            sem = asyncio.Semaphore(16); t0 = time.time(); lat = []
            async def one(cid):
                async with sem:
                    uh, h = await active(s, cid)
                    st, j, dt, _ = await req(s, "GET", f"/concerts/{cid}/dates", h); lat.append(dt*1000)
                    assert st == 200 and len(j["dates"]) == 100, (st, j and len(j.get("dates", [])))
            await asyncio.gather(*[one(c) for c in ids])
            lat.sort()
            row = {"t": time.time(), "label": "load", "concerts": len(ids), "secs": time.time()-t0, "dates_list_100_med": statistics.median(lat), "dates_list_100_max": lat[-1], "rss_kb": rss()}
            print(row, flush=True); f.write(json.dumps(row) + "\n"); f.flush()
asyncio.run(main())
