import collections, sys, re
pat = re.compile(sys.argv[1], re.I)
snaps = collections.OrderedDict()
for line in open('/tmp/soak2/out/pgss.tsv'):
    p = line.rstrip('\n').split('\t')
    if len(p) < 7: continue
    snaps.setdefault(int(p[0]), {})[p[1]] = (int(p[2]), float(p[3]), int(p[4]), int(p[5] or 0), p[6])
ts = list(snaps)
qids = {q for s in snaps.values() for q, v in s.items() if pat.search(v[4])}
for q in qids:
    text = next(s[q][4] for s in snaps.values() if q in s)
    print(f"\n[{q}] {text[:260]}")
    out = []
    for a, b in zip(ts, ts[1:]):
        v = snaps[b].get(q); u = snaps[a].get(q, (0,0,0,0,''))
        if not v or v[0] - u[0] <= 0: out.append("-"); continue
        dc = v[0]-u[0]; out.append(f"{(v[1]-u[1])/dc:.2f}/{(v[3]-u[3])/dc:.0f}b/{dc}")
    print("  ms/blks/calls per min:", " ".join(out))
