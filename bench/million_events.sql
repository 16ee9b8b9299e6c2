-- A synthetic history for measuring `concert replay` and `concert audit` on a
-- large log: :wallets wallets with :per_wallet charges each, inserted through
-- the events table's own trigger (hash chain) like any other event.
--   psql -v wallets=10000 -v per_wallet=100 -f bench/million_events.sql <database url>
insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
select 'Wallet',
       w.id::text,
       n,
       'Charged',
       '1',
       json_build_object('Charged', json_build_object(
           'charge_id', md5(w.id::text || n)::uuid, 'amount', 100, 'balance', 100 * n)),
       json_build_object('actor', 'bench', 'correlation_id', w.id)
from (select gen_random_uuid() as id from generate_series(1, :wallets)) w,
     generate_series(1, :per_wallet) n
order by w.id, n;
