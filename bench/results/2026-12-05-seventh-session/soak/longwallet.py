import asyncio, aiohttp, time, uuid, json, statistics, sys, subprocess
from common import *
OUT = "/tmp/soak2/out/"
N = int(sys.argv[1]); STEP = int(sys.argv[2])
async def main():
    f = open(OUT + "longwallet.jsonl", "a")
    async with aiohttp.ClientSession() as s:
        uid = str(uuid.uuid4()); uh = await user_token(s, uid)
        open(OUT + "longwallet.txt", "w").write(uid)
        done = 0
        async def bulk(k):
            nonlocal done
            q = asyncio.Queue()
            for i in range(k): q.put_nowait(i)
            async def w():
                nonlocal done
                while not q.empty():
                    q.get_nowait()
                    st, j, dt, _ = await req(s, "POST", f"/users/{uid}/balance/charges", {**uh, "Idempotency-Key": str(uuid.uuid4())}, {"amount": 1})
                    if st != 200: print("bulk", st, j, flush=True)
                    done += 1
            await asyncio.gather(*[w() for _ in range(4)])
        while done <= N:
            ds = []; bs = []
            for _ in range(20):
                st, j, dt, _ = await req(s, "POST", f"/users/{uid}/balance/charges", {**uh, "Idempotency-Key": str(uuid.uuid4())}, {"amount": 1}); ds.append(dt*1000); done += 1
                st, j, dt, _ = await req(s, "GET", f"/users/{uid}/balance", uh); bs.append(dt*1000)
            st, j, dt, sz = await req(s, "GET", f"/audit/streams/Wallet/{uid}", ADMIN)
            row = {"t": time.time(), "events": done, "charge_med": statistics.median(ds), "charge_min": min(ds), "balance_med": statistics.median(bs), "stream_ms": dt*1000, "stream_bytes": sz}
            print(row, flush=True); f.write(json.dumps(row) + "\n"); f.flush()
            await bulk(STEP)
asyncio.run(main())
