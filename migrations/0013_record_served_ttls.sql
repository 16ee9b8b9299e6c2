-- Each pair of TTLs the service was served with (CONCERT_HOLD_TTL_SECS,
-- CONCERT_QUEUE_ACTIVE_TTL_SECS), and the log position when a serve first
-- ran with it: an audit holds each hold and admission to a TTL served
-- before it. The events state a hold's and an admission's start and end,
-- not the setting they were made under; without this, a hold made to last
-- an hour where the service ran with five minutes passed as any hold
-- within a day. A pair served again keeps its first position: an instance
-- started with it may run beside later ones, so it stays allowed.
create table served_ttls
(
    hold_ttl_secs         integer     not null,
    queue_active_ttl_secs integer     not null,
    from_position         bigint      not null,
    served_at             timestamptz not null default now(),
    primary key (hold_ttl_secs, queue_active_ttl_secs)
);
