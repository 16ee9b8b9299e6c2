# usage: source lib.sh
P=/tmp/probe-replay
start_server() { # bin datadir port [extra env...]
  local bin=$1 dir=$2 port=$3; shift 3
  env "$@" CONCERT_DATA_DIR=$dir CONCERT_ADMIN_TOKEN=bench CONCERT_BIND=127.0.0.1:$port CONCERT_LOG_FORMAT=json RUST_LOG=info,concert::request=warn \
    setsid $bin serve > $dir.server.log 2>&1 &
  echo $! > $dir.server.pid
  for i in $(seq 1 120); do
    curl -sf http://127.0.0.1:$port/readyz >/dev/null && break; sleep 0.5; done
  grep -o '"url":"[^"]*"' $dir.server.log | head -1 | sed 's/"url":"//;s/"$//' > $dir.url
  echo "server pid $(cat $dir.server.pid) url $(cat $dir.url)"
}
stop_server() { # datadir
  local pid=$(cat $1.server.pid); kill -TERM $pid; for i in $(seq 1 60); do kill -0 $pid 2>/dev/null || return 0; sleep 0.5; done; echo "server $pid did not stop"; }
dump() { # url outdir
  mkdir -p $2
  for t in projection_offsets concerts concert_dates concert_date_free_seats seats reservations balances payments queue_tickets queue_progress; do
    psql -X -q -At "$1" -c "select t::text from $t t order by 1" > $2/$t.txt
  done
  wc -l $2/*.txt | tail -1
}
cmpdump() { # a b
  local rc=0
  for f in $1/*.txt; do t=$(basename $f); if ! cmp -s $f $2/$t; then echo "DIFF $t: $(diff $f $2/$t | grep -c '^[<>]') lines"; rc=1; fi; done
  [ $rc = 0 ] && echo "IDENTICAL $1 $2"; return $rc
}
