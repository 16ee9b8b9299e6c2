-- Counters that every command of a date or a concert updated were one row
-- each, and concurrent commands queued on its lock until their commit. Each is
-- now spread over sixteen rows (stripes) and read as their sum.

-- available_seats: a date's free seats, by seat number (seat_no % 16).
create table concert_date_free_seats
(
    date_id uuid     not null,
    stripe  smallint not null,
    free    integer  not null,
    primary key (date_id, stripe)
);

insert into concert_date_free_seats (date_id, stripe, free)
select date_id, seat_no % 16, count(*) filter (where status = 'free')
from seats
group by date_id, seat_no % 16;

alter table concert_dates drop column available_seats;

-- queue_tickets: tickets that left a concert's waiting line, by entry number
-- (entry_no % 16). Earlier counts stay in stripe 0.
alter table queue_progress add column stripe smallint not null default 0;
alter table queue_progress drop constraint queue_progress_pkey;
alter table queue_progress add primary key (concert_id, stripe);
alter table queue_progress alter column stripe drop default;
