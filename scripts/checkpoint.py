#!/usr/bin/env python3
"""The log's checkpoint, recomputed apart from the service.

Reads events as JSON lines, in position order, as `concert events --json`
prints them (or the `events` of `GET /api/v1/audit/events`, one per line),
and prints `POSITION:DIGEST`, which must equal the checkpoint `concert audit`
printed at that position (README, "Checkpoints"):

    concert events --json | python3 scripts/checkpoint.py
"""
import hashlib
import json
import sys
from datetime import datetime


def micros(recorded_at):
    """Microseconds since the Unix epoch of an RFC 3339 time in UTC (0 for none)."""
    if not recorded_at:
        return 0
    seconds, _, fraction = recorded_at.rstrip("Z").partition(".")
    whole = datetime.fromisoformat(seconds + "+00:00")
    return int(whole.timestamp()) * 1_000_000 + int((fraction + "000000")[:6])


def checkpoint(events):
    """`POSITION:DIGEST` of `events` (dicts), in position order."""
    digest, position = bytes(32), 0
    for event in events:
        position = event["position"]
        digest = hashlib.sha256(
            digest
            + position.to_bytes(8, "big", signed=True)
            + bytes.fromhex(event["metadata"].get("hash") or "00" * 32)
            + micros(event.get("recorded_at")).to_bytes(8, "big", signed=True)
        ).digest()
    return f"{position}:{digest.hex()}"


if __name__ == "__main__":
    print(checkpoint(json.loads(line) for line in sys.stdin if line.strip()))
