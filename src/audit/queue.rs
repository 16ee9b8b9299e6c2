//! The queue: a ticket enters once, with a number no other entry of its
//! concert has, before it is admitted, is admitted only while it waits, and
//! no concert ever has more active tickets than the active limit.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::aggregates::{ExpiryReason, QueueTicketEvent};
use crate::event_log::RawEvent;
use crate::ids::{ConcertId, UserId};

use super::active_limits::ActiveLimits;
use super::active_times::{self, ActiveSpan};
use super::admission_order::AdmissionOrder;
use super::entry_numbers::EntryNumbers;
use super::seats::CLOCKS_AGREE_WITHIN;
use super::Violation;

/// The longest admission any setting allows (`CONCERT_QUEUE_ACTIVE_TTL_SECS`
/// is at most a day).
const LONGEST_ADMISSION: chrono::TimeDelta = chrono::TimeDelta::days(1);

/// Tickets by ticket id, and the active count of each concert.
#[derive(Debug)]
pub(super) struct QueueCheck {
    limits: ActiveLimits,
    tickets: HashMap<String, Ticket>,
    active: HashMap<ConcertId, i64>,
    /// Each user and concert the log has admitted a ticket of.
    admitted: HashSet<(UserId, ConcertId)>,
    /// The tickets each user entered for each concert.
    entered: HashMap<(UserId, ConcertId), Vec<String>>,
    order: AdmissionOrder,
    numbers: EntryNumbers,
    /// Admissions the log-order count named past the limit, by position.
    over_the_limit: HashSet<i64>,
    /// Tickets that ended as paid, checked against the sales at the end.
    spent: Vec<SpentTicket>,
}

/// A ticket the log ended as paid.
#[derive(Debug)]
pub(super) struct SpentTicket {
    pub id: String,
    pub user: UserId,
    pub concert: ConcertId,
    /// Its expiry's label.
    pub label: String,
}

/// One ticket: the concert it queues for, whether it is active, and whether
/// it expired (for good: an expired ticket never comes back).
#[derive(Debug)]
struct Ticket {
    concert: ConcertId,
    user: UserId,
    active: bool,
    /// Admitted at some point, whatever came after.
    admitted: bool,
    expired: bool,
    /// When it was admitted, until when, and when and why it ended.
    active_from: Option<DateTime<Utc>>,
    active_until: Option<DateTime<Utc>>,
    ended: Option<(DateTime<Utc>, ExpiryReason)>,
    /// Its admission's position and label.
    admission: Option<(i64, String)>,
}

/// Whose a ticket is, as the log entered it, and whether it was admitted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct TicketOwner {
    pub user: UserId,
    pub concert: ConcertId,
    pub admitted: bool,
    /// Its time ran out before this point of the log.
    pub timed_out: bool,
}

impl QueueCheck {
    /// A check of `limits`, the queue's active-token limit over the log.
    pub(super) fn new(limits: ActiveLimits) -> Self {
        Self {
            limits,
            tickets: HashMap::new(),
            active: HashMap::new(),
            admitted: HashSet::new(),
            entered: HashMap::new(),
            order: AdmissionOrder::default(),
            numbers: EntryNumbers::default(),
            over_the_limit: HashSet::new(),
            spent: Vec::new(),
        }
    }

