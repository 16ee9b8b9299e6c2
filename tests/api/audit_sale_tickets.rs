//! A sale names the queue ticket its payment spent, and the audit holds each
//! ticket to one seat, of its buyer's, admitted. Forged through the insert
//! trigger (the hash chain stays whole), a second seat paid with a ticket
//! that had paid already passed the audit before sales named their tickets.

use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use super::audit::{audit, booking_history};
use crate::helpers::{eventually, json_of, spawn_app, spawn_app_on, test_config};

const ONE_SEAT_A_TICKET: &str = "a queue ticket pays for one seat";
const OWN_TICKET: &str = "a seat is paid with a ticket its buyer was admitted on for its concert";
/// The forged events are not in the read models; that rule is not the point.
const READ_MODELS: &str = "read models agree with the log";

#[tokio::test]
async fn each_sale_names_the_ticket_its_payment_spent_and_the_audit_passes() {
    let app = spawn_app().await;
    booking_history(&app).await;

    let sales: Vec<(String, Value)> = sqlx::query_as(
        "select event_version, payload::jsonb -> 'SeatSold' from events
         where event_type = 'SeatSold' order by position",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();

    assert_eq!(sales.len(), 3);
    let mut tickets = Vec::new();
    for (version, sale) in &sales {
        assert_eq!(version, "2", "{sale}");
        let ticket = sale["ticket_id"]
            .as_str()
            .expect("the sale names its ticket");
        let (holder, expiry): (Value, Value) = sqlx::query_as(
            "select (select payload::jsonb #> '{QueueEntered,user_id}' from events e
                     where e.aggregate_id = t.aggregate_id and event_type = 'QueueEntered'),
                    (select payload::jsonb #> '{TicketExpired,reason}' from events e
                     where e.aggregate_id = t.aggregate_id and event_type = 'TicketExpired')
             from (select $1::text as aggregate_id) t",
        )
        .bind(ticket)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!(holder, sale["user_id"], "the buyer's own ticket");
        assert_eq!(expiry, "paid", "spent by the payment");
        tickets.push(ticket.to_string());
    }
    tickets.sort();
    tickets.dedup();
    assert_eq!(tickets.len(), 3, "one ticket a sale");
    let report = audit(&app.pool).await;
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
}

#[tokio::test]
async fn a_ticket_paying_for_a_second_seat_or_never_admitted_is_named() {
    let app = spawn_app().await;
    booking_history(&app).await;
    let pool = app.shutdown().await;
    concert::event_log::assign_positions(&pool).await.unwrap();

    // The first buyer pays for another seat of the concert with the ticket
    // that paid for their first: everything else about it adds up.
    let first = Sale::nth(&pool, 0).await;
    forge_sale(&pool, &first, 0, first.ticket.as_deref()).await;

    let found = rules_broken(&pool).await;
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].0, ONE_SEAT_A_TICKET);
    assert_eq!(
        found[0].1,
        format!("ticket {} paid for two seats", first.ticket.unwrap())
    );

    // The second buyer pays with a ticket of theirs that entered the queue
    // and was never admitted.
    let second = Sale::nth(&pool, 1).await;
    let waiting = Uuid::new_v4().to_string();
    let mut entered: Value = sqlx::query_scalar(
        "select payload::jsonb from events where event_type = 'QueueEntered'
         and payload::jsonb #>> '{QueueEntered,user_id}' = $1",
    )
    .bind(&second.buyer)
    .fetch_one(&pool)
    .await
    .unwrap();
    // A number the concert never handed out: a copied one is named as used twice.
    entered["QueueEntered"]["entry_no"] = 1_000.into();
    append(&pool, "QueueTicket", &waiting, "QueueEntered", "1", entered).await;
    forge_sale(&pool, &second, 1, Some(&waiting)).await;

    let found = rules_broken(&pool).await;
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_eq!(found[1].0, OWN_TICKET);
    assert_eq!(
        found[1].1,
        format!("ticket {waiting} was never admitted before the sale")
    );
}

/// A payment cut after its debit and finished by the scheduler's recovery
/// once its ticket had lapsed sells without naming a ticket (the recovery
/// knows none): an honest history, after sales that named theirs.
#[tokio::test]
async fn a_payment_recovered_after_its_ticket_lapsed_passes_the_audit() {
    let app = spawn_app().await;
    booking_history(&app).await;
    let pool = app.shutdown().await;
    let mut config = test_config();
    config.fault_stop_after_debit = true;
    // Short, so it lapses soon after the cut payment; long enough that a
    // busy machine still holds and pays before it does.
    config.queue_active_ttl_secs = 4;
    config.payment_recovery_secs = 3600;
    let app = spawn_app_on(pool, config).await;
    let concert = app.create_concert(1, 3, 1000).await;
    let user = app.active_user(&concert.concert_id).await;
    let seat = app.first_free_seat(&user, &concert).await;
    app.fund(user.user_id, 5000).await;
    let held = json_of(&app.hold(&user, &seat).await);
    let cut = app
        .pay(&user, held["reservation_id"].as_str().unwrap())
        .await;
    assert_eq!(cut.status, 503, "stopped after the debit");
    let lapsed = |pool: PgPool| async move {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from events where event_type = 'TicketExpired'
             and payload::jsonb #>> '{TicketExpired,reason}' = 'timeout'",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
            > 0
    };
    eventually("the ticket lapses", || lapsed(app.pool.clone())).await;
    let pool = app.shutdown().await;

    let app = spawn_app_on(pool, test_config()).await;
    let sold = |pool: PgPool| async move {
        sqlx::query_scalar::<_, i64>("select count(*) from events where event_type = 'SeatSold'")
            .fetch_one(&pool)
            .await
            .unwrap()
            == 4
    };
    eventually("the recovery sells the seat", || sold(app.pool.clone())).await;
    let pool = app.shutdown().await;

    let report = audit(&pool).await;
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
}

