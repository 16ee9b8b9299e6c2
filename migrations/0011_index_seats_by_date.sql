-- A date's seats in seat order, for a seat map's first read: the only index
-- by date held the free seats, so the read scanned every seat of every concert.
create index seats_by_date on seats (date_id, seat_no);
