//! A store edited behind the service's back: the audit names each change (an
//! edited amount, a deleted charge, a deleted newest event, a spent ticket
//! set back to active, a forged sale, a queue's entry counter set back) by
//! the events behind it.

use uuid::Uuid;

use super::audit::{audit, booking_history, names};
use crate::helpers::spawn_app;

#[tokio::test]
async fn the_audit_names_an_edited_amount() {
    let app = spawn_app().await;
    booking_history(&app).await;
    let pool = app.shutdown().await;
    let (id, sequence): (String, i64) = sqlx::query_as(
        "update events set payload = regexp_replace(payload::text, '\"amount\": ?2500', '\"amount\": 25000')::json
         where (aggregate_type, aggregate_id, sequence) = (select aggregate_type, aggregate_id, sequence from events
           where event_type = 'Charged' order by position limit 1)
         returning aggregate_id, sequence",
    )
    .fetch_one(&pool)
    .await
    .unwrap();

    let report = audit(&pool).await;

    assert!(
        names(&report, &format!("Wallet/{id} seq {sequence} Charged")),
        "{:#?}",
        report.violations
    );
    assert!(report
        .violations
        .iter()
        .any(|v| v.rule == "hash chain intact"));
}

#[tokio::test]
async fn the_audit_names_a_deleted_charge() {
    let app = spawn_app().await;
    booking_history(&app).await;
    let pool = app.shutdown().await;
    let id: String = sqlx::query_scalar(
        "delete from events where (aggregate_type, aggregate_id, sequence) = (select aggregate_type, aggregate_id, sequence
           from events where event_type = 'Charged' order by position limit 1) returning aggregate_id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();

    let report = audit(&pool).await;

    assert!(
        names(&report, &format!("Wallet/{id}")),
        "{:#?}",
        report.violations
    );
    assert!(report
        .violations
        .iter()
        .any(|v| v.rule == "stream sequences have no gaps"));
    assert!(report
        .violations
        .iter()
        .any(|v| v.rule == "read models agree with the log"));
}

/// The newest event of a stream has nothing after it to chain over it: only
/// the hole it leaves in the global positions tells it was there.
#[tokio::test]
async fn the_audit_names_the_deleted_newest_event_of_a_stream_by_the_hole_it_leaves() {
    let app = spawn_app().await;
    booking_history(&app).await;
    let pool = app.shutdown().await;
    let deleted: i64 = sqlx::query_scalar(
        "delete from events where (aggregate_type, aggregate_id, sequence) = (
           select e.aggregate_type, e.aggregate_id, e.sequence from events e
           where e.sequence = (select max(sequence) from events s
                               where s.aggregate_type = e.aggregate_type and s.aggregate_id = e.aggregate_id)
             and e.position < (select max(position) from events)
           order by e.position limit 1)
         returning position",
    )
    .fetch_one(&pool)
    .await
    .unwrap();

    let report = audit(&pool).await;

    let hole = report
        .violations
        .iter()
        .find(|v| v.rule == "positions have no holes")
        .unwrap_or_else(|| panic!("{:#?}", report.violations));
    assert_eq!(
        hole.detail,
        format!(
            "position {} follows {}: the events in between are missing",
            deleted + 1,
            deleted - 1
        )
    );
}

/// A paid token is spent for good; listed as active again, it would open
/// the dates, seats and holds to its holder once more.
#[tokio::test]
async fn the_audit_names_a_spent_ticket_set_back_to_active() {
    let app = spawn_app().await;
    booking_history(&app).await;
    let pool = app.shutdown().await;
    let ticket: Uuid = sqlx::query_scalar(
        "update queue_tickets set status = 'active', expires_at = now() + interval '1 hour'
         where ticket_id = (select ticket_id from queue_tickets where status = 'expired' limit 1)
         returning ticket_id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();

    let report = audit(&pool).await;

    assert!(
        report
            .violations
            .iter()
            .any(|v| v.rule == "read models agree with the log"
                && v.detail
                    == format!("queue_tickets lists {ticket} as active, the log expired it")),
        "{:#?}",
        report.violations
    );
}

#[tokio::test]
async fn the_audit_names_a_forged_sale() {
    let app = spawn_app().await;
    booking_history(&app).await;
    let pool = app.shutdown().await;
    let seat: Uuid = sqlx::query_scalar("select seat_id from seats where status = 'free' limit 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    let forged = serde_json::json!({"SeatSold": {"reservation_id": Uuid::new_v4(), "payment_id": Uuid::new_v4(),
        "user_id": Uuid::new_v4(), "price": 1000}});
    sqlx::query(
        "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         values ('Seat', $1, 1, 'SeatSold', '1', $2, '{}')",
    )
    .bind(seat.to_string())
    .bind(forged)
    .execute(&pool)
    .await
    .unwrap();

    let report = audit(&pool).await;

    assert!(
        names(&report, &format!("Seat/{seat} seq 1 SeatSold")),
        "{:#?}",
        report.violations
    );
    assert!(report
        .violations
        .iter()
        .any(|v| v.rule == "a sold seat has one completed payment at its price"));
}

/// The probe's edit: the concert's entry counter set back, so the entries
/// after it take numbers already used, and admission order is no longer
/// first come, first served.
#[tokio::test]
async fn the_audit_names_entry_numbers_handed_out_twice_after_the_counter_was_set_back() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 10, 1000).await;
    for _ in 0..7 {
        let (status, _) = app.enter_queue(Uuid::new_v4(), &concert.concert_id).await;
        assert_eq!(status, reqwest::StatusCode::CREATED);
    }
    sqlx::query("update queue_lines set issued = 1")
        .execute(&app.pool)
        .await
        .unwrap();
    for _ in 0..6 {
        app.enter_queue(Uuid::new_v4(), &concert.concert_id).await;
    }
    let pool = app.shutdown().await;

    let report = audit(&pool).await;

    let repeated: Vec<_> = report
        .violations
        .iter()
        .filter(|v| v.rule == "entry numbers are used once a concert")
        .collect();
    assert_eq!(repeated.len(), 6, "{:#?}", report.violations);
    assert_eq!(
        repeated[0].detail,
        format!(
            "entry number 2 of concert {} is used again",
            concert.concert_id
        )
    );
    for violation in repeated {
        assert!(
            violation.events.len() == 2
                && violation.events.iter().all(|e| e.contains("QueueEntered")),
            "{violation:#?}"
        );
    }
}
