//! What the audit knows of the catalogue: a seat held is one its concert's
//! scheduling made, at its date's price, by a user admitted to that concert,
//! and sold to its holder; the read models list the dates and seats the log
//! scheduled. Each forgery here passed the audit before these rules.

use std::sync::atomic::{AtomicBool, Ordering};

use futures::future::join_all;
use sqlx::PgPool;
use uuid::Uuid;

use super::audit::{audit, booking_history};
use crate::helpers::spawn_app;

/// A history of paid bookings, positioned, with the service stopped.
async fn booked() -> PgPool {
    let app = spawn_app().await;
    booking_history(&app).await;
    let pool = app.shutdown().await;
    concert::event_log::assign_positions(&pool).await.unwrap();
    pool
}

async fn execute(pool: &PgPool, sql: &str) {
    sqlx::query(sql).execute(pool).await.unwrap();
}

/// The rules of the report's violations, and their details.
async fn violations(pool: &PgPool) -> Vec<(&'static str, String)> {
    let report = audit(pool).await;
    report
        .violations
        .into_iter()
        .map(|violation| (violation.rule, violation.detail))
        .collect()
}

fn named(found: &[(&'static str, String)], rule: &str, detail: &str) -> bool {
    found.iter().any(|(r, d)| *r == rule && d.contains(detail))
}

/// Appends an event to `Seat/<seat_id>` after its last one, its payload the
/// first `SeatHeld`'s edited by `edit` (SQL over `held`, a jsonb).
async fn append_seat_event(pool: &PgPool, seat_id: Uuid, event_type: &str, edit: &str) {
    sqlx::query(&format!(
        "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         select 'Seat', $1, coalesce((select max(sequence) from events
                                      where aggregate_type = 'Seat' and aggregate_id = $1), 0) + 1,
                $2, '1', ({edit})::json, e.metadata
         from (select payload::jsonb -> 'SeatHeld' as held, metadata from events
               where event_type = 'SeatHeld' order by position limit 1) e"
    ))
    .bind(seat_id.to_string())
    .bind(event_type)
    .execute(pool)
    .await
    .unwrap();
}

/// A free seat of the history: its id, date and number.
async fn free_seat(pool: &PgPool) -> (Uuid, Uuid, i32) {
    sqlx::query_as("select seat_id, date_id, seat_no from seats where status = 'free' order by seat_no desc limit 1")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_hold_of_no_scheduled_seat_at_another_price_by_a_stranger_sold_to_another_is_named() {
    let pool = booked().await;
    let (seat, date, seat_no) = free_seat(&pool).await;
    let stranger = Uuid::new_v4();
    // A seat number the date does not have, on a stream of no seat.
    append_seat_event(
        &pool,
        Uuid::new_v4(),
        "SeatHeld",
        "jsonb_build_object('SeatHeld', jsonb_set(held, '{seat_no}', '9999'))",
    )
    .await;
    // A real free seat, held at 1 won by someone never admitted, then sold
    // to a third user.
    let held = format!(
        "jsonb_build_object('SeatHeld', held || jsonb_build_object(
           'date_id', '{date}', 'seat_no', {seat_no}, 'price', 1, 'user_id', '{stranger}',
           'reservation_id', '{reservation}'))",
        reservation = Uuid::new_v4()
    );
    append_seat_event(&pool, seat, "SeatHeld", &held).await;
    let sold = format!(
        "jsonb_build_object('SeatSold', jsonb_build_object(
           'reservation_id', (select payload::jsonb #>> '{{SeatHeld,reservation_id}}' from events
                              where aggregate_type = 'Seat' and aggregate_id = '{seat}'),
           'payment_id', '{payment}', 'user_id', '{buyer}', 'price', 1))",
        payment = Uuid::new_v4(),
        buyer = Uuid::new_v4()
    );
    append_seat_event(&pool, seat, "SeatSold", &sold).await;

    let found = violations(&pool).await;

    assert!(
        named(
            &found,
            "a seat held is one of its date's seats",
            "seat 9999"
        ),
        "{found:#?}"
    );
    assert!(
        named(&found, "a seat is held at its date's price", "held at 1"),
        "{found:#?}"
    );
    assert!(
        named(
            &found,
            "a seat is held by a user admitted to its concert",
            &stranger.to_string()
        ),
        "{found:#?}"
    );
    assert!(
        named(
            &found,
            "a seat is sold to its holder at the hold's price",
            &format!("held by {stranger}")
        ),
        "{found:#?}"
    );
    assert!(
        !named(
            &found,
            "a seat held is one of its date's seats",
            &format!("seat {seat_no} of date")
        ),
        "the real seat is one of its date's: {found:#?}"
    );
}

