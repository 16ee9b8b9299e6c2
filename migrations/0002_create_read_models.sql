-- Read models. Each table is written by exactly one projection (named in its
-- comment) and can be rebuilt from the events table.

-- How far the read models have applied each stream. All projections of an
-- event are written in one transaction with this row, so each applies exactly once.
create table projection_offsets
(
    aggregate_type text   not null,
    aggregate_id   text   not null,
    last_sequence  bigint not null,
    primary key (aggregate_type, aggregate_id)
);

-- available_dates
create table concerts
(
    concert_id uuid primary key,
    title      text not null
);

-- available_dates
create table concert_dates
(
    date_id         uuid primary key,
    concert_id      uuid        not null,
    starts_at       timestamptz not null,
    price           bigint      not null,
    total_seats     integer     not null,
    available_seats integer     not null
);
create index concert_dates_by_concert on concert_dates (concert_id, starts_at);

-- available_seats
create table seats
(
    seat_id uuid primary key,
    date_id uuid    not null,
    seat_no integer not null,
    price   bigint  not null,
    status  text    not null default 'free' check (status in ('free', 'held', 'sold'))
);
create index seats_free_by_date on seats (date_id, seat_no) where status = 'free';

-- reservations
create table reservations
(
    reservation_id uuid primary key,
    seat_id        uuid        not null,
    date_id        uuid        not null,
    concert_id     uuid,
    user_id        uuid        not null,
    seat_no        integer     not null,
    price          bigint      not null,
    status         text        not null check (status in ('held', 'expired', 'confirmed')),
    held_at        timestamptz not null,
    expires_at     timestamptz not null,
    payment_id     uuid
);
create index reservations_held_by_deadline on reservations (expires_at) where status = 'held';

-- balances
create table balances
(
    user_id uuid primary key,
    balance bigint not null check (balance >= 0)
);

-- payments: the payment process, driven by wallet and seat events
create table payments
(
    payment_id     uuid primary key,
    user_id        uuid        not null,
    reservation_id uuid        not null,
    seat_id        uuid        not null,
    amount         bigint      not null,
    status         text        not null check (status in ('debited', 'completed', 'refunded')),
    debited_at     timestamptz not null
);
create index payments_open on payments (debited_at) where status = 'debited';
create index payments_by_reservation on payments (reservation_id);

-- queue_tickets
create table queue_tickets
(
    ticket_id   uuid primary key,
    concert_id  uuid        not null,
    user_id     uuid        not null,
    entry_no    bigint      not null,
    status      text        not null check (status in ('waiting', 'active', 'expired')),
    entered_at  timestamptz not null,
    admitted_at timestamptz,
    expires_at  timestamptz,
    expired_at  timestamptz
);
create index queue_tickets_waiting on queue_tickets (concert_id, entry_no) where status = 'waiting';
create index queue_tickets_active on queue_tickets (concert_id, expires_at) where status = 'active';
create index queue_tickets_by_user on queue_tickets (concert_id, user_id, entered_at desc);
create index queue_tickets_admitted on queue_tickets (concert_id, admitted_at) where admitted_at is not null;

-- Not read models: service state that is not derived from events.

-- FIFO order of queue entry, carried into each QueueEntered event.
create sequence queue_entry_no;

-- The first answer to a request sent with an Idempotency-Key, returned on retries.
create table idempotency_keys
(
    user_id    uuid        not null,
    operation  text        not null,
    key        text        not null,
    status     smallint    not null,
    body       jsonb       not null,
    created_at timestamptz not null default now(),
    primary key (user_id, operation, key)
);

-- The key that signs queue tokens; shared by every instance on this database.
create table server_secrets
(
    name   text primary key,
    secret bytea not null
);
