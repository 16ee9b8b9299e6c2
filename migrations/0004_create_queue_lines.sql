-- Queue positions in constant time, however long the queue.
--
-- Entry numbers are dense per concert (1, 2, 3, ...), so a waiting ticket's
-- position is its number - 1, minus the tickets that already left the waiting
-- line (admitted or expired), minus numbers handed out but never used.

-- Service state: the last entry number handed out per concert.
create table queue_lines
(
    concert_id uuid primary key,
    issued     bigint not null
);

-- Service state: entry numbers taken by a request that then did not enter
-- (a concurrent entry of the same user won).
create table queue_unused_entries
(
    concert_id uuid   not null,
    entry_no   bigint not null,
    primary key (concert_id, entry_no)
);

-- queue_tickets (read model): how many tickets of each concert left the waiting line.
create table queue_progress
(
    concert_id   uuid primary key,
    left_waiting bigint not null
);

drop sequence queue_entry_no;
