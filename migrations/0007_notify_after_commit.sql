-- Live updates: the service now sends the `concert_events` notification
-- after each commit that appended events, in a transaction of its own
-- (src/event_store/commit_signal.rs). The trigger of 0006 sent it from the
-- appending transaction, whose commit then held PostgreSQL's database-wide
-- notification lock until its flush to disk: appends could not share a flush.
-- A writer other than the service (a tool) no longer wakes the feeds at once;
-- they read it within their fallback interval.
drop trigger events_notify_commit on events;
drop function events_notify_commit();
