import asyncio, aiohttp, datetime, time, uuid, random, json, statistics, sys, re
from common import *
OUT = "/tmp/soak2/out/"
STEPS = [int(x) for x in sys.argv[1].split(",")] if len(sys.argv) > 1 else [200, 1000, 2000, 3000, 4500, 6000, 8000]
concerts = []  # (cid, [date ids future])
stats = Stats()
probef = open(OUT + "probes.jsonl", "a")
createf = open(OUT + "create.jsonl", "a")
def rec(**kw):
    kw["t"] = time.time(); probef.write(json.dumps(kw) + "\n"); probef.flush()
import subprocess
DBQ = "select (select coalesce(max(position),0) from events), (select count(*) from concerts), (select count(*) from concert_dates), (select count(*) from seats), (select count(*) from queue_tickets), (select count(*) from idempotency_keys), (select count(*) from events)"
async def log_position(s):
    out = subprocess.run(["/tmp/soak2/psql.sh", "-At", "-F", " ", "-c", DBQ], capture_output=True, text=True).stdout.split()
    return [int(x) for x in out]
def mkdates(i):
    n = now(); d = []
    k = random.randint(2, 5)
    for j in range(k):
        r = random.random()
        if r < 0.25: st = n - datetime.timedelta(days=random.randint(1, 300), minutes=random.randint(0,1000))
        elif r < 0.5: st = n + datetime.timedelta(minutes=random.randint(3, 60), seconds=random.randint(0,59))
        else: st = n + datetime.timedelta(days=random.randint(1, 400), minutes=random.randint(0,1000))
        d.append({"starts_at": iso(st), "seats": random.randint(20, 80), "price": random.randint(1, 50) * 1000})
    return d
async def creator(s, q, lat):
    while True:
        try: i = q.get_nowait()
        except asyncio.QueueEmpty: return
        st, j, dt = await create_concert(s, f"soak concert {i}", mkdates(i), stats)
        if st == 201:
            concerts.append(j["concert_id"]); lat.append(dt)
            cf.write(j["concert_id"] + "\n"); cf.flush()
        else: print("create failed", st, j, flush=True)
async def timed(name, n, fn, **extra):
    ds = []; codes = {}; size = 0
    for _ in range(n):
        st, j, dt, sz = await fn()
        codes[st] = codes.get(st, 0) + 1; ds.append(dt * 1000); size = sz
    ds.sort()
    rec(probe=name, n_concerts=len(concerts), med=statistics.median(ds), p90=ds[int(len(ds)*0.9)-1 if len(ds)>1 else 0], mn=ds[0], codes=codes, size=size, **extra)
    return ds
async def active_token(s, uh, cid):
    st, q, _ = await enter(s, uh, cid, stats)
    if st not in (200, 201): print("enter failed", st, q); return None
    return await wait_active(s, q["token"], stats=stats)
