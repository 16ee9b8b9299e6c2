use super::*;
use crate::aggregates::WalletEvent;
use crate::audit::fixtures::{logged, rules};
use crate::ids::{ReservationId, SeatId};
use crate::money::Won;
use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;

#[test]
fn sales_each_paid_with_their_buyers_own_ticket_have_no_violation() {
    let found = run(vec![
        paid(1),
        sold(1, BUYER, Some(TICKET)),
        paid(2),
        sold(2, OTHER_USER, Some(OTHER_USERS_TICKET)),
    ]);

    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn a_ticket_paying_for_two_seats_is_named_with_both_sales() {
    let found = run(vec![
        paid(1),
        sold(1, BUYER, Some(TICKET)),
        paid(2),
        sold(2, BUYER, Some(TICKET)),
    ]);

    assert_eq!(rules(&found), [ONE_SEAT_A_TICKET]);
    assert_eq!(
        found[0].detail,
        format!("ticket {TICKET} paid for two seats")
    );
    assert_eq!(
        found[0].events,
        ["#2 Seat/s2 seq 2 SeatSold", "#4 Seat/s4 seq 4 SeatSold"]
    );
}

#[test]
fn a_ticket_of_another_user_of_another_concert_or_never_entered_is_named() {
    let stranger = TicketId(uuid::Uuid::from_u128(99));

    let found = run(vec![
        paid(1),
        sold(1, BUYER, Some(OTHER_USERS_TICKET)),
        paid(2),
        sold(2, BUYER, Some(OTHER_CONCERTS_TICKET)),
        paid(3),
        sold(3, BUYER, Some(stranger)),
    ]);

    assert_eq!(rules(&found), [OWN_TICKET, OWN_TICKET, OWN_TICKET]);
    assert!(
        found[0].detail.contains(&format!("of user {OTHER_USER}")),
        "{found:?}"
    );
    assert!(
        found[1]
            .detail
            .contains(&format!("for concert {OTHER_CONCERT}")),
        "{found:?}"
    );
    assert_eq!(
        found[2].detail,
        format!("ticket {stranger} never entered the queue")
    );
}

#[test]
fn a_payment_made_after_sales_named_their_tickets_must_name_its_own() {
    let found = run(vec![
        paid(1),
        sold(1, BUYER, Some(TICKET)),
        paid(2),
        sold(2, BUYER, None),
    ]);

    assert_eq!(rules(&found), [SALE_NAMES_TICKET]);
    assert_eq!(found[0].events, ["#4 Seat/s4 seq 4 SeatSold"]);
}

#[test]
fn sales_without_tickets_are_judged_by_the_other_rules_before_sales_named_them() {
    // A history of version 1 alone, and a payment debited before the
    // first sale that names its ticket, finished after it by a recovery.
    let older = run(vec![
        paid(1),
        sold(1, BUYER, None),
        paid(2),
        sold(2, BUYER, None),
    ]);
    let recovered = run(vec![
        paid(1),
        paid(2),
        sold(2, BUYER, Some(TICKET)),
        sold(1, BUYER, None),
    ]);

    assert!(older.is_empty(), "{older:?}");
    assert!(recovered.is_empty(), "{recovered:?}");
}

/// One event: a debit of payment `n`, or the sale it paid for.
enum Logged {
    Paid(u128),
    Sold(u128, UserId, Option<TicketId>),
}

fn paid(n: u128) -> Logged {
    Logged::Paid(n)
}

fn sold(n: u128, user: UserId, ticket: Option<TicketId>) -> Logged {
    Logged::Sold(n, user, ticket)
}

/// Feeds the events one position each (a sale's seat is `s<position>`, of
/// `CONCERT`), then finishes.
fn run(events: Vec<Logged>) -> Vec<Violation> {
    let mut payments = PaymentCheck::default();
    let mut check = SaleTicketCheck::default();
    let mut found = Vec::new();
    for (position, event) in (1..).zip(events) {
        match event {
            Logged::Paid(n) => {
                let event = WalletEvent::Paid {
                    payment_id: PaymentId(uuid::Uuid::from_u128(n)),
                    reservation_id: ReservationId(uuid::Uuid::from_u128(n)),
                    seat_id: SeatId(uuid::Uuid::from_u128(n)),
                    amount: Won(100),
                    balance: Won::ZERO,
                    paid_at: DateTime::<Utc>::UNIX_EPOCH,
                };
                let row = logged(position, "Wallet/w", &event.event_type());
                payments.apply_wallet(&row, &event, &mut Vec::new());
            }
            Logged::Sold(n, user_id, ticket_id) => {
                let event = SeatEvent::SeatSold {
                    reservation_id: ReservationId(uuid::Uuid::from_u128(n)),
                    payment_id: PaymentId(uuid::Uuid::from_u128(n)),
                    user_id,
                    price: Won(100),
                    ticket_id,
                };
                let row = logged(position, &format!("Seat/s{position}"), &event.event_type());
                check.apply(&row, &event, Some(CONCERT), owner, &mut found);
            }
        }
    }
    check.finish(&payments, &mut found);
    found
}

/// The queue as the log entered it: each ticket's user and concert.
fn owner(ticket: &str) -> Option<(UserId, ConcertId)> {
    [
        (TICKET, BUYER, CONCERT),
        (OTHER_USERS_TICKET, OTHER_USER, CONCERT),
        (OTHER_CONCERTS_TICKET, BUYER, OTHER_CONCERT),
    ]
    .into_iter()
    .find(|(id, _, _)| id.to_string() == ticket)
    .map(|(_, user, concert)| (user, concert))
}

const BUYER: UserId = UserId(uuid::Uuid::from_u128(10));
const OTHER_USER: UserId = UserId(uuid::Uuid::from_u128(11));
const CONCERT: ConcertId = ConcertId(uuid::Uuid::from_u128(20));
const OTHER_CONCERT: ConcertId = ConcertId(uuid::Uuid::from_u128(21));
const TICKET: TicketId = TicketId(uuid::Uuid::from_u128(30));
const OTHER_USERS_TICKET: TicketId = TicketId(uuid::Uuid::from_u128(31));
const OTHER_CONCERTS_TICKET: TicketId = TicketId(uuid::Uuid::from_u128(32));
