#!/bin/bash
while true; do
  /tmp/soak2/psql.sh -At -F $'\t' -c "select extract(epoch from now())::bigint, queryid, calls, round(total_exec_time::numeric,3), rows, shared_blks_hit+shared_blks_read, regexp_replace(left(query,400), '\s+', ' ', 'g') from pg_stat_statements where calls>0" >> /tmp/soak2/out/pgss.tsv 2>>/tmp/soak2/out/pgss.err
  sleep 60
done
