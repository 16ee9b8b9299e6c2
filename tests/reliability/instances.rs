//! Several instances: three `serve` processes on one database, the client
//! spreading requests round-robin over them, run a flash sale (60 users, 20
//! seats, at most 10 admitted at once). Each seat is sold at most once, the
//! money adds up, each hold expires at most once, and the queue never admits
//! more than 10 at a time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use concert_client::{Payment, QueueToken, Reservation};
use futures::future::join_all;
use futures::StreamExt;
use rand::Rng;
use serde_json::json;
use uuid::Uuid;

use crate::harness::{self, body, Api, Log, Server, Workdir};
use crate::workload::{check_answered_commands, unended_holds, Hold, Shared, RETRY};

const USERS: usize = 60;
const SEATS: u32 = 20;
const ACTIVE_MAX: u32 = 10;
const PRICE: i64 = 30_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_one_database_keep_the_flash_sale_invariants() {
    let _turn = harness::serial().await;
    let started = Instant::now();
    let work = Workdir::new("three");
    let settings = vec![
        ("CONCERT_QUEUE_ACTIVE_MAX", ACTIVE_MAX.to_string()),
        ("CONCERT_QUEUE_ACTIVE_TTL_SECS", "3".to_string()),
        ("CONCERT_HOLD_TTL_SECS", "2".to_string()),
    ];
    let mut first = Server::start(&work, "instance-a", &settings).await;
    let mut shared_db = settings.clone();
    shared_db.push(("DATABASE_URL", work.database_url()));
    let mut second = Server::start(&work, "instance-b", &shared_db).await;
    let mut third = Server::start(&work, "instance-c", &shared_db).await;
    let api = Api::new(
        vec![first.base(), second.base(), third.base()],
        Duration::from_secs(30),
    );
    let shared = Shared::on_new_concert(api, SEATS, PRICE, false).await;

    let outcomes = join_all((0..USERS).map(|_| shopper(shared.clone()))).await;
    let mut tally: HashMap<&str, usize> = HashMap::new();
    for outcome in &outcomes {
        *tally.entry(outcome).or_default() += 1;
    }
    println!("shoppers: {tally:?}");
    tokio::time::sleep(Duration::from_secs(3)).await; // abandoned holds lapse
    shared.api.wait_caught_up(Duration::from_secs(12)).await;
    for server in [&mut third, &mut second, &mut first] {
        let status = server.terminate().await;
        assert!(status.success(), "{} stopped with {status}", server.name);
    }

    let (code, audit) = harness::audit(&work.data(), ACTIVE_MAX).await;
    assert_eq!(
        code, 0,
        "concert audit --queue-active-max {ACTIVE_MAX} failed:\n{audit}"
    );
    let log = harness::events(&work.data()).await;
    let journal = shared.journal.lock().unwrap();
    let mut violations = check_answered_commands(&journal, &log);
    violations.extend(unended_holds(&log));
    violations.extend(log.invariant_violations());
    let sold = log.count("SeatSold");
    if sold != journal.payments.len() {
        violations.push(format!(
            "{sold} seats sold but {} payments answered 201",
            journal.payments.len()
        ));
    }
    if sold > SEATS as usize {
        violations.push(format!("{sold} seats sold of {SEATS}"));
    }
    // Money adds up: each wallet holds its charges minus its completed payments.
    let balances = log.balances();
    let mut expected: HashMap<String, i64> = HashMap::new();
    for (user, _, amount) in &journal.charges {
        *expected.entry(user.to_string()).or_default() += amount;
    }
    for (_, _, _, user, amount) in &journal.payments {
        *expected.entry(user.to_string()).or_default() -= amount;
    }
    for (wallet, balance) in &balances {
        if expected.get(wallet).copied().unwrap_or(0) != *balance {
            violations.push(format!(
                "wallet {wallet}: the log says {balance}, the answers say {:?}",
                expected.get(wallet)
            ));
        }
    }
    let revenue: i64 = journal.payments.iter().map(|p| p.4).sum();
    if revenue != sold as i64 * PRICE {
        violations.push(format!("revenue {revenue} for {sold} seats at {PRICE}"));
    }
    let most_active = log.most_active_tokens();
    if most_active > ACTIVE_MAX as usize {
        violations.push(format!("{most_active} tokens active at once"));
    }
    let stats = &shared.api.stats;
    violations.extend(stats.oddities());
    assert!(violations.is_empty(), "{violations:#?}");
    println!("{}", stats.summary());
    harness::report_figures(
        "instances",
        json!({
            "instances": 3,
            "users": USERS,
            "seats": SEATS,
            "seats_sold": sold,
            "holds": journal.holds.len(),
            "holds_expired": log.count("HoldExpired"),
            "tickets_admitted": log.count("TicketAdmitted"),
            "most_tokens_active_at_once": most_active,
            "shoppers": tally,
            "http": stats.to_json(),
            "events": log.events.len(),
            "violations": 0,
            "seconds": started.elapsed().as_secs_f64(),
        }),
    );
    assert!(sold > 0, "the sale sold nothing");
}

