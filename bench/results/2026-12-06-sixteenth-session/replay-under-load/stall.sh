#!/bin/bash
# A replay started DELAY s into a 20,000-user flash sale; GET /concerts sampled every 20 ms.
# SERVER_BIN is the serving build (the same for both replays compared), BIN the replaying one:
#   SERVER_BIN=/tmp/bin-new/concert bash stall.sh /tmp/bin-new2 /tmp/replay-stall/d1 18730 4
# usage: stall.sh <bin-dir> <datadir> <port> <delay>: flash sale on a fresh store, one replay started <delay> s in,
# GET /concerts latency sampled every ~20 ms; prints the worst samples and the replay's end
source "$(dirname "$0")/lib.sh"
BIN=$1; D=${2:?datadir, e.g. /tmp/probe-replay/d5}; PORT=$3; DELAY=$4
start_server ${SERVER_BIN:-/tmp/bin-new/concert} $D $PORT CONCERT_QUEUE_ACTIVE_MAX=100000 CONCERT_SCHEDULER_INTERVAL_MS=50 CONCERT_HOLD_TTL_SECS=3600 CONCERT_QUEUE_ACTIVE_TTL_SECS=3600 >/dev/null
U=$(cat $D.url)
${SERVER_BIN%/concert}/concert-bench flash-sale --url http://127.0.0.1:$PORT --admin-token bench --users 20000 --seats 5000 --concurrency 64 > $D.fs.log 2>&1 &
LOAD=$!
T0=$(date +%s.%N)
( while kill -0 $LOAD 2>/dev/null; do s=$(date +%s.%N); curl -s -o /dev/null -m 60 http://127.0.0.1:$PORT/api/v1/concerts; e=$(date +%s.%N); echo "$(echo "$s - $T0" | bc) $(echo "$e - $s" | bc)"; sleep 0.02; done > $D.lat ) &
SAMP=$!
sleep $DELAY
rs=$(date +%s.%N)
DATABASE_URL=$U $BIN/concert replay > $D.replay.log 2>&1
re=$(date +%s.%N)
echo "$BIN replay: started $(echo "$rs - $T0" | bc)s, ended $(echo "$re - $T0" | bc)s: $(tail -n1 $D.replay.log)"
wait $LOAD; wait $SAMP
echo "worst GET /concerts latencies (start-offset latency):"; sort -k2 -n $D.lat | tail -n 4
grep -A7 "phase 3-sale" $D.fs.log | grep -E "hold|pay |queue-status"; grep -E "flash sale (PASSED|FAILED)" $D.fs.log
stop_server $D
