import collections, sys
# snapshots: t -> {qid: (calls, total, rows, blks, query)}
snaps = collections.OrderedDict()
for line in open('/tmp/soak2/out/pgss.tsv'):
    p = line.rstrip('\n').split('\t')
    if len(p) < 7: continue
    t, qid, calls, tot, rows, blks, q = int(p[0]), p[1], int(p[2]), float(p[3]), int(p[4]), int(p[5] or 0), p[6]
    snaps.setdefault(t, {})[qid] = (calls, tot, rows, blks, q)
ts = list(snaps)
# windows of deltas
wins = []
for a, b in zip(ts, ts[1:]):
    d = {}
    for qid, v in snaps[b].items():
        u = snaps[a].get(qid, (0, 0, 0, 0, ''))
        if v[0] < u[0]: u = (0,0,0,0,'')  # reset
        dc = v[0] - u[0]
        if dc > 0: d[qid] = (dc, v[1] - u[1], v[2]-u[2], v[3]-u[3], v[4])
    wins.append((b, d))
# total exec time per window and top statements
print("windows:", len(wins))
tot_by_q = collections.Counter()
for _, d in wins:
    for q, v in d.items(): tot_by_q[q] += v[1]
top = [q for q, _ in tot_by_q.most_common(int(sys.argv[1]) if len(sys.argv) > 1 else 25)]
qtext = {}
for _, d in wins:
    for q, v in d.items(): qtext[q] = v[4]
print("window total exec ms:", " ".join(f"{sum(v[1] for v in d.values()):.0f}" for _, d in wins))
for q in top:
    means = []
    for _, d in wins:
        v = d.get(q)
        means.append(f"{v[1]/v[0]:.2f}" if v else "-")
    callsw = [str(d[q][0]) if q in d else "-" for _, d in wins]
    blks = [f"{d[q][3]/d[q][0]:.0f}" if q in d else "-" for _, d in wins]
    print(f"\n[{q}] total {tot_by_q[q]:.0f} ms :: {qtext[q][:230]}")
    print("  mean ms/call:", " ".join(means))
    print("  calls      :", " ".join(callsw))
    print("  blks/call  :", " ".join(blks))
