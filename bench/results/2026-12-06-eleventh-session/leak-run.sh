#!/bin/bash
# usage: run.sh BUILD  -- RSS of a server before and after 20,000 seat listings of made-up dates whose clients hang up at once
set -e
B=$1; D=/tmp/leak49/d-$B; rm -rf $D
CONCERT_DATA_DIR=$D CONCERT_BIND=127.0.0.1:18747 CONCERT_ADMIN_TOKEN=adm /tmp/bin-$B/concert serve --demo > /tmp/leak49/server-$B.log 2>&1 &
PID=$!
for i in $(seq 120); do curl -fs 127.0.0.1:18747/readyz >/dev/null && break; sleep 0.5; done
C=$(curl -fs 127.0.0.1:18747/api/v1/concerts | python3 -c 'import json,sys; print(json.load(sys.stdin)["concerts"][0]["concert_id"])')
U=$(python3 -c 'import uuid; print(uuid.uuid4())')
UT=$(curl -fs -X POST -H 'Authorization: Bearer adm' -H 'content-type: application/json' -d '{}' 127.0.0.1:18747/api/v1/users/$U/tokens | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
T=$(curl -fs -X POST -H "Authorization: Bearer $UT" -H 'content-type: application/json' -d "{\"concert_id\":\"$C\"}" 127.0.0.1:18747/api/v1/queue/tokens | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
sleep 2
printf 'C=%s\nT=%s\n' $C $T > /tmp/review47/env.sh
rss() { grep VmRSS /proc/$PID/status | awk '{print $2}'; }
echo "$B start_rss_kb=$(rss)"
python3 /tmp/review47/leak.py 20000 close
sleep 3; echo "$B after_20000_rss_kb=$(rss)"
python3 /tmp/review47/leak.py 20000 close
sleep 3; echo "$B after_40000_rss_kb=$(rss)"
kill -INT $PID; wait $PID || true
