//! The event store: postgres-es's tables, written by the command pipeline,
//! which stores a batch's events, the snapshots due and every read model the
//! events change in one transaction.
//!
//! postgres-es alone would commit the events and let cqrs-es hand them to the
//! queries in a second transaction: a crash in between loses the read-model
//! update, and every command pays for two commits. Here a read model is never
//! behind its log, so a command's answer is visible to every later query, and
//! a racing append still loses on the events table's key (the optimistic lock).

mod commit_signal;
mod pipeline;
mod projector;

pub use commit_signal::{CommitSignal, COMMITS_CHANNEL};
pub use pipeline::{
    AfterCommit, AnswerLost, Lane, Paid, PaymentLanes, PaymentOutcome, PaymentPipeline,
    PaymentRefused, PaymentSteps, Pipeline, Pipelined, Step, Unstorable, BATCHES_IN_FLIGHT,
    LOAD_STREAM, LOAD_STREAMS,
};
pub use projector::{ProjectionError, Projector, StreamEvents};
