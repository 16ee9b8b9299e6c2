//! The queue tickets that paid: a sale that names its ticket (version 2)
//! names one its buyer entered for the seat's concert and was admitted on,
//! which had not timed out, and no ticket pays for two seats. A sale of version 1 names none (written
//! before sales named their tickets, or by the scheduler's recovery of a
//! payment whose ticket had lapsed); it is judged by the other rules alone,
//! and cannot be tied to an admission. Some such sales honestly paid with a
//! ticket that had paid already, before that race was closed; and since a
//! release may still write them, one cannot be told apart from a sale
//! written in that form to pass this rule.

use std::collections::{HashMap, HashSet};

use cqrs_es::DomainEvent;

use crate::aggregates::{versions_written, SeatEvent};
use crate::event_log::RawEvent;
use crate::ids::{ConcertId, TicketId, UserId};

use super::queue::{SpentTicket, TicketOwner};
use super::Violation;

const OWN_TICKET: &str = "a seat is paid with a ticket its buyer was admitted on for its concert";
const ACTIVE_TICKET: &str = "a seat is paid with a ticket still active";
const ONE_SEAT_A_TICKET: &str = "a queue ticket pays for one seat";
const VERSION_FITS: &str = "an event has its version's shape";
const SPENT_ON_A_SALE: &str = "a ticket ends as paid with a sale";

/// The sale each named ticket paid for.
#[derive(Debug, Default)]
pub(super) struct SaleTicketCheck {
    spent: HashMap<TicketId, String>,
    /// The buyers of sales that name no ticket, with the seat's concert
    /// (`None` where the log has no hold or date for it).
    unnamed: HashSet<(UserId, Option<ConcertId>)>,
}

impl SaleTicketCheck {
    /// Records a sale of a seat held for `concert` (`None` when the log
    /// has no hold or date for it, which other rules name); `owner` tells
    /// a ticket's user and concert, and whether it was admitted so far.
    pub(super) fn apply(
        &mut self,
        row: &RawEvent,
        event: &SeatEvent,
        concert: Option<ConcertId>,
        owner: impl Fn(&str) -> Option<TicketOwner>,
        found: &mut Vec<Violation>,
    ) {
        let SeatEvent::SeatSold {
            user_id, ticket_id, ..
        } = event
        else {
            return;
        };
        // Each version has its shape: a sale written as version 1 with a
        // ticket, or as version 2 without, is not one the service wrote
        // (versions it never wrote are the log chain's to name).
        let written = versions_written("SeatSold").contains(&row.event_version.as_str());
        if written && row.event_version != event.event_version() {
            let named = if ticket_id.is_some() {
                "names"
            } else {
                "names no"
            };
            found.push(Violation::new(
                VERSION_FITS,
                format!("a sale of version {} {named} ticket", row.event_version),
                vec![row.label()],
            ));
        }
        let Some(ticket_id) = ticket_id else {
            self.unnamed.insert((*user_id, concert));
            return;
        };
        let wrong = match owner(&ticket_id.to_string()) {
            None => Some(format!("ticket {ticket_id} never entered the queue")),
            Some(ticket)
                if ticket.user != *user_id || concert.is_some_and(|c| c != ticket.concert) =>
            {
                Some(format!(
                    "sold to user {user_id} with ticket {ticket_id} of user {} for concert {}",
                    ticket.user, ticket.concert
                ))
            }
            Some(ticket) if !ticket.admitted => Some(format!(
                "ticket {ticket_id} was never admitted before the sale"
            )),
            Some(_) => None,
        };
        if let Some(detail) = wrong {
            found.push(Violation::new(OWN_TICKET, detail, vec![row.label()]));
        } else if owner(&ticket_id.to_string()).is_some_and(|ticket| ticket.timed_out) {
            // A payment ends its ticket in its own commit: one the log had
            // already timed out paid after its time (a sale appended so passed).
            found.push(Violation::new(
                ACTIVE_TICKET,
                format!("ticket {ticket_id} had timed out before the sale"),
                vec![row.label()],
            ));
        }
        if let Some(first) = self.spent.insert(*ticket_id, row.label()) {
            found.push(Violation::new(
                ONE_SEAT_A_TICKET,
                format!("ticket {ticket_id} paid for two seats"),
                vec![first, row.label()],
            ));
        }
    }

    /// Names each ticket the log ended as paid that no sale accounts for:
    /// none names it, and (for sales written before they named tickets) its
    /// user bought no seat of its concert without naming one. A ticket's
    /// expiry edited from timed out to paid passed.
    pub(super) fn finish(&self, spent: &[SpentTicket], found: &mut Vec<Violation>) {
        for ticket in spent {
            let named = (ticket.id.parse::<uuid::Uuid>())
                .is_ok_and(|id| self.spent.contains_key(&TicketId(id)));
            let bought_unnamed = [Some(ticket.concert), None]
                .into_iter()
                .any(|concert| self.unnamed.contains(&(ticket.user, concert)));
            if !named && !bought_unnamed {
                found.push(Violation::new(
                    SPENT_ON_A_SALE,
                    format!(
                        "no sale names ticket {}, and its user {} bought no seat of concert {} without naming one",
                        ticket.id, ticket.user, ticket.concert
                    ),
                    vec![ticket.label.clone()],
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests;
