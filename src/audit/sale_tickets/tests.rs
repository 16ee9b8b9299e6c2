use super::*;
use crate::audit::fixtures::{logged, rules};
use crate::ids::{PaymentId, ReservationId, UserId};
use crate::money::Won;
use cqrs_es::DomainEvent;

#[test]
fn sales_each_paid_with_an_admitted_ticket_of_their_buyer_have_no_violation() {
    let found = run(vec![
        sold(BUYER, Some(TICKET)),
        sold(OTHER_USER, Some(OTHER_USERS_TICKET)),
    ]);

    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn a_ticket_paying_for_two_seats_is_named_with_both_sales() {
    let found = run(vec![sold(BUYER, Some(TICKET)), sold(BUYER, Some(TICKET))]);

    assert_eq!(rules(&found), [ONE_SEAT_A_TICKET]);
    assert_eq!(
        found[0].detail,
        format!("ticket {TICKET} paid for two seats")
    );
    assert_eq!(
        found[0].events,
        ["#1 Seat/s1 seq 1 SeatSold", "#2 Seat/s2 seq 2 SeatSold"]
    );
}

#[test]
fn a_ticket_of_another_user_or_concert_never_entered_or_never_admitted_is_named() {
    let stranger = TicketId(uuid::Uuid::from_u128(99));

    let found = run(vec![
        sold(BUYER, Some(OTHER_USERS_TICKET)),
        sold(BUYER, Some(OTHER_CONCERTS_TICKET)),
        sold(BUYER, Some(stranger)),
        sold(BUYER, Some(WAITING_TICKET)),
    ]);

    assert_eq!(rules(&found), [OWN_TICKET; 4]);
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
    assert_eq!(
        found[3].detail,
        format!("ticket {WAITING_TICKET} was never admitted before the sale")
    );
}

#[test]
fn a_sale_with_a_ticket_that_had_timed_out_is_named() {
    let found = run(vec![sold(BUYER, Some(TIMED_OUT_TICKET))]);

    assert_eq!(rules(&found), [ACTIVE_TICKET]);
    assert_eq!(
        found[0].detail,
        format!("ticket {TIMED_OUT_TICKET} had timed out before the sale")
    );
}

#[test]
fn a_sale_naming_no_ticket_is_left_to_the_other_rules() {
    let found = run(vec![
        sold(BUYER, Some(TICKET)),
        sold(BUYER, None),
        sold(BUYER, None),
    ]);

    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn a_sale_whose_version_does_not_fit_its_ticket_is_named() {
    let mut check = SaleTicketCheck::default();
    let mut found = Vec::new();
    let sales = [
        (sold(BUYER, Some(TICKET)), "1"),
        (sold(OTHER_USER, None), "2"),
    ];

    for (position, (sale, version)) in (1..).zip(sales) {
        let mut row = logged(position, &format!("Seat/s{position}"), "SeatSold");
        row.event_version = version.to_string();
        check.apply(&row, &sale, Some(CONCERT), owner, &mut found);
    }

    assert_eq!(rules(&found), [VERSION_FITS, VERSION_FITS]);
    assert_eq!(found[0].detail, "a sale of version 1 names ticket");
    assert_eq!(found[1].detail, "a sale of version 2 names no ticket");
}

#[test]
fn a_ticket_ended_as_paid_that_no_sale_accounts_for_is_named() {
    let spent = |id: TicketId, user, concert| SpentTicket {
        id: id.to_string(),
        user,
        concert,
        label: format!("spent {id}"),
    };
    let mut check = SaleTicketCheck::default();
    let mut found = Vec::new();
    let mut named = logged(1, "Seat/s1", "SeatSold");
    named.event_version = crate::aggregates::SALE_VERSION.to_string();
    check.apply(
        &named,
        &sold(BUYER, Some(TICKET)),
        Some(CONCERT),
        owner,
        &mut found,
    );
    // A sale of version 1, as written before sales named their tickets.
    let unnamed = logged(2, "Seat/s2", "SeatSold");
    let other = sold(OTHER_USER, None);
    check.apply(&unnamed, &other, Some(CONCERT), owner, &mut found);

    check.finish(
        &[
            spent(TICKET, BUYER, CONCERT),
            spent(OTHER_USERS_TICKET, OTHER_USER, CONCERT),
            spent(TIMED_OUT_TICKET, BUYER, CONCERT),
            spent(OTHER_CONCERTS_TICKET, OTHER_USER, OTHER_CONCERT),
        ],
        &mut found,
    );

    assert_eq!(rules(&found), [SPENT_ON_A_SALE, SPENT_ON_A_SALE]);
    assert_eq!(found[0].events, [format!("spent {TIMED_OUT_TICKET}")]);
    assert_eq!(found[1].events, [format!("spent {OTHER_CONCERTS_TICKET}")]);
}

/// Feeds each sale at its own position (its seat is `s<position>`, of
/// `CONCERT`).
fn run(sales: Vec<SeatEvent>) -> Vec<Violation> {
    let mut check = SaleTicketCheck::default();
    let mut found = Vec::new();
    for (position, sale) in (1..).zip(sales) {
        let mut row = logged(position, &format!("Seat/s{position}"), &sale.event_type());
        row.event_version = sale.event_version();
        check.apply(&row, &sale, Some(CONCERT), owner, &mut found);
    }
    found
}

fn sold(user_id: UserId, ticket_id: Option<TicketId>) -> SeatEvent {
    SeatEvent::SeatSold {
        reservation_id: ReservationId(uuid::Uuid::from_u128(1)),
        payment_id: PaymentId(uuid::Uuid::from_u128(2)),
        user_id,
        price: Won(100),
        ticket_id,
    }
}

/// The queue as the log entered it.
fn owner(ticket: &str) -> Option<TicketOwner> {
    [
        (TICKET, BUYER, CONCERT, true, false),
        (OTHER_USERS_TICKET, OTHER_USER, CONCERT, true, false),
        (OTHER_CONCERTS_TICKET, BUYER, OTHER_CONCERT, true, false),
        (WAITING_TICKET, BUYER, CONCERT, false, false),
        (TIMED_OUT_TICKET, BUYER, CONCERT, true, true),
    ]
    .into_iter()
    .find(|(id, ..)| id.to_string() == ticket)
    .map(|(_, user, concert, admitted, timed_out)| TicketOwner {
        user,
        concert,
        admitted,
        timed_out,
    })
}

const BUYER: UserId = UserId(uuid::Uuid::from_u128(10));
const OTHER_USER: UserId = UserId(uuid::Uuid::from_u128(11));
const CONCERT: ConcertId = ConcertId(uuid::Uuid::from_u128(20));
const OTHER_CONCERT: ConcertId = ConcertId(uuid::Uuid::from_u128(21));
const TICKET: TicketId = TicketId(uuid::Uuid::from_u128(30));
const OTHER_USERS_TICKET: TicketId = TicketId(uuid::Uuid::from_u128(31));
const OTHER_CONCERTS_TICKET: TicketId = TicketId(uuid::Uuid::from_u128(32));
const WAITING_TICKET: TicketId = TicketId(uuid::Uuid::from_u128(33));
const TIMED_OUT_TICKET: TicketId = TicketId(uuid::Uuid::from_u128(34));
