//! Events appended through the store's insert trigger keep the hash chain
//! whole: the audit's rules must name what they break.

use sqlx::PgPool;

use super::audit::{audit, booking_history, names};
use crate::helpers::{eventually, spawn_app, spawn_app_with, test_config};

/// Appends to the stream of the first `event_type` event a copy of it, its
/// payload changed by `edit` (SQL over `payload_jsonb`, the original's); returns the
/// copy's stream id and sequence.
async fn append_copy_of_first(pool: &PgPool, event_type: &str, edit: &str) -> (String, i64) {
    sqlx::query_as(&format!(
        "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         select e.aggregate_type, e.aggregate_id,
                (select max(sequence) + 1 from events s
                 where s.aggregate_type = e.aggregate_type and s.aggregate_id = e.aggregate_id),
                e.event_type, e.event_version, ({edit})::json, e.metadata
         from (select *, payload::jsonb as payload_jsonb from events) e
         where e.event_type = $1 order by e.position limit 1
         returning aggregate_id, sequence"
    ))
    .bind(event_type)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_audit_names_a_payment_debited_twice() {
    let app = spawn_app().await;
    booking_history(&app).await;
    let pool = app.shutdown().await;
    concert::event_log::assign_positions(&pool).await.unwrap();
    // The first payment again, after it (the last event of its wallet), from
    // a balance that holds it: the wallet's sums add up, only the payment is
    // taken twice.
    let (wallet, sequence) = append_copy_of_first(
        &pool,
        "Paid",
        "jsonb_set(payload_jsonb, '{Paid,balance}',
                   to_jsonb((payload_jsonb #>> '{Paid,balance}')::bigint - (payload_jsonb #>> '{Paid,amount}')::bigint))",
    )
    .await;

    let report = audit(&pool).await;

    let debited_twice = report
        .violations
        .iter()
        .find(|v| v.rule == "a payment is debited once")
        .unwrap_or_else(|| panic!("{:#?}", report.violations));
    assert!(debited_twice.events[0].contains(&format!("Wallet/{wallet} seq {} Paid", sequence - 1)));
    assert!(debited_twice.events[1].contains(&format!("Wallet/{wallet} seq {sequence} Paid")));
    assert!(
        !report
            .violations
            .iter()
            .any(|v| v.rule == "balances add up"),
        "{:#?}",
        report.violations
    );
}

/// A spent ticket admitted again would hold a place it never gives back.
#[tokio::test]
async fn the_audit_names_an_admission_of_a_spent_ticket() {
    let app = spawn_app().await;
    booking_history(&app).await;
    let pool = app.shutdown().await;
    concert::event_log::assign_positions(&pool).await.unwrap();
    let (ticket, sequence) = append_copy_of_first(&pool, "TicketAdmitted", "payload_jsonb").await;

    let report = audit(&pool).await;

    assert!(
        report
            .violations
            .iter()
            .any(|v| v.rule == "only a waiting ticket is admitted"
                && v.detail == "admission of an expired ticket"),
        "{:#?}",
        report.violations
    );
    assert!(names(
        &report,
        &format!("QueueTicket/{ticket} seq {sequence} TicketAdmitted")
    ));
}

/// RFC 3339 in UTC, as the events write times, for `at` (SQL).
fn rfc3339(at: &str) -> String {
    format!("to_jsonb(to_char(({at}) at time zone 'utc', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'))")
}

/// A user who held a seat and let the hold lapse, and then the queue ticket;
/// the store, with every event in place.
async fn a_lapsed_hold_and_ticket() -> PgPool {
    let mut config = test_config();
    config.hold_ttl_secs = 2;
    config.queue_active_ttl_secs = 3;
    let app = spawn_app_with(config).await;
    let concert = app.create_concert(1, 5, 1000).await;
    let user = app.active_user(&concert.concert_id).await;
    let seat = app.first_free_seat(&user, &concert).await;
    assert_eq!(
        app.hold(&user, &seat).await.status,
        reqwest::StatusCode::CREATED
    );
    let pool = app.pool.clone();
    for event_type in ["HoldExpired", "TicketExpired"] {
        eventually(event_type, || async {
            sqlx::query_scalar::<_, i64>("select count(*) from events where event_type = $1")
                .bind(event_type)
                .fetch_one(&pool)
                .await
                .unwrap()
                == 1
        })
        .await;
    }
    let pool = app.shutdown().await;
    concert::event_log::assign_positions(&pool).await.unwrap();
    pool
}

/// A second hold appended after the first one's expiry, in the stream's
/// order, but dated inside the first: both held the seat at once.
#[tokio::test]
async fn the_audit_names_a_hold_dated_inside_the_seat_s_last_hold() {
    let pool = a_lapsed_hold_and_ticket().await;
    let (seat, sequence) = append_copy_of_first(
        &pool,
        "SeatHeld",
        "jsonb_set(payload_jsonb, '{SeatHeld,reservation_id}', to_jsonb(gen_random_uuid()::text))",
    )
    .await;

    let report = audit(&pool).await;

    let overlap = report
        .violations
        .iter()
        .find(|v| v.rule == "one holder at a time")
        .unwrap_or_else(|| panic!("{:#?}", report.violations));
    assert!(
        overlap.detail.contains("before the seat's last hold ended"),
        "{}",
        overlap.detail
    );
    assert!(names(
        &report,
        &format!("Seat/{seat} seq {sequence} SeatHeld")
    ));
}

/// A hold appended after its holder's only ticket timed out (dated 10 s
/// after, its TTL the served one): admitted once, but with no active token
/// when it was made.
#[tokio::test]
async fn the_audit_names_a_hold_made_after_the_holder_s_ticket_timed_out() {
    let pool = a_lapsed_hold_and_ticket().await;
    let (seat, sequence) = append_copy_of_first(
        &pool,
        "SeatHeld",
        &format!(
            "jsonb_set(jsonb_set(jsonb_set(payload_jsonb,
                '{{SeatHeld,reservation_id}}', to_jsonb(gen_random_uuid()::text)),
                '{{SeatHeld,held_at}}', {}),
                '{{SeatHeld,until}}', {})",
            rfc3339("now() + interval '10 seconds'"),
            rfc3339("now() + interval '12 seconds'")
        ),
    )
    .await;

    let report = audit(&pool).await;

    let inactive = report
        .violations
        .iter()
        .find(|v| v.rule == "a seat is held while its holder's ticket is active")
        .unwrap_or_else(|| panic!("{:#?}", report.violations));
    assert!(inactive.events[0].contains(&format!("Seat/{seat} seq {sequence} SeatHeld")));
    assert!(
        !report
            .violations
            .iter()
            .any(|v| v.rule == "one holder at a time"),
        "{:#?}",
        report.violations
    );
}

