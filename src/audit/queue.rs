//! The queue: a ticket enters once, before it is admitted, is admitted only
//! while it waits, and no concert ever has more active tickets than the
//! active limit.

use std::collections::{HashMap, HashSet};

use crate::aggregates::QueueTicketEvent;
use crate::event_log::RawEvent;
use crate::ids::{ConcertId, UserId};

use super::active_limits::ActiveLimits;
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
}

/// One ticket: the concert it queues for, whether it is active, and whether
/// it expired (for good: an expired ticket never comes back).
#[derive(Debug)]
struct Ticket {
    concert: ConcertId,
    user: UserId,
    active: bool,
    expired: bool,
}

impl QueueCheck {
    /// A check of `limits`, the queue's active-token limit over the log.
    pub(super) fn new(limits: ActiveLimits) -> Self {
        Self {
            limits,
            tickets: HashMap::new(),
            active: HashMap::new(),
            admitted: HashSet::new(),
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
                ..
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
                    expired: false,
                };
                self.tickets.insert(row.aggregate_id.clone(), ticket);
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
                self.admitted.insert((ticket.user, ticket.concert));
                let count = self.active.entry(ticket.concert).or_default();
                *count += 1;
                let limit = self.limits.at(row.position);
                if *count > i64::from(limit) {
                    let detail = format!("{count} active tokens, the limit is {limit}");
                    found.push(Violation::new(
                        "admissions stay within the active limit",
                        detail,
                        vec![row.label()],
                    ));
                }
            }
            QueueTicketEvent::TicketExpired { .. } => {
                let Some(ticket) = self.tickets.get_mut(&row.aggregate_id) else {
                    return found.push(Violation::new(
                        "tickets are entered first",
                        "expiry of an unknown ticket",
                        vec![row.label()],
                    ));
                };
                ticket.expired = true;
                if ticket.active {
                    ticket.active = false;
                    *self.active.entry(ticket.concert).or_default() -= 1;
                }
            }
        }
    }

    /// Whether the log has admitted a ticket of `user` for `concert`.
    pub(super) fn was_admitted(&self, user: UserId, concert: ConcertId) -> bool {
        self.admitted.contains(&(user, concert))
    }

    /// Whether the log expired the ticket `id`.
    pub(super) fn expired(&self, id: &str) -> bool {
        self.tickets.get(id).is_some_and(|ticket| ticket.expired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregates::ExpiryReason;
    use crate::audit::fixtures::{logged, rules};
    use crate::ids::UserId;
    use chrono::{DateTime, Utc};
    use cqrs_es::DomainEvent;

    #[test]
    fn admissions_within_the_limit_have_no_violation() {
        let found = run(
            1,
            vec![
                entered("a", CONCERT),
                admitted("a"),
                entered("b", CONCERT),
                expired("a"),
                admitted("b"),
                entered("c", OTHER_CONCERT),
                admitted("c"),
            ],
        );

        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn an_admission_of_a_ticket_never_entered_is_named() {
        let found = run(1, vec![admitted("a")]);

        assert_eq!(rules(&found), ["tickets are entered first"]);
        assert_eq!(found[0].events, ["#1 QueueTicket/a seq 1 TicketAdmitted"]);
    }

    #[test]
    fn an_admission_past_the_active_limit_is_named() {
        let found = run(
            1,
            vec![
                entered("a", CONCERT),
                entered("b", CONCERT),
                admitted("a"),
                admitted("b"),
            ],
        );

        assert_eq!(rules(&found), ["admissions stay within the active limit"]);
        assert_eq!(found[0].detail, "2 active tokens, the limit is 1");
    }

    #[test]
    fn an_admission_of_an_active_ticket_is_named_and_takes_no_second_place() {
        let found = run(
            2,
            vec![
                entered("a", CONCERT),
                entered("b", CONCERT),
                admitted("a"),
                admitted("a"),
                admitted("b"),
            ],
        );

        assert_eq!(rules(&found), ["only a waiting ticket is admitted"]);
        assert_eq!(found[0].detail, "admission of an active ticket");
        assert_eq!(found[0].events, ["#4 QueueTicket/a seq 4 TicketAdmitted"]);
    }

    #[test]
    fn an_admission_of_an_expired_ticket_is_named_and_takes_no_place() {
        let found = run(
            1,
            vec![
                entered("a", CONCERT),
                admitted("a"),
                expired("a"),
                admitted("a"),
                entered("b", CONCERT),
                admitted("b"),
            ],
        );

        assert_eq!(rules(&found), ["only a waiting ticket is admitted"]);
        assert_eq!(found[0].detail, "admission of an expired ticket");
        assert_eq!(found[0].events, ["#4 QueueTicket/a seq 4 TicketAdmitted"]);
    }

    #[test]
    fn expiring_a_waiting_ticket_frees_no_place() {
        let found = run(
            1,
            vec![
                entered("a", CONCERT),
                entered("b", CONCERT),
                admitted("a"),
                expired("b"),
                entered("c", CONCERT),
                admitted("c"),
            ],
        );

        assert_eq!(rules(&found), ["admissions stay within the active limit"]);
    }

    #[test]
    fn an_expiry_of_a_ticket_never_entered_is_named() {
        let found = run(1, vec![expired("ghost")]);

        assert_eq!(rules(&found), ["tickets are entered first"]);
        assert_eq!(found[0].detail, "expiry of an unknown ticket");
    }

    #[test]
    fn a_ticket_entered_again_and_an_admission_longer_than_a_day_are_named() {
        let mut long = admitted("b");
        if let QueueTicketEvent::TicketAdmitted { expires_at, .. } = &mut long.event {
            *expires_at = AT + chrono::TimeDelta::seconds(86_401);
        }

        let found = run(
            10,
            vec![
                entered("a", CONCERT),
                entered("a", CONCERT),
                entered("b", CONCERT),
                long,
            ],
        );

        assert_eq!(
            rules(&found),
            [
                "a ticket enters the queue once",
                "an admission lasts at most a day"
            ]
        );
    }

    #[test]
    fn each_admission_is_held_to_the_limit_served_at_its_position() {
        let events = || {
            vec![
                entered("a", CONCERT),
                admitted("a"),
                entered("b", CONCERT),
                admitted("b"),
            ]
        };
        let feed = |limits: ActiveLimits| {
            let mut check = QueueCheck::new(limits);
            let mut found = Vec::new();
            for (position, TicketEvent { ticket, event }) in (1..).zip(events()) {
                let row = logged(
                    position,
                    &format!("QueueTicket/{ticket}"),
                    &event.event_type(),
                );
                check.apply(&row, event, &mut found);
            }
            found
        };

        // Raised to 5 after position 2: the second admission is within it.
        let raised = feed(ActiveLimits::served(vec![(0, 1), (2, 5)]).unwrap());
        // Lowered to 1 after position 3: the second admission is beyond it.
        let lowered = feed(ActiveLimits::served(vec![(0, 5), (3, 1)]).unwrap());

        assert!(raised.is_empty(), "{raised:?}");
        assert_eq!(rules(&lowered), ["admissions stay within the active limit"]);
        assert_eq!(lowered[0].detail, "2 active tokens, the limit is 1");
    }

    /// An event of the ticket `QueueTicket/<ticket>`.
    struct TicketEvent {
        ticket: &'static str,
        event: QueueTicketEvent,
    }

    /// Feeds the events one position each.
    fn run(active_limit: u32, events: Vec<TicketEvent>) -> Vec<Violation> {
        let mut check = QueueCheck::new(active_limit.into());
        let mut found = Vec::new();
        for (position, TicketEvent { ticket, event }) in (1..).zip(events) {
            let stream = format!("QueueTicket/{ticket}");
            let row = logged(position, &stream, &event.event_type());
            check.apply(&row, event, &mut found);
        }
        found
    }

    const CONCERT: ConcertId = ConcertId(uuid::Uuid::from_u128(1));
    const OTHER_CONCERT: ConcertId = ConcertId(uuid::Uuid::from_u128(2));
    const AT: DateTime<Utc> = DateTime::<Utc>::UNIX_EPOCH;

    fn entered(ticket: &'static str, concert_id: ConcertId) -> TicketEvent {
        let event = QueueTicketEvent::QueueEntered {
            concert_id,
            user_id: UserId(uuid::Uuid::from_u128(3)),
            entry_no: 1,
            entered_at: AT,
        };
        TicketEvent { ticket, event }
    }

    fn admitted(ticket: &'static str) -> TicketEvent {
        let event = QueueTicketEvent::TicketAdmitted {
            admitted_at: AT,
            expires_at: AT,
        };
        TicketEvent { ticket, event }
    }

    fn expired(ticket: &'static str) -> TicketEvent {
        let event = QueueTicketEvent::TicketExpired {
            reason: ExpiryReason::Timeout,
            expired_at: AT,
        };
        TicketEvent { ticket, event }
    }
}
