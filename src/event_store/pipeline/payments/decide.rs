//! Deciding a batch of payments: every stream loaded in one query per
//! aggregate type, then each payment's steps in turn on its own streams.

use std::collections::HashMap;

use cqrs_es::AggregateError;
use sqlx::PgConnection;

use super::{Command, Paid, PaymentJob, PaymentRefused};
use crate::aggregates::{QueueTicket, QueueTicketError, Seat, Wallet};
use crate::event_store::pipeline::decide::{decide_alone, Decided};
use crate::event_store::pipeline::load::{load_streams, Loaded};
use crate::event_store::pipeline::Pipelined;
use crate::event_store::ProjectionError;

/// A payment whose every step was accepted, not yet stored.
pub(super) struct Accepted {
    pub job: PaymentJob,
    pub debit: Decided<Wallet>,
    pub sale: Decided<Seat>,
    pub spend: Option<Decided<QueueTicket>>,
}

impl Accepted {
    pub fn writes(&self) -> bool {
        !self.debit.events.is_empty()
            || !self.sale.events.is_empty()
            || self
                .spend
                .as_ref()
                .is_some_and(|spend| !spend.events.is_empty())
    }

    pub fn paid(&self) -> Paid {
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

/// Loads every stream of `jobs` (a query per aggregate type) and decides
/// each payment's steps in turn; a refused payment is answered at once.
pub(super) async fn decide_all(
    conn: &mut PgConnection,
    jobs: Vec<PaymentJob>,
) -> Result<Vec<Accepted>, (Vec<PaymentJob>, ProjectionError)> {
    let wallet_ids: Vec<&str> = jobs.iter().map(|j| j.debit.aggregate_id.as_str()).collect();
    let seat_ids: Vec<&str> = jobs.iter().map(|j| j.sale.aggregate_id.as_str()).collect();
    let ticket_ids: Vec<&str> = jobs
        .iter()
        .filter_map(|j| j.spend.as_ref().map(|spend| spend.aggregate_id.as_str()))
        .collect();
    // The tickets first: each query sees what was committed when it began,
    // so a ticket read as spent comes with the wallet and seat its payment
    // left. Read last, a ticket spent by a payment committed between the
    // queries was seen with a wallet from before that payment: a duplicate
    // of that same payment looked like a second one, and was refused 401
    // instead of being found stale at the append and decided again.
    let loaded = async {
        let tickets = match ticket_ids.is_empty() {
            true => HashMap::new(),
            false => load_streams::<QueueTicket>(conn, &ticket_ids).await?,
        };
        let wallets = load_streams::<Wallet>(conn, &wallet_ids).await?;
        let seats = load_streams::<Seat>(conn, &seat_ids).await?;
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
    // The token pays for one seat. Its expiry is a step of the payment, so a
    // ticket already expired (spent by another of its holder's payments
    // committed since this one read it as active, or lapsed meanwhile)
    // refuses a new debit, as the token's check does when the expiry came
    // first. A retry of a payment that went through debits nothing, and is
    // answered as before.
    let spent_already = spend.as_ref().is_some_and(|spend| spend.events.is_empty());
    if spent_already && !debit.events.is_empty() {
        return Err(PaymentRefused::Ticket(QueueTicketError::Expired));
    }
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
