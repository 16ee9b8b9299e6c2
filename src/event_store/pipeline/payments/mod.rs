//! The payment pipeline: the commands of a payment (debit the wallet, sell
//! the seat, spend the queue ticket) are decided together and stored in one
//! transaction, with those of every other payment waiting at that moment.
//!
//! A payment's commands are decided in turn, each on its stream's stored
//! state; when one is refused, none is stored. Two payments on one stream
//! never share a batch, so each is decided on what the log holds. A stream
//! that another writer appended to first (a charge, a hold's expiry, an
//! admission) fails only the payments on it, which are decided again; the
//! rest of the batch still commits.

mod decide;
mod store;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cqrs_es::AggregateError;
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use self::decide::{decide_all, Accepted};
use super::{failure, metadata_value, AnswerLost, Lane, Pipelined, LOST_RACES_ALLOWED};
use crate::aggregates::{
    QueueTicket, QueueTicketCommand, QueueTicketError, QueueTicketEvent, Seat, SeatCommand,
    SeatError, SeatEvent, Wallet, WalletCommand, WalletError, WalletEvent,
};
use crate::batching::{self, Batches, Queued};
use crate::db::Leased;
use crate::telemetry::PAYMENT;

/// One command of a payment: the stream, the command, the metadata stored
/// with its events.
pub struct Step<C> {
    pub aggregate_id: String,
    pub command: C,
    pub metadata: HashMap<String, String>,
}

/// What a payment asks: the debit, the sale and, where a ticket is spent, its expiry.
pub struct PaymentSteps {
    pub debit: Step<WalletCommand>,
    pub sale: Step<SeatCommand>,
    pub spend: Option<Step<QueueTicketCommand>>,
}

/// The events a payment stored: none for a step that had already happened.
#[derive(Debug, Default)]
pub struct Paid {
    pub debit: Vec<WalletEvent>,
    pub sale: Vec<SeatEvent>,
    pub spend: Vec<QueueTicketEvent>,
}

/// The rule that refused a payment; nothing of it was stored.
#[derive(Debug, thiserror::Error)]
pub enum PaymentRefused {
    #[error(transparent)]
    Wallet(WalletError),
    #[error(transparent)]
    Seat(SeatError),
    #[error(transparent)]
    Ticket(QueueTicketError),
}

/// What a payment's sender is told.
pub type PaymentOutcome = Result<Paid, AggregateError<PaymentRefused>>;

/// The write side of payments: wallets, seats and tickets together.
pub struct PaymentPipeline {
    jobs: mpsc::UnboundedSender<PaymentJob>,
}

/// How the three kinds of stream a payment writes are stored.
pub struct PaymentLanes {
    pub wallets: Lane<Wallet>,
    pub seats: Lane<Seat>,
    pub tickets: Lane<QueueTicket>,
}

impl PaymentPipeline {
    /// A pipeline storing through `pool` as `lanes` say; its worker runs
    /// until the pipeline is dropped.
    pub fn start(pool: PgPool, lanes: PaymentLanes, deadline: Duration) -> Self {
        let (jobs, queue) = mpsc::unbounded_channel();
        let worker = PaymentWorker { pool, lanes };
        tokio::spawn(batching::dispatch(Arc::new(worker), queue, deadline));
        Self { jobs }
    }

    /// Decides and stores every step of `steps`, or none; answers once committed.
    pub async fn execute(&self, steps: PaymentSteps) -> PaymentOutcome {
        let (answer, answered) = oneshot::channel();
        let mut streams = vec![
            stream_key::<Wallet>(&steps.debit.aggregate_id),
            stream_key::<Seat>(&steps.sale.aggregate_id),
        ];
        if let Some(spend) = &steps.spend {
            streams.push(stream_key::<QueueTicket>(&spend.aggregate_id));
        }
        let job = PaymentJob {
            debit: Command::from(steps.debit),
            sale: Command::from(steps.sale),
            spend: steps.spend.map(Command::from),
            streams,
            lost_races: 0,
            answer,
        };
        if self.jobs.send(job).is_err() {
            return Err(failure("the payment pipeline has stopped"));
        }
        answered
            .await
            .unwrap_or_else(|_| Err(AggregateError::UnexpectedError(Box::new(AnswerLost))))
    }
}

