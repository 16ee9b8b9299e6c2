//! The command pipeline: commands waiting for the database are decided and
//! committed together.
//!
//! Each aggregate type has one queue. While a batch commits, the next one
//! gathers (no timer: a lone command on an idle service goes at once); a
//! second batch may run beside it on other streams (`crate::batching`). A
//! batch loads all its aggregates in one query, decides every
//! command with the aggregate's own `handle` (commands to one stream in turn,
//! each on the state the one before it left), and stores every event, the
//! snapshots due and every read-model change in one transaction with a few
//! set-based statements. A stream another writer appended to first is taken
//! out of the batch and its commands are decided again on the new state; the
//! rest of the batch still commits.

mod append;
mod decide;
mod group;
mod load;
mod payments;
mod worker;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cqrs_es::{Aggregate, AggregateError};
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

pub use self::payments::{
    Paid, PaymentLanes, PaymentOutcome, PaymentPipeline, PaymentRefused, PaymentSteps, Step,
};
pub use crate::batching::BATCHES_IN_FLIGHT;

pub use self::append::Unstorable;
use self::decide::{Decided, Job, Outcome};
use self::group::Group;
pub use self::load::{LOAD_STREAM, LOAD_STREAMS};
use self::worker::Worker;
use crate::batching;
use crate::event_store::{CommitSignal, Projector};

/// How many times a command is decided again after losing a race to another
/// writer before its sender is told of the conflict. Instances hammering one
/// stream each win a round now and then, so a command fails only after
/// losing every round: ten rounds refused 3–9 % of the charges to one wallet
/// sent through three instances at once. A request that gives up first has
/// its command dropped (`batching::Queued::abandoned`); this bound is a
/// backstop.
const LOST_RACES_ALLOWED: u32 = 100;

/// An aggregate whose commands can wait in a pipeline's queue and worker.
pub trait Pipelined:
    Aggregate<Services = (), Command: Clone + Send + Sync, Error: Send + Sync> + 'static
{
}

impl<A> Pipelined for A where
    A: Aggregate<Services = (), Command: Clone + Send + Sync, Error: Send + Sync> + 'static
{
}

/// Told of each new event once its batch has committed, before any command
/// of the batch is answered: a copy kept in memory can then show a client
/// its own write at once.
pub trait AfterCommit<A: Aggregate>: Send + Sync {
    /// `event` was stored in `aggregate_id` at `sequence`; `aggregate` is the
    /// stream's state after the batch.
    fn committed(&self, aggregate_id: &str, aggregate: &A, sequence: usize, event: &A::Event);
}

/// How the events of one aggregate type are stored beside them: its read
/// models, its snapshots, and who is told of them after the commit.
pub struct Lane<A: Aggregate> {
    /// Every read model, written in each commit.
    pub projector: Arc<Projector<A>>,
    /// A snapshot every this many events of a stream.
    pub snapshot_every: Option<usize>,
    /// Told of each event stored.
    pub after_commit: Option<Arc<dyn AfterCommit<A>>>,
    /// Raised after each commit that stored events, for every instance's feed.
    pub signal: Option<CommitSignal>,
}

impl<A: Aggregate> Lane<A> {
    /// Raises the commit signal and tells `after_commit` of the events of
    /// `decided`, now committed.
    fn committed(&self, decided: &Decided<A>) {
        if let Some(signal) = &self.signal {
            signal.raise();
        }
        if let Some(after_commit) = &self.after_commit {
            for (at, (event, _)) in decided.events.iter().enumerate() {
                let sequence = decided.loaded_sequence + 1 + at;
                after_commit.committed(&decided.aggregate_id, &decided.aggregate, sequence, event);
            }
        }
    }
}

/// The write side of one aggregate type.
pub struct Pipeline<A: Aggregate> {
    jobs: mpsc::UnboundedSender<Group<A>>,
    done_when_abandoned: bool,
    groups_sent: AtomicU64,
}

