# Times GET of the wallet's history and of the catalogue, one at a time
# (median of ROUNDS) and PARALLEL at once, and reads the server's peak RSS.
import asyncio, aiohttp, statistics, sys, time
BASE, USER, PID = sys.argv[1] + "/api/v1", sys.argv[2], sys.argv[3]
ROUNDS, PARALLEL = 7, 8
ADMIN = {"Authorization": "Bearer bench"}

def memory(field):
    for line in open(f"/proc/{PID}/status"):
        if line.startswith(field): return int(line.split()[1]) // 1024

async def get(s, path, headers):
    started = time.perf_counter(); first = None; size = 0
    async with s.get(BASE + path, headers=headers) as r:
        assert r.status == 200, r.status
        async for chunk in r.content.iter_any():
            first = first or time.perf_counter() - started; size += len(chunk)
    return (time.perf_counter() - started) * 1000, first * 1000, size

async def main():
    async with aiohttp.ClientSession() as s:
        for name, path, headers in [("stream", f"/audit/streams/Wallet/{USER}", ADMIN), ("concerts", "/concerts", {})]:
            await get(s, path, headers)
            runs = [await get(s, path, headers) for _ in range(ROUNDS)]
            rss = memory("VmRSS")
            started = time.perf_counter()
            await asyncio.gather(*[get(s, path, headers) for _ in range(PARALLEL)])
            together = (time.perf_counter() - started) * 1000
            print(f"{name}: {runs[0][2]} bytes; alone p50 {statistics.median(r[0] for r in runs):.0f} ms, "
                  f"first byte p50 {statistics.median(r[1] for r in runs):.1f} ms; {PARALLEL} at once {together:.0f} ms; "
                  f"RSS before {rss} MB, peak since start {memory('VmHWM')} MB", flush=True)
asyncio.run(main())
