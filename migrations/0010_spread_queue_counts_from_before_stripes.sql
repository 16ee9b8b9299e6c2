-- Migration 0005 left the counts of tickets that had left a waiting line
-- before it in stripe 0, while the projection (and so a replay of the log)
-- files each ticket under stripe entry_no % 16. The totals are the same, but
-- the read model of such a store differed from its rebuild row by row. The
-- counts are filed again as the projection files them: each ticket that is
-- no longer waiting left the line once. The table is locked first, so an
-- instance of the release before still serving cannot count in between.
lock table queue_progress in exclusive mode;
delete from queue_progress;

insert into queue_progress (concert_id, stripe, left_waiting)
select concert_id, entry_no % 16, count(*)
from queue_tickets
where status <> 'waiting'
group by concert_id, entry_no % 16;
