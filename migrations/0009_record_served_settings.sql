-- What `concert serve` last ran with, for the tools that read the log later:
-- the queue's active limit is in no event, and an audit against another
-- limit names admissions that were within it, or misses ones that were not.
create table served_settings
(
    name      text primary key,
    value     text        not null,
    served_at timestamptz not null default now()
);
