-- pgbench script 2: one event-sourced command. In one transaction, read the
-- last 10 events of a random stream (the aggregate's history), then append
-- the next event (sequence = last + 1; a lost race appends nothing, as the
-- optimistic lock would refuse it). Four round trips, like a cqrs-es command:
-- load, begin, insert, commit. Needs -D streams=N (the prefilled streams).
\set s random(1, :streams)
BEGIN;
SELECT sequence, event_type, event_version, payload, metadata FROM bench_events
 WHERE aggregate_type = 'BenchSeat' AND aggregate_id = 'stream-' || cast(:s as text)
 ORDER BY sequence DESC LIMIT 10;
INSERT INTO bench_events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
SELECT 'BenchSeat', 'stream-' || cast(:s as text), coalesce(max(sequence), 0) + 1, 'SeatHeld', '1',
       '{"SeatHeld":{"reservation_id":"0193a5b0-7c1e-7a52-9f0e-3c2d1b0a9f8e","user_id":"5f0c3e9a-8d7b-4c6a-9e5f-1a2b3c4d5e6f","date_id":"0193a5b0-0000-7000-8000-000000000001","seat_no":1234,"price":150000,"held_at":"2026-12-01T10:00:00.123456Z","until":"2026-12-01T10:05:00.123456Z"}}',
       '{"correlation_id":"0193a5b0-7c1e-7a52-9f0e-3c2d1b0a9f8f","causation_id":"0193a5b0-7c1e-7a52-9f0e-3c2d1b0a9f90","command":"HoldSeat","actor":"user:5f0c3e9a-8d7b-4c6a-9e5f-1a2b3c4d5e6f","recorded_at":"2026-12-01T10:00:00.123456+00:00"}'
  FROM bench_events
 WHERE aggregate_type = 'BenchSeat' AND aggregate_id = 'stream-' || cast(:s as text)
ON CONFLICT DO NOTHING;
END;
