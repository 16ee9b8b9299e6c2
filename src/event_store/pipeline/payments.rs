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

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use cqrs_es::AggregateError;
use serde_json::Value;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot};

use super::append::{delete_events, insert_events, project, store_snapshots, without, AppendError};
use super::decide::{decide_alone, Decided};
use super::dispatch::{self, Batches, Queued};
use super::load::{load_streams, Loaded};
use super::{failure, metadata_value, Lane, Pipelined, LOST_RACES_ALLOWED};
use crate::aggregates::{
    QueueTicket, QueueTicketCommand, QueueTicketError, QueueTicketEvent, Seat, SeatCommand,
    SeatError, SeatEvent, Wallet, WalletCommand, WalletError, WalletEvent,
};

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
    pub fn start(pool: PgPool, lanes: PaymentLanes) -> Self {
        let (jobs, queue) = mpsc::unbounded_channel();
        let worker = PaymentWorker { pool, lanes };
        tokio::spawn(dispatch::dispatch(Arc::new(worker), queue));
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
            .unwrap_or_else(|_| Err(failure("the payment pipeline has stopped")))
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
}

/// A payment whose every step was accepted, not yet stored.
struct Accepted {
    job: PaymentJob,
    debit: Decided<Wallet>,
    sale: Decided<Seat>,
    spend: Option<Decided<QueueTicket>>,
}

impl Accepted {
    fn writes(&self) -> bool {
        !self.debit.events.is_empty()
            || !self.sale.events.is_empty()
            || self
                .spend
                .as_ref()
                .is_some_and(|spend| !spend.events.is_empty())
    }

    fn paid(&self) -> Paid {
        fn events<A: Pipelined>(decided: &Decided<A>) -> Vec<A::Event> {
            decided
                .events
                .iter()
                .map(|(event, _)| event.clone())
                .collect()
        }
        Paid {
            debit: events(&self.debit),
            sale: events(&self.sale),
            spend: self.spend.as_ref().map(events).unwrap_or_default(),
        }
    }
}

struct PaymentWorker {
    pool: PgPool,
    lanes: PaymentLanes,
}

