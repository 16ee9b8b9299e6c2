-- Scratch event store for the PostgreSQL ceiling: shaped like the service's
-- `events` table as postgres-es writes it (migrations/0001), under another
-- name so the service's tables are untouched. Prefilled with :streams streams
-- of 10 events each (~500-byte rows). Run by `concert-bench ceiling`, or by
-- hand: psql -v streams=20000 -f bench/ceiling_setup.sql DATABASE_URL
drop table if exists bench_events;
create table bench_events
(
    aggregate_type text                         not null,
    aggregate_id   text                         not null,
    sequence       bigint check (sequence >= 0) not null,
    event_type     text                         not null,
    event_version  text                         not null,
    payload        json                         not null,
    metadata       json                         not null,
    recorded_at    timestamptz                  not null default clock_timestamp(),
    transaction_id xid8                         not null default pg_current_xact_id(),
    primary key (aggregate_type, aggregate_id, sequence)
);
insert into bench_events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
select 'BenchSeat', 'stream-' || s, n, 'SeatHeld', '1',
       '{"SeatHeld":{"reservation_id":"0193a5b0-7c1e-7a52-9f0e-3c2d1b0a9f8e","user_id":"5f0c3e9a-8d7b-4c6a-9e5f-1a2b3c4d5e6f","date_id":"0193a5b0-0000-7000-8000-000000000001","seat_no":1234,"price":150000,"held_at":"2026-12-01T10:00:00.123456Z","until":"2026-12-01T10:05:00.123456Z"}}',
       '{"correlation_id":"0193a5b0-7c1e-7a52-9f0e-3c2d1b0a9f8f","causation_id":"0193a5b0-7c1e-7a52-9f0e-3c2d1b0a9f90","command":"HoldSeat","actor":"user:5f0c3e9a-8d7b-4c6a-9e5f-1a2b3c4d5e6f","recorded_at":"2026-12-01T10:00:00.123456+00:00"}'
from generate_series(1, :streams) as s, generate_series(1, 10) as n;
analyze bench_events;
