-- Removes the scratch event store of the ceiling run.
drop table if exists bench_events;
drop function if exists bench_events_chain_hash();