async def probe_round(s, ctx):
    c = await log_position(s)
    pos = c[0]
    ex = {"pos": pos, "db_concerts": c[1], "db_dates": c[2], "db_seats": c[3], "db_tickets": c[4], "db_idem": c[5], "db_events": c[6]}
    await timed("list_concerts", 5, lambda: req(s, "GET", "/concerts"), **ex)
    # queue entry on newest concerts, new users
    async def enter_new():
        uh = await user_token(s, str(uuid.uuid4()))
        cid = random.choice(concerts[-50:])
        return await req(s, "POST", "/queue/tokens", uh, {"concert_id": cid})
    await timed("enter_new_concert", 10, enter_new, **ex)
    async def enter_c0():
        uh = await user_token(s, str(uuid.uuid4()))
        return await req(s, "POST", "/queue/tokens", uh, {"concert_id": ctx["c0"]})
    await timed("enter_c0", 10, enter_c0, **ex)
    # C0 listings
    h = await active_token(s, ctx["ph"], ctx["c0"])
    if h:
        await timed("dates_c0", 15, lambda: req(s, "GET", f"/concerts/{ctx['c0']}/dates", h), **ex)
        await timed("seats_c0_big", 15, lambda: req(s, "GET", f"/concerts/{ctx['c0']}/dates/{ctx['d0']}/seats", h), **ex)
        await timed("seats_c0_after4000", 15, lambda: req(s, "GET", f"/concerts/{ctx['c0']}/dates/{ctx['d0']}/seats?after_seat_no=4000&limit=100", h), **ex)
        await timed("current", 15, lambda: req(s, "GET", "/queue/tokens/current", h), **ex)
        # hold + pay (3 cycles)
        hl, pl = [], []
        for k in range(3):
            if k > 0: h = await active_token(s, ctx["ph"], ctx["c0"])
            if not h: break
            st, j, _, _ = await req(s, "GET", f"/concerts/{ctx['c0']}/dates/{ctx['d1']}/seats?limit=500", h)
            seat = random.choice(j["seats"])["seat_id"]
            st, r, dt, _ = await req(s, "POST", "/reservations", h, {"seat_id": seat}, stats, "probe_hold"); hl.append(dt*1000)
            if st != 201: print("hold", st, r); continue
            st, p, dt, _ = await req(s, "POST", "/payments", {**h, "Idempotency-Key": str(uuid.uuid4())}, {"reservation_id": r["reservation_id"]}, stats, "probe_pay"); pl.append(dt*1000)
            if st != 201: print("pay", st, p)
        if hl: rec(probe="hold_c0", n_concerts=len(concerts), med=statistics.median(hl), p90=max(hl), mn=min(hl), codes={}, size=0, **ex)
        if pl: rec(probe="pay_c0", n_concerts=len(concerts), med=statistics.median(pl), p90=max(pl), mn=min(pl), codes={}, size=0, **ex)
    # newest concert listings
    cid = concerts[-1]
    h2 = await active_token(s, await user_token(s, str(uuid.uuid4())), cid)
    if h2:
        st, j, _, _ = await req(s, "GET", f"/concerts/{cid}/dates", h2)
        await timed("dates_new", 15, lambda: req(s, "GET", f"/concerts/{cid}/dates", h2), **ex)
        if j and j["dates"]:
            did = j["dates"][0]["date_id"]
            await timed("seats_new", 15, lambda: req(s, "GET", f"/concerts/{cid}/dates/{did}/seats", h2), **ex)
    # wallet
    P = ctx["pid"]
    await timed("charge_newkey", 15, lambda: req(s, "POST", f"/users/{P}/balance/charges", {**ctx["ph"], "Idempotency-Key": str(uuid.uuid4())}, {"amount": 1000}), **ex)
    await timed("charge_repeatkey", 15, lambda: req(s, "POST", f"/users/{P}/balance/charges", {**ctx["ph"], "Idempotency-Key": ctx["firstkey"]}, {"amount": 1000}), **ex)
    await timed("balance", 15, lambda: req(s, "GET", f"/users/{P}/balance", ctx["ph"]), **ex)
    # audit
    await timed("audit_after0", 5, lambda: req(s, "GET", "/audit/events?after=0&limit=1000", ADMIN), **ex)
    await timed("audit_aftermid", 5, lambda: req(s, "GET", f"/audit/events?after={pos//2}&limit=1000", ADMIN), **ex)
    await timed("audit_afterlast", 5, lambda: req(s, "GET", f"/audit/events?after={max(0,pos-1000)}&limit=1000", ADMIN), **ex)
    await timed("audit_afterend", 5, lambda: req(s, "GET", f"/audit/events?after={pos}&limit=1000", ADMIN), **ex)
    await timed("audit_stream_wallet_P", 5, lambda: req(s, "GET", f"/audit/streams/Wallet/{P}", ADMIN), **ex)
    await timed("audit_stream_concert_c0", 5, lambda: req(s, "GET", f"/audit/streams/Concert/{ctx['c0']}", ADMIN), **ex)
    await timed("healthz", 15, lambda: req(s, "GET", "http://127.0.0.1:18383/healthz"), **ex)
async def main():
    global cf
    cf = open(OUT + "concerts.txt", "a")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as s:
        n = now()
        st, j, _ = await create_concert(s, "probe C0", [
            {"starts_at": iso(n + datetime.timedelta(days=60)), "seats": 5000, "price": 1000},
            {"starts_at": iso(n + datetime.timedelta(days=61)), "seats": 5000, "price": 1000},
            {"starts_at": iso(n - datetime.timedelta(days=1)), "seats": 100, "price": 1000}])
        ctx = {"c0": j["concert_id"], "d0": j["dates"][0]["date_id"], "d1": j["dates"][1]["date_id"]}
        json.dump(ctx, open(OUT + "ctx.json", "w"))
        ctx["pid"] = str(uuid.uuid4()); ctx["ph"] = await user_token(s, ctx["pid"]); ctx["firstkey"] = str(uuid.uuid4())
        st, j, _, _ = await req(s, "POST", f"/users/{ctx['pid']}/balance/charges", {**ctx["ph"], "Idempotency-Key": ctx["firstkey"]}, {"amount": 1000})
        await req(s, "POST", f"/users/{ctx['pid']}/balance/charges", ctx["ph"], {"amount": 100000000})
        print("charged", st, j, flush=True)
        json.dump({k: v for k, v in ctx.items()}, open(OUT + "ctx.json", "w"))
        concerts.append(ctx["c0"])
        await probe_round(s, ctx)
        for target in STEPS:
            q = asyncio.Queue()
            for i in range(len(concerts), target): q.put_nowait(i)
            lat = []; t0 = time.time()
            await asyncio.gather(*[creator(s, q, lat) for _ in range(6)])
            lat.sort()
            createf.write(json.dumps({"t": time.time(), "n_concerts": len(concerts), "created": len(lat), "secs": time.time()-t0,
                "med_ms": 1000*statistics.median(lat) if lat else None, "p90_ms": 1000*lat[int(len(lat)*0.9)] if lat else None,
                "last200_med_ms": 1000*statistics.median(lat[-200:]) if lat else None}) + "\n"); createf.flush()
            print("created up to", len(concerts), time.time()-t0, flush=True)
            await probe_round(s, ctx)
            print("probe done", len(concerts), stats.codes, flush=True)
        # keep probing without growth
        while True:
            await asyncio.sleep(20)
            await probe_round(s, ctx)
            print("probe done (no growth)", len(concerts), {k:v for k,v in stats.codes.items() if k[1]>=500}, flush=True)
asyncio.run(main())
