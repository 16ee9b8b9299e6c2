#!/usr/bin/env bash
# Alternating A/B of two builds at 64 clients: each round is
# `STEPS="ceiling endpoints" bench/run.sh` on a fresh private PostgreSQL
# with BIN=/tmp/bin-<name>; results in $OUT/<name>-<HHMMSS>/.
set -u
cd "$(dirname "$0")/../../.."
OUT=${OUT:-bench/results/2026-12-03-payment-pipeline}
ROUNDS=${ROUNDS:-"before after after before"}
for which in $ROUNDS; do
  OUT=$OUT/$which-$(date -u +%H%M%S) BIN=/tmp/bin-$which STEPS=${STEPS:-"ceiling endpoints"} \
    ENDPOINTS=${ENDPOINTS:-"hold charge pay"} bench/run.sh > /dev/null 2>&1
done
