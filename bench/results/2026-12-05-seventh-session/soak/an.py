import json, sys, collections
rows = [json.loads(l) for l in open("/tmp/soak2/out/probes.jsonl")]
by = collections.OrderedDict()
for r in rows: by.setdefault(r["probe"], []).append(r)
print("rounds:", len(by.get("healthz", [])))
hdr = [(r["db_concerts"], r["db_dates"], r["db_seats"], r["db_events"], r["db_tickets"], r["db_idem"]) for r in by["healthz"]]
print("concerts/dates/seats/events/tickets/idem per round:"); [print("  ", i, h) for i, h in enumerate(hdr)]
for k, v in by.items():
    print(f"{k:26s}", " ".join(f"{r['med']:7.2f}" for r in v), " size:", v[0]["size"], "->", v[-1]["size"], {c for r in v for c in r["codes"]})
