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

    let found = run(10, vec![entered("b", CONCERT), entered("b", CONCERT), long]);

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

#[test]
fn a_ticket_admitted_a_round_after_a_later_entry_is_named() {
    let found = run(
        10,
        vec![
            entered_after("a", 0),
            entered_after("b", 0),
            admitted_after("b", 10),
            admitted_after("a", 11),
        ],
    );

    assert_eq!(rules(&found), ["admissions follow entry order"]);
    assert_eq!(
        found[0].events,
        [
            "#3 QueueTicket/b seq 3 TicketAdmitted",
            "#4 QueueTicket/a seq 4 TicketAdmitted"
        ]
    );
}

#[test]
fn one_round_admits_its_tickets_in_any_order() {
    let found = run(
        10,
        vec![
            entered_after("a", 0),
            entered_after("b", 0),
            entered_after("c", 0),
            admitted_after("c", 10),
            admitted_after("a", 10),
            admitted_after("b", 10),
        ],
    );

    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn a_ticket_passed_over_by_two_rounds_is_named_once() {
    let found = run(
        10,
        vec![
            entered_after("a", 0),
            entered_after("b", 0),
            entered_after("c", 0),
            admitted_after("b", 10),
            admitted_after("c", 20),
            admitted_after("a", 30),
        ],
    );

    assert_eq!(rules(&found), ["admissions follow entry order"]);
    assert!(
        found[0].detail.contains("passed over by rounds"),
        "{found:?}"
    );
}

#[test]
fn a_passed_over_ticket_that_leaves_the_line_or_still_waits_at_the_end_is_named() {
    let left = run(
        10,
        vec![
            entered_after("a", 0),
            entered_after("b", 0),
            admitted_after("b", 10),
            expired("a"),
        ],
    );
    let waiting = run(
        10,
        vec![
            entered_after("a", 0),
            entered_after("b", 0),
            admitted_after("b", 10),
        ],
    );

    assert_eq!(rules(&left), ["admissions follow entry order"]);
    assert!(left[0].detail.contains("then left the line"), "{left:?}");
    assert_eq!(rules(&waiting), ["admissions follow entry order"]);
    assert_eq!(waiting[0].events, ["#3 QueueTicket/b seq 3 TicketAdmitted"]);
}

#[test]
fn an_entry_committing_after_a_ticket_that_waited_for_it_may_be_passed_over_by_that_round() {
    // Number `a` was taken first but committed after `b` and `c`; `b` had
    // waited the scheduler's three seconds for it, so the round passes it.
    let found = run(
        10,
        vec![
            entered_after("b", 0),
            entered_after("a", 0),
            entered_after("c", 2),
            admitted_after("b", 3),
            admitted_after("c", 3),
            admitted_after("a", 4),
        ],
    );

    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn an_entry_committing_late_is_not_passed_over_before_the_wait() {
    let found = run(
        10,
        vec![
            entered_after("b", 0),
            entered_after("a", 0),
            admitted_after("b", 2),
            admitted_after("a", 4),
        ],
    );

    assert_eq!(rules(&found), ["admissions follow entry order"]);
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
    check.finish(&mut found);
    found
}

const CONCERT: ConcertId = ConcertId(uuid::Uuid::from_u128(1));
const OTHER_CONCERT: ConcertId = ConcertId(uuid::Uuid::from_u128(2));
const AT: DateTime<Utc> = DateTime::<Utc>::UNIX_EPOCH;

/// Tickets take entry numbers in the order of their names' first letter.
fn entered(ticket: &'static str, concert_id: ConcertId) -> TicketEvent {
    entry(ticket, concert_id, 0)
}

/// `ticket` entering `CONCERT` `secs` after `AT`.
fn entered_after(ticket: &'static str, secs: i64) -> TicketEvent {
    entry(ticket, CONCERT, secs)
}

fn entry(ticket: &'static str, concert_id: ConcertId, secs: i64) -> TicketEvent {
    let event = QueueTicketEvent::QueueEntered {
        concert_id,
        user_id: UserId(uuid::Uuid::from_u128(3)),
        entry_no: i64::from(ticket.as_bytes()[0]),
        entered_at: AT + chrono::TimeDelta::seconds(secs),
    };
    TicketEvent { ticket, event }
}

fn admitted(ticket: &'static str) -> TicketEvent {
    admitted_after(ticket, 0)
}

/// `ticket` admitted by a round `secs` after `AT`.
fn admitted_after(ticket: &'static str, secs: i64) -> TicketEvent {
    let at = AT + chrono::TimeDelta::seconds(secs);
    let event = QueueTicketEvent::TicketAdmitted {
        admitted_at: at,
        expires_at: at,
    };
    TicketEvent { ticket, event }
}

/// `ticket` admitted `from` seconds after `AT` until `to`.
fn admitted_for(ticket: &'static str, from: i64, to: i64) -> TicketEvent {
    let at = |secs| AT + chrono::TimeDelta::seconds(secs);
    let event = QueueTicketEvent::TicketAdmitted {
        admitted_at: at(from),
        expires_at: at(to),
    };
    TicketEvent { ticket, event }
}

/// `ticket` ended for `reason` `secs` after `AT`.
fn ended(ticket: &'static str, reason: ExpiryReason, secs: i64) -> TicketEvent {
    let event = QueueTicketEvent::TicketExpired {
        reason,
        expired_at: AT + chrono::TimeDelta::seconds(secs),
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

#[test]
fn a_ticket_timed_out_before_its_deadline_or_paid_while_waiting_is_named() {
    let admitted = |ticket| admitted_for(ticket, 0, 60);

    let found = run(
        3,
        vec![
            entered("a", CONCERT),
            entered("b", CONCERT),
            entered("c", CONCERT),
            admitted("a"),
            admitted("b"),
            // On time, within the clocks' agreement, and 18 s early.
            ended("a", ExpiryReason::Timeout, 60),
            ended("b", ExpiryReason::Timeout, 42),
            ended("c", ExpiryReason::Paid, 10),
        ],
    );

    assert_eq!(
        rules(&found),
        [
            "a ticket times out at its deadline, not before",
            "a ticket is spent by a payment while active"
        ]
    );
    assert_eq!(found[0].events, ["#7 QueueTicket/b seq 7 TicketExpired"]);
}

#[test]
fn an_admission_appended_after_the_expiries_of_its_time_is_held_to_the_limit() {
    let admitted = admitted_for;
    let timed_out = |ticket, secs| ended(ticket, ExpiryReason::Timeout, secs);

    // One place: "a" holds it 0–20 s; "b", appended after its expiry, is
    // dated at 10 s; "c" takes it at 20 s, as the scheduler would, while
    // "b" still runs: "b", written last, is named, not "c".
    let found = run(
        1,
        vec![
            entered("a", CONCERT),
            entered("b", CONCERT),
            entered("c", CONCERT),
            admitted("a", 0, 20),
            timed_out("a", 20),
            admitted("c", 20, 40),
            timed_out("c", 40),
            admitted("b", 10, 30),
        ],
    );

    let over: Vec<_> = (found.iter())
        .filter(|violation| violation.rule == "admissions stay within the active limit")
        .collect();
    assert_eq!(over.len(), 1, "{found:#?}");
    assert_eq!(over[0].events, ["#8 QueueTicket/b seq 8 TicketAdmitted"]);
}

#[test]
fn an_entry_number_used_twice_in_a_concert_is_named_with_both_entries() {
    // "a" and "a2" take the same number; "a3" takes it in another concert.
    let found = run(
        1,
        vec![
            entered("a", CONCERT),
            entered("b", CONCERT),
            entered("a2", CONCERT),
            entered("a3", OTHER_CONCERT),
        ],
    );

    assert_eq!(rules(&found), ["entry numbers are used once a concert"]);
    assert_eq!(
        found[0].detail,
        format!("entry number 97 of concert {CONCERT} is used again")
    );
    assert_eq!(
        found[0].events,
        [
            "#1 QueueTicket/a seq 1 QueueEntered",
            "#3 QueueTicket/a2 seq 3 QueueEntered"
        ]
    );
}

#[test]
fn a_ticket_is_active_from_its_admission_to_its_deadline_or_its_payment() {
    let mut check = QueueCheck::new(1.into());
    let mut found = Vec::new();
    let user = UserId(uuid::Uuid::from_u128(3));
    let secs = |secs: i64| AT + chrono::TimeDelta::seconds(secs);
    let mut feed = |position: i64, event: QueueTicketEvent| {
        let row = logged(position, "QueueTicket/a", &event.event_type());
        check.apply(&row, event, &mut found);
    };
    feed(1, entry("a", CONCERT, 0).event);
    let admission = QueueTicketEvent::TicketAdmitted {
        admitted_at: secs(10),
        expires_at: secs(70),
    };
    feed(2, admission);
    let active_at = |check: &QueueCheck, at: i64| check.was_active_at(user, CONCERT, secs(at));
    // Within a second of the admission and the deadline (the clocks agree to that).
    assert_eq!(
        [8, 9, 10, 70, 71, 72].map(|at| active_at(&check, at)),
        [false, true, true, true, true, false]
    );
    assert!(!check.was_active_at(user, OTHER_CONCERT, secs(30)));

    let paid = QueueTicketEvent::TicketExpired {
        reason: ExpiryReason::Paid,
        expired_at: secs(30),
    };
    let row = logged(3, "QueueTicket/a", &paid.event_type());
    check.apply(&row, paid, &mut found);
    assert_eq!(
        [30, 31, 32].map(|at| active_at(&check, at)),
        [true, true, false]
    );
    assert!(found.is_empty(), "{found:?}");
}
