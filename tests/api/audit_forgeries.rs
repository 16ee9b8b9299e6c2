//! Events appended through the store's insert trigger keep the hash chain
//! whole: the audit's rules must name what they break.

use sqlx::PgPool;

use super::audit::{audit, booking_history, names};
use crate::helpers::spawn_app;

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