#[tokio::test]
async fn a_seat_added_or_repriced_and_a_date_edited_in_the_read_models_are_named() {
    let pool = booked().await;
    let (seat, date, _) = free_seat(&pool).await;
    execute(
        &pool,
        &format!("update seats set price = 1 where seat_id = '{seat}'"),
    )
    .await;
    execute(
        &pool,
        &format!(
            "insert into seats (seat_id, date_id, seat_no, price) values ('{}', '{date}', 1, 1000)",
            Uuid::new_v4()
        ),
    )
    .await;
    execute(
        &pool,
        "update concert_dates set total_seats = total_seats + 5",
    )
    .await;
    // Every seat row of the other date, gone.
    execute(
        &pool,
        &format!("delete from seats where date_id <> '{date}'"),
    )
    .await;

    let found = violations(&pool).await;

    let agree = "read models agree with the log";
    assert!(
        named(&found, agree, &format!("of date {date} at 1 to 1000")),
        "{found:#?}"
    );
    assert!(
        named(&found, agree, "seats lists 11 seats (10 numbers, 1 to 10)"),
        "{found:#?}"
    );
    assert!(
        named(&found, agree, "with 15 seats at 1000; the log scheduled it"),
        "{found:#?}"
    );
    assert!(
        named(&found, agree, "seats lists no seat of date"),
        "{found:#?}"
    );
}

/// The start customers are told, and where every hold of its seats ends:
/// moved in the read model, it passed.
#[tokio::test]
async fn a_date_moved_in_the_read_models_is_named() {
    let pool = booked().await;
    let (_, date, _) = free_seat(&pool).await;
    execute(
        &pool,
        &format!(
            "update concert_dates set starts_at = starts_at + interval '3 years' where date_id = '{date}'"
        ),
    )
    .await;

    let found = violations(&pool).await;

    let agree = "read models agree with the log";
    assert!(
        named(
            &found,
            agree,
            &format!("concert_dates lists {date} of concert")
        ),
        "{found:#?}"
    );
    assert_eq!(found.len(), 1, "{found:#?}");
}

#[tokio::test]
async fn a_charge_out_of_range_an_event_of_another_version_and_a_ticket_entered_again_are_named() {
    let pool = booked().await;
    // The first ticket's entry again, after its last event.
    execute(
        &pool,
        "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         select aggregate_type, aggregate_id,
                (select max(sequence) + 1 from events s
                 where s.aggregate_type = e.aggregate_type and s.aggregate_id = e.aggregate_id),
                event_type, event_version, payload, metadata
         from events e where event_type = 'QueueEntered' order by position limit 1",
    )
    .await;
    let found = violations(&pool).await;
    assert!(
        named(&found, "a ticket enters the queue once", "entered before"),
        "{found:#?}"
    );

    // The wallet's last event, then a charge of -500 that leaves its sum right.
    execute(
        &pool,
        "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         select aggregate_type, aggregate_id, sequence + 1, 'Charged', '2',
                json_build_object('Charged', json_build_object(
                  'charge_id', gen_random_uuid(), 'amount', -500,
                  'balance', (payload::jsonb -> event_type ->> 'balance')::bigint - 500)),
                metadata
         from events where aggregate_type = 'Wallet' order by position desc limit 1",
    )
    .await;
    let found = violations(&pool).await;
    assert!(
        named(&found, "a charge is 1 to 10^9 won", "a charge of -500"),
        "{found:#?}"
    );
    assert!(
        named(
            &found,
            "events are of a version the service writes",
            "version \"2\""
        ),
        "{found:#?}"
    );
    assert!(
        !found.iter().any(|(rule, _)| *rule == "balances add up"),
        "{found:#?}"
    );
}

/// Concerts scheduled while an audit reads the read models are not in the
/// log it walked: their rows must not be taken for rows the log lacks.
#[tokio::test]
async fn an_audit_while_concerts_are_scheduled_finds_nothing_wrong() {
    let app = spawn_app().await;
    booking_history(&app).await;
    let stop = AtomicBool::new(false);
    let scheduling = join_all((0..4).map(|_| async {
        while !stop.load(Ordering::Relaxed) {
            app.create_concert(1, 3, 100).await;
        }
    }));
    let auditing = async {
        let mut reports = Vec::new();
        for _ in 0..8 {
            reports.push(audit(&app.pool).await);
        }
        stop.store(true, Ordering::Relaxed);
        reports
    };
    let (_, reports) = tokio::join!(scheduling, auditing);

    for report in reports {
        assert!(report.violations.is_empty(), "{:#?}", report.violations);
    }
}
