import asyncio, aiohttp, time, uuid, json, statistics, sys, datetime
from common import *
OUT = "/tmp/soak2/out/"
RATE = float(sys.argv[1])
async def main():
    f = open(OUT + "longqueue.jsonl", "a")
    async with aiohttp.ClientSession() as s:
        n = now()
        st, j, _ = await create_concert(s, "long queue H", [{"starts_at": iso(n + datetime.timedelta(days=90)), "seats": 50000, "price": 1000}])
        H = j["concert_id"]; open(OUT + "H.txt", "w").write(H)
        entered = 0; lat = []; last_tok = None; t_last = time.time()
        async def one():
            nonlocal entered, last_tok
            uh = await user_token(s, str(uuid.uuid4()))
            st, q, dt = await enter(s, uh, H)
            if st in (200, 201): entered += 1; lat.append(dt*1000); last_tok = q["token"]
            else: print("enter", st, q, flush=True)
        tasks = set()
        t0 = time.time()
        while True:
            target = int((time.time() - t0) * RATE)
            while entered + len(tasks) < target and len(tasks) < 32:
                t = asyncio.create_task(one()); tasks.add(t); t.add_done_callback(tasks.discard)
            await asyncio.sleep(0.02)
            if time.time() - t_last >= 60:
                t_last = time.time()
                cur = []
                if last_tok:
                    for _ in range(10):
                        st, q, dt, _ = await req(s, "GET", "/queue/tokens/current", {"Authorization": "Bearer " + last_tok}); cur.append(dt*1000)
                lat.sort()
                row = {"t": time.time(), "entered": entered, "enter_med": statistics.median(lat) if lat else None, "enter_p90": lat[int(len(lat)*0.9)] if lat else None, "current_med": statistics.median(cur) if cur else None, "last_position": q.get("position") if cur and q else None}
                print(row, flush=True); f.write(json.dumps(row) + "\n"); f.flush(); lat = []
asyncio.run(main())
