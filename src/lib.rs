//! concert: an event-sourced CQRS backend for booking concert seats.

/// Aggregates: the rules, and the events they record.
pub mod aggregates;
/// The HTTP API.
pub mod api;
/// Checking the whole history.
pub mod audit;
/// Copying the store out and back: `concert backup` and `concert restore`.
pub mod backup;
/// Gathering work that waits for the database into batches.
pub mod batching;
/// Booking steps that span several commands.
pub mod booking;
/// The present, to the precision the database keeps.
pub mod clock;
/// Sending commands with metadata and conflict retries.
pub mod commands;
/// The command line and settings.
pub mod config;
/// Connecting and migrating the database.
pub mod db;
/// The sample concert of `serve --demo`.
pub mod demo;
/// Serving on, not ready, between a stop signal and the stop.
pub mod draining;
/// Holds cut short by their date's start, which the scheduler wakes for.
pub mod early_holds;
/// One queue entry at a time per user and concert on an instance.
pub mod entry_turns;
/// The event log in global commit order.
pub mod event_log;
/// The event store: appends that write their read models too.
pub mod event_store;
/// Printing the event history.
pub mod history;
/// User tokens: who the caller is.
pub mod identity;
/// Typed ids.
pub mod ids;
/// Live updates: the feed behind the Server-Sent Event streams.
pub mod live;
/// Sampling the log, queues and pool into metrics.
pub mod metrics_sampler;
/// Money in won, with checked sums.
pub mod money;
pub mod queue_gauges;
/// A private PostgreSQL server when no DATABASE_URL is given (the
/// `concert-private-postgres` crate of the workspace).
pub use concert_private_postgres as private_postgres;
/// Progress bars for long work.
pub mod progress;
/// How far the read models are behind the event log.
pub mod projection_lag;
/// Read models fed by events.
pub mod projections;
/// Rebuilding the read models from the log.
pub mod replay;
/// The scheduler of expiries, admissions and payment recovery.
pub mod scheduler;
/// What the service last ran with, for the tools that read the log later.
pub mod served_settings;
/// Preparing and running the service.
pub mod server;
/// What `main` checks and takes before a database starts.
pub mod startup;
/// Shared state of handlers and scheduler.
pub mod state;
/// Logs and metrics.
pub mod telemetry;
/// Stored text made safe to print on a terminal.
pub mod terminal;
/// Signed queue tokens.
pub mod tokens;
