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

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cqrs_es::{Aggregate, AggregateError};
use serde_json::Value;
use sqlx::{Connection, PgPool};
use tokio::sync::{mpsc, oneshot};

pub use self::payments::{
    Paid, PaymentLanes, PaymentOutcome, PaymentPipeline, PaymentRefused, PaymentSteps, Step,
};
pub use crate::batching::BATCHES_IN_FLIGHT;

pub use self::append::Unstorable;
use self::append::{append, AppendError};
use self::decide::{decide, Decided, Job, Outcome, Verdict};
use self::group::Group;
use self::load::load_streams;
pub use self::load::{LOAD_STREAM, LOAD_STREAMS};
use crate::batching;
use crate::db::Leased;
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

struct Worker<A: Aggregate> {
    pool: PgPool,
    lane: Lane<A>,
}

impl<A: Pipelined> batching::Batches<Group<A>> for Worker<A> {
    async fn run_batch(&self, groups: Vec<Group<A>>) -> Vec<Group<A>> {
        let jobs = groups.into_iter().flat_map(|group| group.0).collect();
        Group::regroup(self.run_jobs(jobs).await)
    }
}

impl<A: Pipelined> Worker<A> {
    async fn run_jobs(&self, jobs: Vec<Job<A>>) -> Vec<Job<A>> {
        metrics::histogram!("concert_pipeline_batch_size", "aggregate" => A::TYPE)
            .record(jobs.len() as f64);
        let streams = by_stream(jobs);
        let mut conn = match Leased::acquire(&self.pool).await {
            Ok(conn) => conn,
            Err(error) => {
                fail_all(streams.into_iter().flat_map(|(_, jobs)| jobs), &error);
                return Vec::new();
            }
        };
        let ids: Vec<&str> = streams.iter().map(|(id, _)| id.as_str()).collect();
        let mut loaded = match load_streams::<A>(&mut conn, &ids).await {
            Ok(loaded) => loaded,
            Err(error) => {
                fail_all(streams.into_iter().flat_map(|(_, jobs)| jobs), &error);
                return Vec::new();
            }
        };
        let mut carried = Vec::new();
        let mut writing = Vec::new();
        for (aggregate_id, jobs) in streams {
            let state = loaded.remove(&aggregate_id).unwrap_or_default();
            let mut decided = decide(aggregate_id, state, jobs, &()).await;
            if decided.events.is_empty() {
                // Nothing to store: every verdict stands on the stored state.
                answer_all(decided.verdicts);
                carried.append(&mut decided.deferred);
            } else {
                writing.push(decided);
            }
        }
        if writing.is_empty() {
            conn.release();
            return carried;
        }
        let outcome = self.commit(&mut conn, &writing).await;
        conn.finish(outcome.is_ok()).await;
        if writing.len() > 1 && outcome.as_ref().is_err_and(AppendError::is_unstorable) {
            // A value the store refuses (a data exception) fails the whole
            // transaction, whichever command holds it: each stream is
            // stored alone, so that only its own commands are refused.
            for decided in writing {
                let outcome = self.commit_alone(&decided).await;
                self.settle(decided, &outcome, &mut carried);
            }
            return carried;
        }
        for decided in writing {
            self.settle(decided, &outcome, &mut carried);
        }
        carried
    }

    /// Answers the commands of `decided` as its commit went.
    fn settle(
        &self,
        decided: Decided<A>,
        outcome: &Result<std::collections::HashSet<String>, AppendError>,
        carried: &mut Vec<Job<A>>,
    ) {
        match outcome {
            Ok(lost) if lost.contains(&decided.aggregate_id) => {
                metrics::counter!("concert_pipeline_lost_races_total", "aggregate" => A::TYPE)
                    .increment(1);
                decide_again(decided, carried);
            }
            Ok(_) => {
                self.lane.committed(&decided);
                answer_all(decided.verdicts);
                carried.extend(decided.deferred);
            }
            Err(error) if error.is_race() => decide_again(decided, carried),
            Err(error) if error.is_unstorable() => {
                // The accepted commands of the stream are refused for what
                // they hold; a command refused on the state they left, and
                // those not decided yet, are decided again without them.
                tracing::warn!(aggregate = A::TYPE, aggregate_id = %decided.aggregate_id, %error,
                    "the store refused a value of a command; its commands are refused");
                metrics::counter!("concert_pipeline_unstorable_total", "aggregate" => A::TYPE)
                    .increment(1);
                for (job, verdict) in decided.verdicts {
                    if verdict.is_err() {
                        carried.push(job);
                        continue;
                    }
                    let refused = Unstorable(error.to_string());
                    let _ = job
                        .answer
                        .send(Err(AggregateError::UnexpectedError(Box::new(refused))));
                }
                carried.extend(decided.deferred);
            }
            Err(error) => fail_all(
                decided
                    .verdicts
                    .into_iter()
                    .map(|(job, _)| job)
                    .chain(decided.deferred),
                error,
            ),
        }
    }

    /// Stores one stream of a batch in a transaction of its own.
    async fn commit_alone(
        &self,
        decided: &Decided<A>,
    ) -> Result<std::collections::HashSet<String>, AppendError> {
        let mut conn = Leased::acquire(&self.pool).await?;
        let outcome = self.commit(&mut conn, std::slice::from_ref(decided)).await;
        conn.finish(outcome.is_ok()).await;
        outcome
    }

    async fn commit(
        &self,
        conn: &mut sqlx::PgConnection,
        writing: &[Decided<A>],
    ) -> Result<std::collections::HashSet<String>, AppendError> {
        let mut tx = conn.begin().await?;
        let streams: Vec<&Decided<A>> = writing.iter().collect();
        let lost = append(
            &mut tx,
            &streams,
            &self.lane.projector,
            self.lane.snapshot_every,
        )
        .await?;
        tx.commit().await?;
        Ok(lost)
    }
}

/// The jobs grouped by stream, streams in the order of their first command.
fn by_stream<A: Aggregate>(jobs: Vec<Job<A>>) -> Vec<(String, Vec<Job<A>>)> {
    let mut index: HashMap<String, usize> = HashMap::with_capacity(jobs.len());
    let mut streams: Vec<(String, Vec<Job<A>>)> = Vec::new();
    for job in jobs {
        match index.get(&job.aggregate_id) {
            Some(&at) => streams[at].1.push(job),
            None => {
                index.insert(job.aggregate_id.clone(), streams.len());
                streams.push((job.aggregate_id.clone(), vec![job]));
            }
        }
    }
    streams
}

/// A stream lost the race: its commands, in order, go to the next batch.
fn decide_again<A: Aggregate>(decided: Decided<A>, carried: &mut Vec<Job<A>>) {
    for (mut job, _) in decided.verdicts {
        job.lost_races += 1;
        if job.lost_races >= LOST_RACES_ALLOWED {
            let _ = job.answer.send(Err(AggregateError::AggregateConflict));
        } else {
            carried.push(job);
        }
    }
    carried.extend(decided.deferred);
}

fn answer_all<A: Aggregate>(verdicts: Vec<Verdict<A>>) {
    for (job, verdict) in verdicts {
        // A sender that stopped waiting (its request timed out) is not an error.
        let _ = job.answer.send(verdict.map_err(AggregateError::UserError));
    }
}

fn fail_all<A: Aggregate>(jobs: impl IntoIterator<Item = Job<A>>, cause: &dyn std::fmt::Display) {
    let message = cause.to_string();
    for job in jobs {
        let _ = job.answer.send(Err(failure(&message)));
    }
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
