//! The booking workload of the fault tests: workers that sign in, queue,
//! charge, hold and pay as new users over and over, retrying what is safe to
//! retry, and a journal of every command that was answered 2xx, checked
//! against the log.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use concert::ids::{idempotent_id, UserId};
use concert_client::{Payment, QueueToken, Reservation};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use uuid::Uuid;

use crate::harness::{Api, Log};

/// How long a worker retries a request that is safe to repeat (covers a restart).
pub const RETRY: Duration = Duration::from_secs(30);

/// Every command the server answered 2xx, as the client saw it.
#[derive(Default)]
pub struct Journal {
    /// 2xx queue entries: (user, ticket id from the token).
    pub entries: Vec<(Uuid, String)>,
    /// 200 keyed charges: (user, key, amount).
    pub charges: Vec<(Uuid, String, i64)>,
    /// 200 charges without a key: (user, amount).
    pub plain_charges: Vec<(Uuid, i64)>,
    /// 201 holds.
    pub holds: Vec<Hold>,
    /// 201 payments: (payment id, reservation id, seat id, user, amount).
    pub payments: Vec<(String, String, String, Uuid, i64)>,
    /// Payments answered 503 while the server stopped them after the debit.
    pub cut: Vec<(String, String)>,
}

/// A hold answered 201.
#[derive(Clone)]
pub struct Hold {
    pub reservation_id: Uuid,
    pub seat_id: Uuid,
    pub user: Uuid,
    pub token: String,
    pub until: DateTime<Utc>,
}

/// What the workers of one test share.
pub struct Shared {
    pub price: i64,
    pub api: Api,
    pub journal: Mutex<Journal>,
    pub concert_id: Uuid,
    pub date_id: Uuid,
    pub stop: AtomicBool,
    /// True while the server runs with the stop-after-debit fault.
    pub faulty: AtomicBool,
}

impl Shared {
    /// Schedules a concert of `seats` seats at `price` through `api` for the
    /// workers to book; `faulty` when the server stops payments after the debit.
    pub async fn on_new_concert(api: Api, seats: u32, price: i64, faulty: bool) -> Arc<Shared> {
        let (concert_id, date_id) = api.create_concert(seats, price).await;
        Arc::new(Shared {
            price,
            api,
            journal: Mutex::new(Journal::default()),
            concert_id,
            date_id,
            stop: AtomicBool::new(false),
            faulty: AtomicBool::new(faulty),
        })
    }
}

/// Starts `count` booking workers on `shared`.
pub fn start_workers(shared: &Arc<Shared>, count: usize) -> Vec<tokio::task::JoinHandle<()>> {
    (0..count)
        .map(|n| tokio::spawn(worker(n as u64, shared.clone())))
        .collect()
}

/// One booking worker: sign in, queue, wait, charge, hold, pay (or let the hold lapse),
/// over and over with new users, riding out crashes and outages.
pub async fn worker(n: u64, shared: Arc<Shared>) {
    let mut rng = StdRng::seed_from_u64(rand::random::<u64>() ^ n);
    while !shared.stop.load(Ordering::SeqCst) {
        cycle(&shared, &mut rng).await;
    }
}