impl<A: Pipelined> Pipeline<A> {
    /// A pipeline storing through `pool` as `lane` says. Its worker runs
    /// until the pipeline is dropped, and gives up a batch still running
    /// after `deadline` (`batching::batch_deadline`).
    pub fn start(pool: PgPool, lane: Lane<A>, deadline: Duration) -> Self {
        let (jobs, queue) = mpsc::unbounded_channel();
        let worker = Arc::new(Worker { pool, lane });
        tokio::spawn(batching::dispatch(worker, queue, deadline));
        Self {
            jobs,
            done_when_abandoned: false,
            groups_sent: AtomicU64::new(0),
        }
    }

    /// Decides every command, also one whose sender stopped waiting (its
    /// request timed out), which is otherwise dropped before a batch takes
    /// it. For commands that a retry finds rather than repeats, and whose
    /// dropping would leave something behind: a queue entry's number.
    pub fn doing_abandoned_commands(mut self) -> Self {
        self.done_when_abandoned = true;
        self
    }

    /// Decides and stores `command` on the stream `aggregate_id`, with
    /// `metadata` on each of its events; answers once it is committed.
    pub async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: HashMap<String, String>,
    ) -> Outcome<A> {
        let mut outcomes = self
            .execute_together(vec![(aggregate_id.to_string(), command, metadata)])
            .await;
        outcomes.remove(0)
    }

    /// Decides `commands` (stream, command, metadata) in one batch and
    /// stores them in one commit: if that commit fails, every one fails. A
    /// stream another writer appended to first is decided again on its own,
    /// as in any batch, and so is each stream of a batch holding a value the
    /// store refuses. Answers each command's outcome, in order.
    pub async fn execute_together(
        &self,
        commands: Vec<(String, A::Command, HashMap<String, String>)>,
    ) -> Vec<Outcome<A>> {
        if commands.is_empty() {
            // Sent, it would be dropped as abandoned (nobody waits on it).
            return Vec::new();
        }
        let group = self.groups_sent.fetch_add(1, Ordering::Relaxed);
        let (jobs, answers): (Vec<Job<A>>, Vec<_>) = commands
            .into_iter()
            .map(|(aggregate_id, command, metadata)| {
                let (answer, answered) = oneshot::channel();
                let job = Job {
                    aggregate_id,
                    command,
                    metadata: metadata_value(metadata),
                    lost_races: 0,
                    answer,
                    done_when_abandoned: self.done_when_abandoned,
                    group,
                };
                (job, answered)
            })
            .unzip();
        // A failed send drops the jobs, and with them every answer's sender.
        let _ = self.jobs.send(Group(jobs));
        let mut outcomes = Vec::with_capacity(answers.len());
        for answered in answers {
            outcomes.push(
                answered
                    .await
                    .unwrap_or_else(|_| Err(AggregateError::UnexpectedError(Box::new(AnswerLost)))),
            );
        }
        outcomes
    }
}

/// Metadata as stored with an event: a JSON object of strings.
fn metadata_value(metadata: HashMap<String, String>) -> Value {
    Value::Object(
        metadata
            .into_iter()
            .map(|(key, value)| (key, Value::String(value)))
            .collect(),
    )
}

/// A command whose batch ended without answering it: given up at its
/// deadline (`batching::batch_deadline`), panicked, or the pipeline
/// stopped. It may still be stored: a commit sent on a connection whose
/// server stopped answering can land once it answers again. Answered `503`;
/// nothing that hangs on its outcome may be undone on its account.
#[derive(Debug, thiserror::Error)]
#[error("the command's batch ended without an answer; it may still be stored")]
pub struct AnswerLost;

/// A failure of the store, as cqrs-es reports one.
fn failure<E: std::error::Error>(message: &str) -> AggregateError<E> {
    AggregateError::DatabaseConnectionError(message.to_string().into())
}