/// A sale of the booking history: its buyer, ticket and price.
struct Sale {
    buyer: String,
    ticket: Option<String>,
    price: i64,
}

impl Sale {
    async fn nth(pool: &PgPool, n: i64) -> Self {
        let sale: Value = sqlx::query_scalar(
            "select payload::jsonb -> 'SeatSold' from events
             where event_type = 'SeatSold' order by position offset $1 limit 1",
        )
        .bind(n)
        .fetch_one(pool)
        .await
        .unwrap();
        Sale {
            buyer: sale["user_id"].as_str().unwrap().to_string(),
            ticket: sale["ticket_id"].as_str().map(str::to_string),
            price: sale["price"].as_i64().unwrap(),
        }
    }
}

/// The rules the audit names, and their details, but the read models'.
async fn rules_broken(pool: &PgPool) -> Vec<(&'static str, String)> {
    audit(pool)
        .await
        .violations
        .into_iter()
        .filter(|violation| violation.rule != READ_MODELS)
        .map(|violation| (violation.rule, violation.detail))
        .collect()
}

/// Appends a hold of the `skip`-th highest free seat by `sale`'s buyer, its
/// payment from their wallet (which holds the price) and the sale naming
/// `ticket`, each as the service would write it.
async fn forge_sale(pool: &PgPool, sale: &Sale, skip: i64, ticket: Option<&str>) {
    let (seat, date, seat_no): (Uuid, Uuid, i32) = sqlx::query_as(
        "select seat_id, date_id, seat_no from seats where status = 'free'
         order by seat_no desc, seat_id offset $1 limit 1",
    )
    .bind(skip)
    .fetch_one(pool)
    .await
    .unwrap();
    // Dated as the buyer's own first hold, while their ticket was active
    // (the log's first hold was made before a later buyer was admitted).
    let (held_at, until, balance): (Value, Value, i64) = sqlx::query_as(
        "select (select payload::jsonb #> '{SeatHeld,held_at}' from events
                 where event_type = 'SeatHeld' and payload::jsonb #>> '{SeatHeld,user_id}' = $1
                 order by position limit 1),
                (select payload::jsonb #> '{SeatHeld,until}' from events
                 where event_type = 'SeatHeld' and payload::jsonb #>> '{SeatHeld,user_id}' = $1
                 order by position limit 1),
                (select (payload::jsonb -> event_type ->> 'balance')::bigint from events
                 where aggregate_type = 'Wallet' and aggregate_id = $1 order by sequence desc limit 1)",
    )
    .bind(&sale.buyer)
    .fetch_one(pool)
    .await
    .unwrap();
    let (reservation, payment) = (Uuid::new_v4(), Uuid::new_v4());
    let held = json!({"SeatHeld": {
        "reservation_id": reservation, "user_id": sale.buyer, "date_id": date,
        "seat_no": seat_no, "price": sale.price, "held_at": held_at, "until": until,
    }});
    append(pool, "Seat", &seat.to_string(), "SeatHeld", "1", held).await;
    let paid = json!({"Paid": {
        "payment_id": payment, "reservation_id": reservation, "seat_id": seat,
        "amount": sale.price, "balance": balance - sale.price, "paid_at": held_at,
    }});
    append(pool, "Wallet", &sale.buyer, "Paid", "1", paid).await;
    let mut sold = json!({
        "reservation_id": reservation, "payment_id": payment,
        "user_id": sale.buyer, "price": sale.price,
    });
    let version = match ticket {
        Some(ticket) => {
            sold["ticket_id"] = json!(ticket);
            "2"
        }
        None => "1",
    };
    let sold = json!({ "SeatSold": sold });
    append(pool, "Seat", &seat.to_string(), "SeatSold", version, sold).await;
}

/// Appends an event after the last of its stream, with the log's first
/// event's metadata, and gives it its position.
async fn append(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
    event_type: &str,
    version: &str,
    payload: Value,
) {
    sqlx::query(
        "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         select $1, $2, coalesce((select max(sequence) from events
                                  where aggregate_type = $1 and aggregate_id = $2), 0) + 1,
                $3, $4, $5::json, (select metadata from events order by position limit 1)",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(event_type)
    .bind(version)
    .bind(payload.to_string())
    .execute(pool)
    .await
    .unwrap();
    concert::event_log::assign_positions(pool).await.unwrap();
}
