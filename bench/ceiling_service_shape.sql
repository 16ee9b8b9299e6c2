-- Optional: makes bench_events carry what the service's `events` table has
-- beyond postgres-es's shape (migrations/0003): a nullable global position
-- with its unique index, the partial index of unpositioned events, and the
-- per-row SHA-256 hash chain trigger. Run after ceiling_setup.sql to measure
-- what those cost on top of the plain append (`concert-bench ceiling --service-shape`).
alter table bench_events add column position bigint;
create unique index bench_events_by_position on bench_events (position);
create index bench_events_unpositioned on bench_events (transaction_id) where position is null;
alter table bench_events add column hash bytea;

create or replace function bench_events_chain_hash() returns trigger
    language plpgsql as
$$
declare
    previous bytea;
begin
    if new.sequence > 1 then
        select hash into previous from bench_events
        where aggregate_type = new.aggregate_type and aggregate_id = new.aggregate_id and sequence = new.sequence - 1;
    end if;
    new.hash := sha256(coalesce(previous, ''::bytea) || convert_to(
        new.aggregate_type || '/' || new.aggregate_id || '/' || new.sequence::text || '/' || new.event_type || '/' ||
        new.event_version || '/' || new.payload::text || '/' || new.metadata::text, 'UTF8'));
    return new;
end
$$;

create trigger bench_events_chain_hash
    before insert on bench_events
    for each row execute function bench_events_chain_hash();
