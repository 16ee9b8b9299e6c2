import asyncio, aiohttp, json, datetime, sys
sys.path.insert(0, __import__("os").path.join(__import__("os").path.dirname(__file__), "..", "soak"))
from common import *
async def main():
    async with aiohttp.ClientSession() as s:
        n = now()
        dates = [{"starts_at": iso(n + datetime.timedelta(days=5 + d)), "seats": 2000, "price": 1000} for d in range(2)]
        st, j, _ = await create_concert(s, "C0", dates); assert st == 201, j
        json.dump({"c0": j["concert_id"], "d0": j["dates"][0]["date_id"], "d1": j["dates"][1]["date_id"]}, open("/tmp/soak2/out/ctx.json", "w"))
asyncio.run(main())
