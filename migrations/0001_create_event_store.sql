-- The event store, as postgres-es reads and writes it. The extra columns have
-- defaults, so postgres-es keeps inserting without knowing about them.
create table events
(
    aggregate_type text                         not null,
    aggregate_id   text                         not null,
    sequence       bigint check (sequence >= 0) not null,
    event_type     text                         not null,
    event_version  text                         not null,
    payload        json                         not null,
    metadata       json                         not null,
    -- when the row was written, for auditors
    recorded_at    timestamptz                  not null default clock_timestamp(),
    -- the writing transaction, from which the global commit order is derived
    transaction_id xid8                         not null default pg_current_xact_id(),
    primary key (aggregate_type, aggregate_id, sequence)
);

create table snapshots
(
    aggregate_type   text                                 not null,
    aggregate_id     text                                 not null,
    last_sequence    bigint check (last_sequence >= 0)    not null,
    current_snapshot bigint check (current_snapshot >= 0) not null,
    payload          json                                 not null,
    primary key (aggregate_type, aggregate_id, last_sequence)
);