/// A stream's name, unique across aggregate types.
fn stream_key<A: Pipelined>(aggregate_id: &str) -> String {
    format!("{}/{aggregate_id}", A::TYPE)
}

/// A step as the worker keeps it: the metadata already in its stored form.
struct Command<C> {
    aggregate_id: String,
    command: C,
    metadata: Value,
}

impl<C> From<Step<C>> for Command<C> {
    fn from(step: Step<C>) -> Self {
        Self {
            aggregate_id: step.aggregate_id,
            command: step.command,
            metadata: metadata_value(step.metadata),
        }
    }
}

/// A payment waiting in the pipeline.
struct PaymentJob {
    debit: Command<WalletCommand>,
    sale: Command<SeatCommand>,
    spend: Option<Command<QueueTicketCommand>>,
    streams: Vec<String>,
    lost_races: u32,
    answer: oneshot::Sender<PaymentOutcome>,
}

impl Queued for PaymentJob {
    const SHARE_A_BATCH: bool = false;

    fn streams(&self) -> impl Iterator<Item = &str> {
        self.streams.iter().map(String::as_str)
    }

    fn abandoned(&self) -> bool {
        self.answer.is_closed()
    }
}

struct PaymentWorker {
    pool: PgPool,
    lanes: PaymentLanes,
}

impl Batches<PaymentJob> for PaymentWorker {
    async fn run_batch(&self, jobs: Vec<PaymentJob>) -> Vec<PaymentJob> {
        metrics::histogram!("concert_pipeline_batch_size", "aggregate" => PAYMENT)
            .record(jobs.len() as f64);
        let mut conn = match Leased::acquire(&self.pool).await {
            Ok(conn) => conn,
            Err(error) => {
                fail_all(jobs, &error);
                return Vec::new();
            }
        };
        let accepted = match decide_all(&mut conn, jobs).await {
            Ok(accepted) => accepted,
            Err((jobs, error)) => {
                fail_all(jobs, &error);
                return Vec::new();
            }
        };
        let (writing, unchanged): (Vec<Accepted>, Vec<Accepted>) =
            accepted.into_iter().partition(Accepted::writes);
        for payment in unchanged {
            let _ = payment.job.answer.send(Ok(Paid::default()));
        }
        if writing.is_empty() {
            conn.release();
            return Vec::new();
        }
        let outcome = self.commit(&mut conn, &writing).await;
        conn.finish(outcome.is_ok()).await;
        let mut carried = Vec::new();
        for (at, payment) in writing.into_iter().enumerate() {
            match &outcome {
                Ok(lost) if lost.contains(&at) => {
                    metrics::counter!("concert_pipeline_lost_races_total", "aggregate" => PAYMENT)
                        .increment(1);
                    decide_again(payment.job, &mut carried);
                }
                Ok(_) => {
                    self.lanes.wallets.committed(&payment.debit);
                    self.lanes.seats.committed(&payment.sale);
                    if let Some(spend) = &payment.spend {
                        self.lanes.tickets.committed(spend);
                    }
                    let paid = payment.paid();
                    let _ = payment.job.answer.send(Ok(paid));
                }
                Err(error) if error.is_race() => decide_again(payment.job, &mut carried),
                Err(error) => fail_all([payment.job], error),
            }
        }
        carried
    }
}

/// The payment lost a race on one of its streams: it goes to the next batch.
fn decide_again(mut job: PaymentJob, carried: &mut Vec<PaymentJob>) {
    job.lost_races += 1;
    if job.lost_races >= LOST_RACES_ALLOWED {
        let _ = job.answer.send(Err(AggregateError::AggregateConflict));
    } else {
        carried.push(job);
    }
}

fn fail_all(jobs: impl IntoIterator<Item = PaymentJob>, cause: &dyn std::fmt::Display) {
    let message = cause.to_string();
    for job in jobs {
        let _ = job.answer.send(Err(failure(&message)));
    }
}
