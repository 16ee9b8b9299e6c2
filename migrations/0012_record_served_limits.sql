-- Each CONCERT_QUEUE_ACTIVE_MAX the service was served with, from the log
-- position where that serve started: an audit holds each admission to the
-- limit of its time. With only the last one kept (served_settings), a limit
-- lowered after a sale made every admission under the old one a violation,
-- and one raised hid the admissions beyond the old one.
create table served_limits
(
    from_position    bigint primary key,
    queue_active_max integer     not null,
    served_at        timestamptz not null default now()
);

-- What was recorded before: the last limit, for the whole log so far.
insert into served_limits (from_position, queue_active_max)
select 0, value::integer
from served_settings
where name = 'queue_active_max' and value ~ '^[0-9]{1,9}$';
