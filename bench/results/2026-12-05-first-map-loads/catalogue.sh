#!/usr/bin/env bash
# usage: catalogue.sh <bin-name>: 1,000,000 seats in the catalogue, then the first dates listing of a 100-date concert
set -u
which=$1
PG="psql -q -h 127.0.0.1 -p 5499 -U postgres"
$PG postgres -c "drop database if exists concert_ab" -c "create database concert_ab"
DATABASE_URL=postgres://postgres@127.0.0.1:5499/concert_ab CONCERT_ADMIN_TOKEN=bench CONCERT_BIND=127.0.0.1:18383 \
  /tmp/bin-$which/concert serve > catalogue-$which.log 2>&1 &
pid=$!
for _ in $(seq 60); do curl -fs 127.0.0.1:18383/readyz >/dev/null && break; sleep 0.5; done
body=$(python3 -c 'import json; print(json.dumps({"title":"stadium","dates":[{"starts_at":"2031-01-%02dT19:00:00Z"%(i+1),"seats":50000,"price":1000} for i in range(20)]}))')
time curl -s -o /dev/null -w "%{http_code}\n" -H 'authorization: Bearer bench' -H 'content-type: application/json' -d "$body" 127.0.0.1:18383/api/v1/concerts
echo "$which: $(python3 manydates.py 2>&1 | tail -1)"
kill -INT $pid; wait $pid
