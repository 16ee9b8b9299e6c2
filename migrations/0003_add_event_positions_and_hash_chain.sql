-- The global commit order and tamper evidence of the event log.

-- A position is handed out only to events whose transaction is older than
-- every transaction still running (pg_snapshot_xmin), so readers paging by
-- position never see 11 before 10 commits. See src/event_log.rs.
alter table events add column position bigint;
create unique index events_by_position on events (position);
-- Walks the events still to position in the order positions are handed out.
create index events_unpositioned on events (transaction_id, aggregate_type, aggregate_id, sequence) where position is null;

-- Each event carries a SHA-256 chained over the previous event of its stream;
-- `concert audit` recomputes the chain and names any edited, deleted or
-- reordered event.
alter table events add column hash bytea;

create function events_chain_hash() returns trigger
    language plpgsql as
$$
declare
    previous bytea;
begin
    if new.sequence > 1 then
        select hash into previous from events
        where aggregate_type = new.aggregate_type and aggregate_id = new.aggregate_id and sequence = new.sequence - 1;
    end if;
    new.hash := sha256(coalesce(previous, ''::bytea) || convert_to(
        new.aggregate_type || '/' || new.aggregate_id || '/' || new.sequence::text || '/' || new.event_type || '/' ||
        new.event_version || '/' || new.payload::text || '/' || new.metadata::text, 'UTF8'));
    return new;
end
$$;

create trigger events_chain_hash
    before insert on events
    for each row execute function events_chain_hash();