    /// Moves the ticket of `row` on by `event`, counting admissions per concert.
    pub(super) fn apply(
        &mut self,
        row: &RawEvent,
        event: QueueTicketEvent,
        found: &mut Vec<Violation>,
    ) {
        match event {
            QueueTicketEvent::QueueEntered {
                concert_id,
                user_id,
                entry_no,
                entered_at,
            } => {
                // A ticket's id is derived from its user, concert and turn:
                // entered again, a spent ticket would come back to life.
                if self.tickets.contains_key(&row.aggregate_id) {
                    return found.push(Violation::new(
                        "a ticket enters the queue once",
                        "the ticket entered before",
                        vec![row.label()],
                    ));
                }
                let ticket = Ticket {
                    concert: concert_id,
                    user: user_id,
                    active: false,
                    admitted: false,
                    expired: false,
                    active_from: None,
                    active_until: None,
                    ended: None,
                    admission: None,
                };
                self.tickets.insert(row.aggregate_id.clone(), ticket);
                (self.entered.entry((user_id, concert_id)).or_default())
                    .push(row.aggregate_id.clone());
                self.numbers.entered(row, concert_id, entry_no, found);
                self.order.entered(row, concert_id, entry_no, entered_at);
            }
            QueueTicketEvent::TicketAdmitted {
                admitted_at,
                expires_at,
            } => {
                if expires_at < admitted_at || expires_at - admitted_at > LONGEST_ADMISSION {
                    found.push(Violation::new(
                        "an admission lasts at most a day",
                        format!("admitted at {admitted_at} until {expires_at}"),
                        vec![row.label()],
                    ));
                }
                let Some(ticket) = self.tickets.get_mut(&row.aggregate_id) else {
                    return found.push(Violation::new(
                        "tickets are entered first",
                        "admission of an unknown ticket",
                        vec![row.label()],
                    ));
                };
                // Only a waiting ticket takes a place: counted again, an
                // active one would hold two for good, and an expired one is over.
                if ticket.active || ticket.expired {
                    let state = if ticket.active { "active" } else { "expired" };
                    return found.push(Violation::new(
                        "only a waiting ticket is admitted",
                        format!("admission of an {state} ticket"),
                        vec![row.label()],
                    ));
                }
                ticket.active = true;
                ticket.admitted = true;
                ticket.active_from = Some(admitted_at);
                ticket.active_until = Some(expires_at);
                ticket.admission = Some((row.position, row.label()));
                self.order.admitted(row, admitted_at, found);
                self.admitted.insert((ticket.user, ticket.concert));
                let count = self.active.entry(ticket.concert).or_default();
                *count += 1;
                let limit = self.limits.at(row.position);
                if *count > i64::from(limit) {
                    let detail = format!("{count} active tokens, the limit is {limit}");
                    self.over_the_limit.insert(row.position);
                    found.push(Violation::new(
                        active_times::RULE,
                        detail,
                        vec![row.label()],
                    ));
                }
            }
            QueueTicketEvent::TicketExpired { reason, expired_at } => {
                let Some(ticket) = self.tickets.get_mut(&row.aggregate_id) else {
                    return found.push(Violation::new(
                        "tickets are entered first",
                        "expiry of an unknown ticket",
                        vec![row.label()],
                    ));
                };
                match (reason, ticket.active, ticket.active_until) {
                    // The scheduler times a ticket out once its deadline has passed.
                    (ExpiryReason::Timeout, true, Some(until))
                        if expired_at + CLOCKS_AGREE_WITHIN < until =>
                    {
                        found.push(Violation::new(
                            "a ticket times out at its deadline, not before",
                            format!("timed out at {expired_at}, admitted until {until}"),
                            vec![row.label()],
                        ));
                    }
                    // Only an active ticket pays.
                    (ExpiryReason::Paid, false, _) if !ticket.expired => {
                        found.push(Violation::new(
                            "a ticket is spent by a payment while active",
                            "a waiting ticket ended as paid",
                            vec![row.label()],
                        ));
                    }
                    (ExpiryReason::Paid, true, _) => self.spent.push(SpentTicket {
                        id: row.aggregate_id.clone(),
                        user: ticket.user,
                        concert: ticket.concert,
                        label: row.label(),
                    }),
                    _ => {}
                }
                ticket.expired = true;
                ticket.ended = Some((expired_at, reason));
                self.order.left(row, found);
                if ticket.active {
                    ticket.active = false;
                    *self.active.entry(ticket.concert).or_default() -= 1;
                }
            }
        }
    }

    /// The rules that need the whole log.
    pub(super) fn finish(&mut self, found: &mut Vec<Violation>) {
        self.order.finish(found);
        self.check_active_times(found);
    }

    /// The active limit by the times each ticket was active.
    pub(super) fn check_active_times(&self, found: &mut Vec<Violation>) {
        let mut spans: HashMap<ConcertId, Vec<ActiveSpan>> = HashMap::new();
        for ticket in self.tickets.values() {
            let (Some(from), Some(until), Some((position, label))) =
                (ticket.active_from, ticket.active_until, &ticket.admission)
            else {
                continue;
            };
            let to = ticket.ended.map_or(until, |(ended, _)| ended.min(until));
            spans.entry(ticket.concert).or_default().push(ActiveSpan {
                from,
                to,
                position: *position,
                label: label.clone(),
            });
        }
        active_times::check(spans, &self.limits, &self.over_the_limit, found);
    }

    /// The tickets the log ended as paid, for the sales to account for.
    pub(super) fn spent(&self) -> &[SpentTicket] {
        &self.spent
    }

    /// Whether the log has admitted a ticket of `user` for `concert`.
    pub(super) fn was_admitted(&self, user: UserId, concert: ConcertId) -> bool {
        self.admitted.contains(&(user, concert))
    }

    /// Whether, as far as the log tells so far, a ticket of `user` for
    /// `concert` was active at `at` (within the clocks' agreement): admitted
    /// by then, and neither past its deadline nor ended (by a payment).
    pub(super) fn was_active_at(
        &self,
        user: UserId,
        concert: ConcertId,
        at: DateTime<Utc>,
    ) -> bool {
        let slack = CLOCKS_AGREE_WITHIN;
        let active_at = |ticket: &Ticket| match (ticket.active_from, ticket.active_until) {
            (Some(from), Some(until)) => {
                let end = ticket.ended.map_or(until, |(ended, _)| ended.min(until));
                from <= at + slack && at <= end + slack
            }
            _ => false,
        };
        (self.entered.get(&(user, concert)).into_iter().flatten())
            .filter_map(|id| self.tickets.get(id))
            .any(active_at)
    }

    /// The user and concert of the ticket `id`, if it entered the queue,
    /// whether it was admitted so far, and whether its time ran out.
    pub(super) fn owner(&self, id: &str) -> Option<TicketOwner> {
        self.tickets.get(id).map(|ticket| TicketOwner {
            user: ticket.user,
            concert: ticket.concert,
            admitted: ticket.admitted,
            timed_out: matches!(ticket.ended, Some((_, ExpiryReason::Timeout))),
        })
    }

    /// Whether the log expired the ticket `id`.
    pub(super) fn expired(&self, id: &str) -> bool {
        self.tickets.get(id).is_some_and(|ticket| ticket.expired)
    }
}

#[cfg(test)]
mod tests;
