import asyncio, aiohttp, datetime, time, uuid
from common import *
async def main():
    async with aiohttp.ClientSession() as s:
        n = now()
        st, j, dt = await create_concert(s, "t", [{"starts_at": iso(n - datetime.timedelta(days=1)), "seats": 50, "price": 1000},
            {"starts_at": iso(n + datetime.timedelta(minutes=3)), "seats": 50, "price": 1000},
            {"starts_at": iso(n + datetime.timedelta(days=30)), "seats": 50, "price": 1000}])
        print(st, dt, j and list(j.keys()))
        uid = str(uuid.uuid4()); uh = await user_token(s, uid)
        st, q, dt = await enter(s, uh, j["concert_id"]); print(st, q, dt)
        t=time.time(); h = await wait_active(s, q["token"]); print("active after", time.time()-t)
        print(await req(s, "GET", f"/concerts/{j['concert_id']}/dates", h))
asyncio.run(main())
