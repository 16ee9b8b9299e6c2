#!/bin/bash
# ROUNDS="head37 paged head37 paged" bash run.sh; builds in /tmp/bin-<name>
set -e
DIR=${DIR:-/tmp/paged}; PORT=18391; HERE=$(cd "$(dirname "$0")" && pwd)
start() {
  CONCERT_DATA_DIR=$DIR/data CONCERT_ADMIN_TOKEN=bench CONCERT_BIND=127.0.0.1:$PORT RUST_LOG=warn \
    /tmp/bin-$1 serve > $DIR/server-$1.log 2>&1 & echo $! > $DIR/pid
  until curl -sf http://127.0.0.1:$PORT/readyz > /dev/null; do sleep 0.2; done
}
stop() { kill $(cat $DIR/pid); while kill -0 $(cat $DIR/pid) 2>/dev/null; do sleep 0.2; done; }
mkdir -p $DIR
if [ ! -f $DIR/user ]; then
  start ${ROUNDS%% *}
  python3 $HERE/populate.py http://127.0.0.1:$PORT ${WALLET:-20000} ${CONCERTS:-32500} > $DIR/user
  stop
fi
for build in ${ROUNDS:-head37 paged head37 paged}; do
  start $build
  echo "== $build"; python3 $HERE/measure.py http://127.0.0.1:$PORT $(cat $DIR/user) $(cat $DIR/pid)
  stop
done
