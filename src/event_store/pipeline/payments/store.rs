//! Storing a batch of accepted payments in one transaction: the events of
//! each aggregate type in one statement, a payment that lost a race on one
//! of its streams taken out again whole, then the snapshots and read models.

use std::collections::HashSet;

use sqlx::{Connection, PgConnection};

use super::decide::Accepted;
use super::PaymentWorker;
use crate::aggregates::{QueueTicket, Seat, Wallet};
use crate::event_store::pipeline::append::{
    delete_events, insert_events, project, store_snapshots, without, AppendError,
};
use crate::event_store::pipeline::decide::Decided;

impl PaymentWorker {
    /// Stores the accepted payments; returns the indexes of those that lost
    /// a race on any of their streams and were not stored.
    pub(super) async fn commit(
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
