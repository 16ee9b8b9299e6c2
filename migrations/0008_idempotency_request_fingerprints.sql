-- A key reused for a different request (another amount, another reservation)
-- is refused instead of answered with the first request's answer. Each kept
-- answer carries a SHA-256 of what its request asked; answers kept before
-- this migration have none and are returned to any retry, as before.
alter table idempotency_keys add column request_hash bytea;
