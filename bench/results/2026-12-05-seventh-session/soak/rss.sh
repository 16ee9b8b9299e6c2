#!/bin/bash
# sample RSS of concert server and postgres total every 30s
while true; do
  P=$(cat /tmp/soak2/server.pid)
  [ -d /proc/$P ] || break
  R=$(awk '/VmRSS/{print $2}' /proc/$P/status); H=$(awk '/VmHWM/{print $2}' /proc/$P/status)
  T=$(awk '/^Threads/{print $2}' /proc/$P/status)
  CPU=$(awk '{print $14+$15}' /proc/$P/stat)
  PG=$(ps -u postgres -o rss= | awk '{s+=$1}END{print s}')
  echo "$(date +%s) $(date +%T) rss_kb=$R hwm_kb=$H threads=$T cpu_ticks=$CPU pg_rss_kb_sum=$PG"
  sleep 30
done
