# Grows one wallet of WALLET events and a catalogue of CONCERTS concerts.
import asyncio, aiohttp, datetime, sys, uuid
BASE = sys.argv[1] + "/api/v1"
WALLET, CONCERTS = int(sys.argv[2]), int(sys.argv[3])
ADMIN = {"Authorization": "Bearer bench"}

async def main():
    async with aiohttp.ClientSession() as s:
        user = str(uuid.uuid4())
        async with s.post(f"{BASE}/users/{user}/tokens", headers=ADMIN, json={}) as r:
            me = {"Authorization": "Bearer " + (await r.json())["token"]}
        starts = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
        async def work(n, send):
            queue = asyncio.Queue()
            for i in range(n): queue.put_nowait(i)
            async def worker():
                while not queue.empty():
                    queue.get_nowait(); await send()
            await asyncio.gather(*[worker() for _ in range(16)])
        async def charge():
            async with s.post(f"{BASE}/users/{user}/balance/charges", headers=me, json={"amount": 1}) as r:
                assert r.status == 200, r.status
        async def concert():
            body = {"title": "Paged", "dates": [{"starts_at": starts, "seats": 1, "price": 10}]}
            async with s.post(f"{BASE}/concerts", headers=ADMIN, json=body) as r:
                assert r.status == 201, r.status
        await work(WALLET, charge)
        await work(CONCERTS, concert)
        print(user)
asyncio.run(main())
