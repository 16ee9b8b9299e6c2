#!/usr/bin/env bash
# `concert audit` of one flash sale's store (bench/run.sh STEPS="flash audit"
# FLASH=20000:5000, DATA=$DATA), alternating two builds: A=$A/concert (the
# stop's first build) and B=$B/concert (its last). Wall time and peak RSS of
# each round go to $OUT/<n>-<build>.time, the report to $OUT/<n>-<build>.out.
set -euo pipefail
OUT=${OUT:-.}
n=0
for build in A B B A A B B A; do
  n=$((n + 1))
  bin=$([ "$build" = A ] && echo "$A" || echo "$B")
  /usr/bin/time -v env CONCERT_DATA_DIR="$DATA" "$bin/concert" audit --queue-active-max 100000 \
    >"$OUT/$n-$build.out" 2>"$OUT/$n-$build.time"
  echo "$n $build $(tail -1 "$OUT/$n-$build.out") $(grep -E 'Elapsed|Maximum resident' "$OUT/$n-$build.time" | awk '{print $NF}' | tr '\n' ' ')"
done