/// One user of the flash sale: queues, waits to be admitted, holds a seat and
/// pays for it (or walks away and lets the hold lapse). Returns what happened.
async fn shopper(shared: Arc<Shared>) -> &'static str {
    let api = &shared.api;
    let user = Uuid::new_v4();
    let Some(entered) = api.enter(user, shared.concert_id, RETRY).await else {
        return "queue entry failed";
    };
    let QueueToken { token, .. } = entered.json("queue entry", &[200, 201]).unwrap();
    let ticket = Uuid::parse_str(token.split('.').next().unwrap()).unwrap();
    shared
        .journal
        .lock()
        .unwrap()
        .entries
        .push((user, ticket.to_string()));
    match api
        .wait_admitted(&token, Duration::from_secs(90))
        .await
        .as_deref()
    {
        Some("active") => {}
        Some(_) => return "expired before acting",
        None => return "never admitted",
    }
    let mut hold = None;
    for _ in 0..4 {
        let Some(seats) = api
            .free_seats(&token, shared.concert_id, shared.date_id, 100)
            .await
        else {
            return "token lapsed";
        };
        if seats.is_empty() {
            return "sold out";
        }
        let seat_id = seats[rand::thread_rng().gen_range(0..seats.len())].seat_id;
        let Ok(answer) = api.client.hold(&token, seat_id).await else {
            continue;
        };
        match answer.status {
            201 => {
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
            409 => continue,
            _ => return "token lapsed",
        }
    }
    let Some(hold) = hold else {
        return "lost every race for a seat";
    };
    if rand::thread_rng().gen_bool(0.25) {
        return "walked away from a hold";
    }
    let key = format!("charge-{}", hold.reservation_id);
    api.user_token(user).await;
    let charged = api
        .retry(RETRY, || api.client.charge(user, PRICE, Some(&key)))
        .await
        .expect("the charge is answered");
    assert_eq!(charged.status, 200, "{}", charged.text());
    shared
        .journal
        .lock()
        .unwrap()
        .charges
        .push((user, key, PRICE));
    let key = format!("pay-{}", hold.reservation_id);
    let paid = api
        .retry(RETRY, || {
            api.client.pay(&token, hold.reservation_id, Some(&key))
        })
        .await
        .expect("the payment is answered");
    match paid.status {
        201 => {
            let payment: Payment = paid.json("pay", &[201]).unwrap();
            shared.journal.lock().unwrap().payments.push((
                payment.payment_id.to_string(),
                hold.reservation_id.to_string(),
                hold.seat_id.to_string(),
                user,
                payment.amount,
            ));
            "bought a seat"
        }
        401 | 409 => "too slow to pay",
        _ => panic!("payment answered {}", paid.text()),
    }
}

impl Log {
    /// The most queue tokens active at once for one concert, replaying
    /// admissions and expiries in commit order.
    pub fn most_active_tokens(&self) -> usize {
        let mut concert_of: HashMap<&str, String> = HashMap::new();
        let mut active: HashMap<&str, bool> = HashMap::new();
        let mut count: HashMap<String, usize> = HashMap::new();
        let mut most = 0;
        for event in &self.events {
            let ticket = Log::id(event);
            match event["event_type"].as_str() {
                Some("QueueEntered") => {
                    let concert = event["payload"]["QueueEntered"]["concert_id"].to_string();
                    concert_of.insert(ticket, concert);
                }
                Some("TicketAdmitted") => {
                    let concert = concert_of.get(ticket).cloned().unwrap_or_default();
                    active.insert(ticket, true);
                    let n = count.entry(concert).or_default();
                    *n += 1;
                    most = most.max(*n);
                }
                Some("TicketExpired") if active.insert(ticket, false) == Some(true) => {
                    let concert = concert_of.get(ticket).cloned().unwrap_or_default();
                    *count.entry(concert).or_default() -= 1;
                }
                _ => {}
            }
        }
        most
    }
}

/// One wallet charged through three instances at once: each instance's batch
/// races the others' for the wallet's stream, and a loser decides its charges
/// again on the winner's state. However often a charge loses, it is not
/// refused for it while its request waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_charged_through_three_instances_at_once_refuses_no_charge() {
    const CHARGES: usize = 1200;
    let _turn = harness::serial().await;
    let work = Workdir::new("hot-wallet");
    let mut first = Server::start(&work, "hot-wallet-a", &[]).await;
    let shared_db = [("DATABASE_URL", work.database_url())];
    let mut second = Server::start(&work, "hot-wallet-b", &shared_db).await;
    let mut third = Server::start(&work, "hot-wallet-c", &shared_db).await;
    let bases = vec![first.base(), second.base(), third.base()];
    let api = Api::new(bases.clone(), Duration::from_secs(30));
    let user = Uuid::new_v4();
    api.user_token(user).await;

    let statuses: Vec<u16> = futures::stream::iter(0..CHARGES)
        .map(|_| async {
            api.client
                .charge(user, 1, None)
                .await
                .map_or(0, |a| a.status)
        })
        .buffer_unordered(30)
        .collect()
        .await;
    let mut tally: HashMap<u16, usize> = HashMap::new();
    for status in statuses {
        *tally.entry(status).or_default() += 1;
    }
    let balance = body(&api.client.balance(user).await.unwrap())["balance"].clone();
    let mut lost_races = 0.0;
    for base in &bases {
        let metrics = reqwest::get(format!("{base}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        lost_races += metrics
            .lines()
            .find_map(|line| {
                line.strip_prefix("concert_pipeline_lost_races_total{aggregate=\"Wallet\"} ")
            })
            .map_or(0.0, |value| value.parse::<f64>().unwrap());
    }
    for server in [&mut third, &mut second, &mut first] {
        server.terminate().await;
    }
    println!("charges: {tally:?}, wallet streams decided again: {lost_races}");
    assert_eq!(tally, HashMap::from([(200, CHARGES)]));
    assert_eq!(balance, json!(CHARGES));
    assert!(
        lost_races > 0.0,
        "the instances never raced: the test shows nothing"
    );
}
