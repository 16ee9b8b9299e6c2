import asyncio, aiohttp, time, uuid, json, statistics, random
from common import *
OUT = "/tmp/soak2/out/"
ctx = json.load(open(OUT + "ctx.json"))
C0, D0 = ctx["c0"], ctx["d0"]
async def main():
    f = open(OUT + "reenter.jsonl", "a")
    async with aiohttp.ClientSession() as s:
        uid = str(uuid.uuid4()); uh = await user_token(s, uid)
        await req(s, "POST", f"/users/{uid}/balance/charges", uh, {"amount": 10**11})
        n = 0; lat = []; t_end = time.time() + 330
        seats = None
        while time.time() < t_end:
            st, q, dt = await enter(s, uh, C0); lat.append(dt*1000); n += 1
            h = await wait_active(s, q["token"])
            if not h: continue
            if not seats:
                st, j, _, _ = await req(s, "GET", f"/concerts/{C0}/dates/{D0}/seats?limit=5000", h)
                seats = [x["seat_id"] for x in j["seats"]]; random.shuffle(seats)
            st, r, _, _ = await req(s, "POST", "/reservations", h, {"seat_id": seats.pop()})
            if st != 201: continue
            st, p, _, _ = await req(s, "POST", "/payments", h, {"reservation_id": r["reservation_id"]})
            if n % 50 == 0:
                row = {"t": time.time(), "entries": n, "enter_med_last50": statistics.median(lat[-50:])}
                print(row, flush=True); f.write(json.dumps(row) + "\n"); f.flush()
asyncio.run(main())