impl Batches<PaymentJob> for PaymentWorker {
    async fn run_batch(&self, jobs: Vec<PaymentJob>) -> Vec<PaymentJob> {
        metrics::histogram!("concert_pipeline_batch_size", "aggregate" => "Payment")
            .record(jobs.len() as f64);
        let mut conn = match self.pool.acquire().await {
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
            return Vec::new();
        }
        let outcome = self.commit(&mut conn, &writing).await;
        if outcome.is_err() {
            // The connection may be left mid-transaction; do not reuse it.
            let _ = conn.detach().close().await;
        }
        let mut carried = Vec::new();
        for (at, payment) in writing.into_iter().enumerate() {
            match &outcome {
                Ok(lost) if lost.contains(&at) => {
                    metrics::counter!("concert_pipeline_lost_races_total", "aggregate" => "Payment")
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

impl PaymentWorker {
    /// Stores the accepted payments; returns the indexes of those that lost
    /// a race on any of their streams and were not stored.
    async fn commit(
        &self,
        conn: &mut PgConnection,
        payments: &[Accepted],
    ) -> Result<HashSet<usize>, AppendError> {
        let all = Writes::of(payments.iter());
        let mut tx = conn.begin().await?;
        let lost_debits = insert_events(&mut tx, &all.debits).await?;
        let lost_sales = insert_events(&mut tx, &all.sales).await?;
        let lost_spends = insert_events(&mut tx, &all.spends).await?;
        let (losers, winners): (Vec<_>, Vec<_>) =
            payments
                .iter()
                .enumerate()
                .partition(|(_, p): &(usize, &Accepted)| {
                    lost_debits.contains(&p.debit.aggregate_id)
                        || lost_sales.contains(&p.sale.aggregate_id)
                        || p.spend
                            .as_ref()
                            .is_some_and(|spend| lost_spends.contains(&spend.aggregate_id))
                });
        // A payment that lost on one stream takes its other streams' events out again.
        let undo = Writes::of(losers.iter().map(|(_, p)| *p));
        delete_events(&mut tx, &without(&undo.debits, &lost_debits)).await?;
        delete_events(&mut tx, &without(&undo.sales, &lost_sales)).await?;
        delete_events(&mut tx, &without(&undo.spends, &lost_spends)).await?;
        let stored = Writes::of(winners.iter().map(|(_, p)| *p));
        // Only wallets keep snapshots here; a snapshot moved on by another
        // writer means that writer appended too, so the whole batch goes again.
        let snapshots_every = self.lanes.wallets.snapshot_every;
        if !store_snapshots(&mut tx, &stored.debits, snapshots_every)
            .await?
            .is_empty()
        {
            return Err(AppendError::Raced);
        }
        project(&mut tx, &stored.debits, &self.lanes.wallets.projector).await?;
        project(&mut tx, &stored.sales, &self.lanes.seats.projector).await?;
        project(&mut tx, &stored.spends, &self.lanes.tickets.projector).await?;
        tx.commit().await?;
        Ok(losers.into_iter().map(|(at, _)| at).collect())
    }
}

/// Loads every stream of `jobs` (a query per aggregate type) and decides
/// each payment's steps in turn; a refused payment is answered at once.
async fn decide_all(
    conn: &mut PgConnection,
    jobs: Vec<PaymentJob>,
) -> Result<Vec<Accepted>, (Vec<PaymentJob>, crate::event_store::ProjectionError)> {
    let wallet_ids: Vec<&str> = jobs.iter().map(|j| j.debit.aggregate_id.as_str()).collect();
    let seat_ids: Vec<&str> = jobs.iter().map(|j| j.sale.aggregate_id.as_str()).collect();
    let ticket_ids: Vec<&str> = jobs
        .iter()
        .filter_map(|j| j.spend.as_ref().map(|spend| spend.aggregate_id.as_str()))
        .collect();
    let loaded = async {
        let wallets = load_streams::<Wallet>(conn, &wallet_ids).await?;
        let seats = load_streams::<Seat>(conn, &seat_ids).await?;
        let tickets = match ticket_ids.is_empty() {
            true => HashMap::new(),
            false => load_streams::<QueueTicket>(conn, &ticket_ids).await?,
        };
        Ok((wallets, seats, tickets))
    }
    .await;
    let (mut wallets, mut seats, mut tickets) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return Err((jobs, error)),
    };
    let mut accepted = Vec::with_capacity(jobs.len());
    for job in jobs {
        match decide_payment(&job, &mut wallets, &mut seats, &mut tickets).await {
            Ok((debit, sale, spend)) => accepted.push(Accepted {
                job,
                debit,
                sale,
                spend,
            }),
            Err(refused) => {
                let _ = job.answer.send(Err(AggregateError::UserError(refused)));
            }
        }
    }
    Ok(accepted)
}

/// The streams with new events of some payments, by aggregate type.
struct Writes<'a> {
    debits: Vec<&'a Decided<Wallet>>,
    sales: Vec<&'a Decided<Seat>>,
    spends: Vec<&'a Decided<QueueTicket>>,
}

impl<'a> Writes<'a> {
    fn of(payments: impl Iterator<Item = &'a Accepted>) -> Self {
        let mut writes = Writes {
            debits: Vec::new(),
            sales: Vec::new(),
            spends: Vec::new(),
        };
        for payment in payments {
            if !payment.debit.events.is_empty() {
                writes.debits.push(&payment.debit);
            }
            if !payment.sale.events.is_empty() {
                writes.sales.push(&payment.sale);
            }
            if let Some(spend) = payment.spend.as_ref().filter(|s| !s.events.is_empty()) {
                writes.spends.push(spend);
            }
        }
        writes
    }
}

type DecidedPayment = (Decided<Wallet>, Decided<Seat>, Option<Decided<QueueTicket>>);

/// The debit, then the sale, then the ticket's expiry, each on its stream as loaded.
async fn decide_payment(
    job: &PaymentJob,
    wallets: &mut HashMap<String, Loaded<Wallet>>,
    seats: &mut HashMap<String, Loaded<Seat>>,
    tickets: &mut HashMap<String, Loaded<QueueTicket>>,
) -> Result<DecidedPayment, PaymentRefused> {
    let debit = decide_step(&job.debit, wallets)
        .await
        .map_err(PaymentRefused::Wallet)?;
    let sale = decide_step(&job.sale, seats)
        .await
        .map_err(PaymentRefused::Seat)?;
    let spend = match &job.spend {
        Some(spend) => Some(
            decide_step(spend, tickets)
                .await
                .map_err(PaymentRefused::Ticket)?,
        ),
        None => None,
    };
    Ok((debit, sale, spend))
}

async fn decide_step<A: Pipelined>(
    step: &Command<A::Command>,
    loaded: &mut HashMap<String, Loaded<A>>,
) -> Result<Decided<A>, A::Error> {
    let state = loaded.remove(&step.aggregate_id).unwrap_or_default();
    decide_alone(
        step.aggregate_id.clone(),
        state,
        step.command.clone(),
        &step.metadata,
    )
    .await
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
