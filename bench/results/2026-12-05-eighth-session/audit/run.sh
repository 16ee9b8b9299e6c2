#!/bin/bash
# Times `concert audit` of each build on the store grown by ../paged/run.sh,
# after adding (once) a stadium of 20 dates of 50,000 seats (1,000,000 seats).
# ROUNDS="head37 audit head37 audit" bash run.sh; builds in /tmp/bin-<name>
set -e
DIR=${DIR:-/tmp/paged}; PORT=18391
if [ ! -f $DIR/stadium ]; then
  CONCERT_DATA_DIR=$DIR/data CONCERT_ADMIN_TOKEN=bench CONCERT_BIND=127.0.0.1:$PORT RUST_LOG=warn \
    /tmp/bin-${ROUNDS%% *} serve > $DIR/server-stadium.log 2>&1 & echo $! > $DIR/pid
  until curl -sf http://127.0.0.1:$PORT/readyz > /dev/null; do sleep 0.2; done
  python3 - <<'PY' > $DIR/stadium
import datetime, json, urllib.request
starts = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)
dates = [{"starts_at": (starts + datetime.timedelta(days=n)).strftime("%Y-%m-%dT%H:%M:%SZ"), "seats": 50000, "price": 10} for n in range(20)]
request = urllib.request.Request("http://127.0.0.1:18391/api/v1/concerts", json.dumps({"title": "Stadium", "dates": dates}).encode(),
                                 {"Authorization": "Bearer bench", "Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(request, timeout=600))["concert_id"])
PY
  kill $(cat $DIR/pid); while kill -0 $(cat $DIR/pid) 2>/dev/null; do sleep 0.2; done
fi
for build in ${ROUNDS:-head37 audit head37 audit}; do
  echo "== $build"
  /usr/bin/time -f "%e s, %M KB peak" env CONCERT_DATA_DIR=$DIR/data /tmp/bin-$build audit 2>&1 | grep -v "^\s*$" | tail -3
done
