-- Live updates: every instance LISTENs on `concert_events` and learns of the
-- commits of the others (src/live/). One notification per inserting
-- statement, empty payload: PostgreSQL folds identical notifications of one
-- transaction into one and delivers them at commit, so a listener wakes once
-- per transaction and reads what is new by position.
create function events_notify_commit() returns trigger
    language plpgsql as
$$
begin
    perform pg_notify('concert_events', '');
    return null;
end
$$;

create trigger events_notify_commit
    after insert on events
    for each statement
execute function events_notify_commit();
