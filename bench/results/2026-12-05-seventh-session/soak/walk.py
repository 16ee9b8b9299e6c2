import asyncio, aiohttp, time, json, statistics
from common import *
async def main():
    async with aiohttp.ClientSession() as s:
        after = 0; rows = []; n = 0
        while True:
            st, j, dt, sz = await req(s, "GET", f"/audit/events?after={after}&limit=1000", ADMIN)
            assert st == 200, (st, j)
            if not j["events"]: break
            rows.append((after, dt*1000, len(j["events"]))); n += len(j["events"])
            after = j["next"]
        print("pages", len(rows), "events", n, "last next", after)
        k = len(rows)//10
        for i in range(10):
            seg = rows[i*k:(i+1)*k]
            print(f"decile {i}: after {seg[0][0]:>8}..{seg[-1][0]:>8} med {statistics.median(r[1] for r in seg):6.2f} ms max {max(r[1] for r in seg):6.1f}")
        # limit=1 deep and shallow
        for a in [0, after//2, after-10]:
            ds = []
            for _ in range(50):
                st, j, dt, sz = await req(s, "GET", f"/audit/events?after={a}&limit=1", ADMIN); ds.append(dt*1000)
            print("limit=1 after", a, "med %.2f ms" % statistics.median(ds))
asyncio.run(main())
