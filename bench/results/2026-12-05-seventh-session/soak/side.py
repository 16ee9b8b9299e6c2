import asyncio, aiohttp, time, json, subprocess, statistics
from common import *
OUT = "/tmp/soak2/out/"
Q = """select json_object_agg(relname, json_build_object('mb', round(pg_total_relation_size(relid)/1048576.0,1), 'live', n_live_tup, 'dead', n_dead_tup)) from pg_stat_user_tables"""
async def main():
    W = open(OUT + "whale.txt").read().strip()
    f = open(OUT + "side.jsonl", "a")
    async with aiohttp.ClientSession() as s:
        while True:
            ds = []; sz = 0; n = 0
            for _ in range(3):
                st, j, dt, sz = await req(s, "GET", f"/audit/streams/Wallet/{W}", ADMIN); ds.append(dt*1000)
                n = len(j["events"]) if j else -1
            tabs = json.loads(subprocess.run(["/tmp/soak2/psql.sh", "-At", "-c", Q], capture_output=True, text=True).stdout)
            snap = subprocess.run(["/tmp/soak2/psql.sh", "-At", "-c", f"select last_sequence, pg_column_size(payload), octet_length(payload::text) from snapshots where aggregate_type='Wallet' and aggregate_id='{W}'"], capture_output=True, text=True).stdout.strip()
            f.write(json.dumps({"t": time.time(), "whale_stream_events": n, "whale_stream_ms": statistics.median(ds), "whale_stream_bytes": sz, "whale_snapshot": snap, "tables": tabs}) + "\n"); f.flush()
            await asyncio.sleep(60)
asyncio.run(main())
