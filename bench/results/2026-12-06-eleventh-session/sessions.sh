#!/bin/bash
B=$1; D=/tmp/leak49/s-$B; rm -rf $D
CONCERT_DATA_DIR=$D CONCERT_BIND=127.0.0.1:18748 CONCERT_ADMIN_TOKEN=bench CONCERT_QUEUE_ACTIVE_MAX=100000 CONCERT_SCHEDULER_INTERVAL_MS=50 /tmp/bin-$B/concert serve > /tmp/leak49/s-$B.log 2>&1 &
PID=$!
for i in $(seq 120); do curl -fs 127.0.0.1:18748/readyz >/dev/null && break; sleep 0.5; done
q() { psql -h $D -U postgres -d concert -Atc "select sessions from pg_stat_database where datname='concert'"; }
echo "$B sessions_before=$(q)"
/tmp/bin-$B/concert-bench endpoint --url http://127.0.0.1:18748 --admin-token bench --name charge --concurrency 64 --seconds 5 --server-pid $PID 2>&1 | grep -E '^charge'
echo "$B sessions_after=$(q)"
kill -INT $PID; wait $PID
