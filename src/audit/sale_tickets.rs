//! The queue tickets that paid: a sale names a ticket of its buyer for its
//! seat's concert, each ticket pays for one seat, and once sales name their
//! tickets, every later payment's sale names one. Sales of version 1 (written
//! before sales named their tickets) are judged by the other rules alone:
//! some paid with a ticket that had already paid, which that release allowed.

use std::collections::HashMap;

use crate::aggregates::SeatEvent;
use crate::event_log::RawEvent;
use crate::ids::{ConcertId, PaymentId, TicketId, UserId};

use super::payments::PaymentCheck;
use super::Violation;

const OWN_TICKET: &str = "a seat is paid with a ticket of its buyer for its concert";
const ONE_SEAT_A_TICKET: &str = "a queue ticket pays for one seat";
const SALE_NAMES_TICKET: &str = "a sale names the queue ticket that paid for it";

/// The sale each ticket paid for, and the sales that named none.
#[derive(Debug, Default)]
pub(super) struct SaleTicketCheck {
    spent: HashMap<TicketId, String>,
    /// The position of the first sale that named its ticket.
    named_since: Option<i64>,
    /// Sales that named no ticket: their payment and label.
    unnamed: Vec<(PaymentId, String)>,
}

impl SaleTicketCheck {
    /// Records a sale of a seat held for `concert` (`None` when the log
    /// has no hold or date for it, which other rules name); `owner` tells
    /// a ticket's user and concert.
    pub(super) fn apply(
        &mut self,
        row: &RawEvent,
        event: &SeatEvent,
        concert: Option<ConcertId>,
        owner: impl Fn(&str) -> Option<(UserId, ConcertId)>,
        found: &mut Vec<Violation>,
    ) {
        let SeatEvent::SeatSold {
            payment_id,
            user_id,
            ticket_id,
            ..
        } = event
        else {
            return;
        };
        let Some(ticket_id) = ticket_id else {
            self.unnamed.push((*payment_id, row.label()));
            return;
        };
        self.named_since.get_or_insert(row.position);
        match owner(&ticket_id.to_string()) {
            None => found.push(Violation::new(
                OWN_TICKET,
                format!("ticket {ticket_id} never entered the queue"),
                vec![row.label()],
            )),
            Some((holder, of_concert))
                if holder != *user_id || concert.is_some_and(|c| c != of_concert) =>
            {
                let detail = format!(
                    "sold to user {user_id} with ticket {ticket_id} of user {holder} for concert {of_concert}"
                );
                found.push(Violation::new(OWN_TICKET, detail, vec![row.label()]));
            }
            Some(_) => {}
        }
        if let Some(first) = self.spent.insert(*ticket_id, row.label()) {
            found.push(Violation::new(
                ONE_SEAT_A_TICKET,
                format!("ticket {ticket_id} paid for two seats"),
                vec![first, row.label()],
            ));
        }
    }

    /// Names each sale without a ticket whose payment was debited after
    /// the first sale that named one: a payment made by this release or a
    /// later one. Payments debited before it may have been finished since
    /// by the scheduler's recovery, which knows no ticket once it lapsed.
    pub(super) fn finish(&self, payments: &PaymentCheck, found: &mut Vec<Violation>) {
        let Some(since) = self.named_since else {
            return;
        };
        for (payment_id, at) in &self.unnamed {
            if payments
                .debited_at(*payment_id)
                .is_some_and(|debited| debited > since)
            {
                found.push(Violation::new(
                    SALE_NAMES_TICKET,
                    format!("payment {payment_id} sold a seat without naming its ticket"),
                    vec![at.clone()],
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests;