async fn cycle(shared: &Shared, rng: &mut StdRng) {
    let api = &shared.api;
    let user = Uuid::new_v4();
    let Some(entered) = api.enter(user, shared.concert_id, RETRY).await else {
        return;
    };
    if !matches!(entered.status, 200 | 201) {
        return;
    }
    let QueueToken { token, .. } = entered.json("queue entry", &[200, 201]).unwrap();
    // The token is `<ticket id>.<signature>`; the ticket's stream id is the hyphenated UUID.
    let ticket_id = Uuid::parse_str(token.split('.').next().unwrap_or_default())
        .map(|id| id.to_string())
        .unwrap_or_default();
    shared
        .journal
        .lock()
        .unwrap()
        .entries
        .push((user, ticket_id));
    if api.wait_admitted(&token, RETRY).await.as_deref() != Some("active") {
        return;
    }

    // A keyed charge, retried with its key until answered: charged once.
    // The user signed in to enter the queue; the same token pays into the wallet.
    let key = format!("charge-{}", Uuid::new_v4().simple());
    let amount = shared.price + rng.gen_range(1..shared.price);
    let charged = api
        .retry(RETRY, || api.client.charge(user, amount, Some(&key)))
        .await;
    if let Some(answer) = charged {
        if answer.status == 200 {
            shared
                .journal
                .lock()
                .unwrap()
                .charges
                .push((user, key, amount));
        }
    }
    // A charge without a key is sent once: when its answer is lost, it may or may not count.
    let small = rng.gen_range(1..100);
    if let Ok(answer) = api.client.charge(user, small, None).await {
        if answer.status == 200 {
            shared
                .journal
                .lock()
                .unwrap()
                .plain_charges
                .push((user, small));
        }
    }

    let Some(seats) = api
        .free_seats(&token, shared.concert_id, shared.date_id, 200)
        .await
    else {
        return;
    };
    let mut hold = None;
    for _ in 0..3 {
        if seats.is_empty() {
            return;
        }
        let seat_id = seats[rng.gen_range(0..seats.len())].seat_id;
        let Ok(answer) = api.client.hold(&token, seat_id).await else {
            return;
        };
        if answer.status == 201 {
            let reservation: Reservation = answer.json("hold", &[201]).unwrap();
            let held = Hold {
                reservation_id: reservation.reservation_id,
                seat_id,
                user,
                token: token.clone(),
                until: reservation.expires_at,
            };
            shared.journal.lock().unwrap().holds.push(held.clone());
            hold = Some(held);
            break;
        }
    }
    let Some(hold) = hold else { return };
    if rng.gen_bool(0.3) {
        return; // the hold is left to lapse
    }

    // Pays with a key; a lost answer is retried with the same key.
    let key = format!("pay-{}", hold.reservation_id);
    let payment_id = idempotent_id(UserId(user), "pay", &key).to_string();
    let deadline = Instant::now() + RETRY;
    let mut retried_after_cut = false;
    loop {
        let faulty = shared.faulty.load(Ordering::SeqCst);
        match api
            .client
            .pay(&token, hold.reservation_id, Some(&key))
            .await
        {
            Ok(answer) if answer.status == 201 => {
                let payment: Payment = answer.json("pay", &[201]).unwrap();
                assert_eq!(payment.payment_id.to_string(), payment_id);
                shared.journal.lock().unwrap().payments.push((
                    payment_id,
                    hold.reservation_id.to_string(),
                    hold.seat_id.to_string(),
                    user,
                    payment.amount,
                ));
                return;
            }
            Ok(answer)
                if answer.status == 503 && faulty && shared.faulty.load(Ordering::SeqCst) =>
            {
                if !retried_after_cut {
                    shared
                        .journal
                        .lock()
                        .unwrap()
                        .cut
                        .push((payment_id.clone(), hold.reservation_id.to_string()));
                    // A retry with the same key must not debit again.
                    retried_after_cut = true;
                    continue;
                }
                return;
            }
            Ok(_) => return,
            Err(_) if Instant::now() < deadline && !shared.stop.load(Ordering::SeqCst) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(_) => return,
        }
    }
}

