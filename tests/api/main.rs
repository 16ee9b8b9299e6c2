//! HTTP tests against the real service and a real PostgreSQL.

mod audit;
mod audit_paging;
mod bad_input;
mod booking;
mod checkpoints;
mod gathered_reads;
mod gave_up;
mod helpers;
mod history;
mod holds;
mod hostile;
mod identity;
mod identity_jwks;
mod operations;
mod payment_pipeline;
mod payments;
mod pipeline;
mod positions;
mod projector;
mod queue;
mod queue_entries;
mod recovery;
mod replay_swap;
mod scheduler_leadership;
mod store;
mod wallet;
