#!/bin/bash
cd /tmp/soak2
CONCERT_DATA_DIR=/tmp/soak2/data CONCERT_ADMIN_TOKEN=soak CONCERT_BIND=127.0.0.1:18383 CONCERT_LOG_FORMAT=json RUST_LOG=warn \
CONCERT_QUEUE_ACTIVE_TTL_SECS=20 CONCERT_HOLD_TTL_SECS=10 CONCERT_PAYMENT_RECOVERY_SECS=10 \
nohup /work/main/target/release/concert serve >> /tmp/soak2/server.log 2>&1 &
echo $! > /tmp/soak2/server.pid