/// Each command answered 2xx left its events.
pub fn check_answered_commands(journal: &Journal, log: &Log) -> Vec<String> {
    let mut missing = Vec::new();
    let entered: HashMap<&str, &Value> = log
        .of_type("QueueEntered")
        .map(|(event, body)| (Log::id(event), body))
        .collect();
    for (user, ticket) in &journal.entries {
        match entered.get(ticket.as_str()) {
            Some(body) if body["user_id"] == user.to_string() => {}
            other => missing.push(format!("queue entry {ticket} of {user}: {other:?}")),
        }
    }
    let charges: HashSet<(String, String, i64)> = log
        .of_type("Charged")
        .map(|(event, body)| {
            (
                Log::id(event).to_string(),
                body["charge_id"].as_str().unwrap().to_string(),
                body["amount"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut charge_ids = HashMap::new();
    for (_, body) in log.of_type("Charged") {
        *charge_ids.entry(body["charge_id"].to_string()).or_insert(0) += 1;
    }
    for (user, key, amount) in &journal.charges {
        let charge_id = idempotent_id(UserId(*user), "charge", key).to_string();
        if !charges.contains(&(user.to_string(), charge_id.clone(), *amount)) {
            missing.push(format!("charge {key} of {amount} for {user}"));
        }
        if charge_ids.get(&format!("\"{charge_id}\"")) != Some(&1) {
            missing.push(format!("charge {key} for {user} not recorded exactly once"));
        }
    }
    // Charges without a key: each answered amount is among the wallet's charges.
    let mut amounts: HashMap<(String, i64), usize> = HashMap::new();
    for (event, body) in log.of_type("Charged") {
        *amounts
            .entry((Log::id(event).to_string(), body["amount"].as_i64().unwrap()))
            .or_default() += 1;
    }
    let mut answered: HashMap<(String, i64), usize> = HashMap::new();
    for (user, amount) in &journal.plain_charges {
        *answered.entry((user.to_string(), *amount)).or_default() += 1;
    }
    for (key, times) in answered {
        if amounts.get(&key).copied().unwrap_or(0) < times {
            missing.push(format!(
                "{times} charges of {} for {} answered 200",
                key.1, key.0
            ));
        }
    }
    let held: HashMap<String, (&str, &Value)> = log
        .of_type("SeatHeld")
        .map(|(event, body)| {
            (
                body["reservation_id"].as_str().unwrap().to_string(),
                (Log::id(event), body),
            )
        })
        .collect();
    for hold in &journal.holds {
        match held.get(&hold.reservation_id.to_string()) {
            Some((seat, body))
                if *seat == hold.seat_id.to_string()
                    && body["user_id"] == hold.user.to_string() => {}
            other => missing.push(format!(
                "hold {} of seat {}: {other:?}",
                hold.reservation_id, hold.seat_id
            )),
        }
    }
    let paid: HashMap<String, (&str, &Value)> = log
        .of_type("Paid")
        .map(|(event, body)| {
            (
                body["payment_id"].as_str().unwrap().to_string(),
                (Log::id(event), body),
            )
        })
        .collect();
    let sold: HashMap<String, (&str, &Value)> = log
        .of_type("SeatSold")
        .map(|(event, body)| {
            (
                body["payment_id"].as_str().unwrap().to_string(),
                (Log::id(event), body),
            )
        })
        .collect();
    let refunded: HashSet<String> = log
        .of_type("Refunded")
        .map(|(_, body)| body["payment_id"].as_str().unwrap().to_string())
        .collect();
    for (payment_id, reservation_id, seat_id, user, amount) in &journal.payments {
        match paid.get(payment_id) {
            Some((wallet, body))
                if *wallet == user.to_string()
                    && body["amount"] == *amount
                    && body["reservation_id"] == reservation_id.as_str() => {}
            other => missing.push(format!(
                "payment {payment_id} has no matching Paid: {other:?}"
            )),
        }
        match sold.get(payment_id) {
            Some((seat, body))
                if *seat == seat_id.as_str()
                    && body["reservation_id"] == reservation_id.as_str() => {}
            other => missing.push(format!(
                "payment {payment_id} has no matching SeatSold: {other:?}"
            )),
        }
        if refunded.contains(payment_id) {
            missing.push(format!(
                "payment {payment_id} answered 201 but was refunded"
            ));
        }
    }
    for (payment_id, reservation_id) in &journal.cut {
        if !paid.contains_key(payment_id) {
            missing.push(format!(
                "payment {payment_id} stopped after its debit has no Paid"
            ));
        }
        if sold.contains_key(payment_id) == refunded.contains(payment_id) {
            missing.push(format!(
                "payment {payment_id} for {reservation_id}, cut after the debit, was neither finished nor refunded exactly"
            ));
        }
    }
    missing
}

/// Holds in the log that never ended (sold, expired or released).
pub fn unended_holds(log: &Log) -> Vec<String> {
    let mut ended = HashSet::new();
    for event in &log.events {
        let kind = event["event_type"].as_str().unwrap_or_default();
        if matches!(kind, "HoldExpired" | "HoldReleased" | "SeatSold") {
            ended.insert(
                event["payload"][kind]["reservation_id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
    }
    log.of_type("SeatHeld")
        .filter(|(_, body)| !ended.contains(body["reservation_id"].as_str().unwrap()))
        .map(|(event, body)| {
            format!(
                "hold {} of seat {} (until {}) never ended",
                body["reservation_id"],
                Log::id(event),
                body["until"]
            )
        })
        .collect()
}