/// A second ticket's whole life, copied from the one ticket's and appended
/// at the end of the log: in the log's order the place was free again (the
/// first ticket's expiry came before it), by its times two were active at
/// once with one place. It passed.
#[tokio::test]
async fn the_audit_names_an_admission_appended_after_the_expiries_of_its_time() {
    let pool = a_lapsed_hold_and_ticket().await;
    let forged = uuid::Uuid::new_v4();
    sqlx::query(
        "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         select aggregate_type, $1, sequence, event_type, event_version,
                case when event_type = 'QueueEntered' then
                    jsonb_set(jsonb_set(payload::jsonb,
                        '{QueueEntered,user_id}', to_jsonb(gen_random_uuid()::text)),
                        '{QueueEntered,entry_no}', to_jsonb((payload::jsonb #>> '{QueueEntered,entry_no}')::bigint + 1000))::json
                else payload end,
                metadata
         from events where aggregate_type = 'QueueTicket' order by sequence",
    )
    .bind(forged.to_string())
    .execute(&pool)
    .await
    .unwrap();

    let report = concert::audit::audit(&pool, 1, None, &mut |_, _| {})
        .await
        .unwrap();

    let over = report
        .violations
        .iter()
        .find(|v| v.rule == "admissions stay within the active limit")
        .unwrap_or_else(|| panic!("{:#?}", report.violations));
    assert!(
        over.detail.starts_with("2 tokens active at"),
        "{}",
        over.detail
    );
    assert!(over.events[0].contains(&format!("QueueTicket/{forged} seq 2 TicketAdmitted")));
}
