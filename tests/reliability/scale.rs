//! Concurrency at scale, against the real binary with its default pool of 32
//! connections: 1,000 users press "hold" on one seat at once (exactly one
//! wins), 1,000 charges and a handful of payments hit one wallet at once
//! (the balance is the sum of its events and never negative), and one user
//! enters the queue 100 times at once (one ticket).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use concert_client::{Balance, FreeSeat, Payment, QueueToken, Reservation};
use futures::future::join_all;
use futures::{stream, StreamExt};
use serde_json::json;
use uuid::Uuid;

use crate::harness::{self, Api, Log, Server, Workdir};

const CROWD: usize = 1000;
const PRICE: i64 = 1000;
/// Payments at once on one wallet, a token each.
const PAYMENTS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_at_once_on_one_seat_one_wallet_and_one_queue_place() {
    let _turn = harness::serial().await;
    let started = Instant::now();
    let work = Workdir::new("scale");
    // A thousand commands on one wallet take turns; on a loaded 2-core machine
    // the last of them may wait longer than the default 30 s request timeout.
    let settings = [
        ("CONCERT_QUEUE_ACTIVE_MAX", (CROWD + 100).to_string()),
        ("CONCERT_REQUEST_TIMEOUT_SECS", "120".to_string()),
    ];
    let mut server = Server::start(&work, "scale", &settings).await;
    let api = Api::new(vec![server.base()], Duration::from_secs(60));
    let (concert_id, date_id) = api.create_concert(50, PRICE).await;

    // A thousand admitted users (set up 64 at a time).
    let users: Vec<(Uuid, String)> = stream::iter(0..CROWD)
        .map(|_| async {
            let user = Uuid::new_v4();
            let entered = api
                .enter(user, concert_id, Duration::from_secs(30))
                .await
                .expect("queue entry");
            let QueueToken { token, .. } = entered.json("queue entry", &[200, 201]).unwrap();
            (user, token)
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let admitted: Vec<Option<String>> = stream::iter(&users)
        .map(|(_, token)| api.wait_admitted(token, Duration::from_secs(60)))
        .buffer_unordered(64)
        .collect()
        .await;
    assert!(
        admitted
            .iter()
            .all(|status| status.as_deref() == Some("active")),
        "every user is admitted"
    );
    let setup = started.elapsed();
    let seats = api
        .free_seats(&users[0].1, concert_id, date_id, 50)
        .await
        .unwrap();

    // 1. A thousand holds on one seat at once.
    let target = seats[0].seat_id;
    let hold_started = Instant::now();
    let api_ref = &api;
    let holds = join_all(
        users
            .iter()
            .map(|(_, token)| async move { api_ref.client.hold(token, target).await }),
    )
    .await;
    let hold_time = hold_started.elapsed();
    let mut hold_statuses: HashMap<String, usize> = HashMap::new();
    for answer in &holds {
        let key = match answer {
            Ok(answer) => format!("{} {}", answer.status, answer.code().unwrap_or_default())
                .trim()
                .to_string(),
            Err(error) => format!("no answer: {error}"),
        };
        *hold_statuses.entry(key).or_default() += 1;
    }
    let won = hold_statuses.get("201").copied().unwrap_or(0);
    let refused = hold_statuses
        .get("409 seat_unavailable")
        .copied()
        .unwrap_or(0);
    assert_eq!(
        (won, refused),
        (1, CROWD - 1),
        "one hold wins, the rest are 409 seat_unavailable: {hold_statuses:?}"
    );

    // 2. Five payments at once on a wallet holding two seats' worth: at most
    // two go through and the balance never goes negative. Then the same
    // again on another wallet while a thousand charges land on it.
    let lean = wallet_race(&api, users[1].0, 0).await;
    assert!(
        lean.paid <= 2 * PRICE,
        "more was paid than the wallet held: {:?}",
        lean.payments
    );
    let busy = wallet_race(&api, users[2].0, CROWD).await;
    assert_eq!(
        busy.charge_statuses.get(&200).copied(),
        Some(CROWD),
        "every charge succeeds: {:?}",
        busy.charge_statuses
    );
    for race in [&lean, &busy] {
        assert!(
            race.paid >= PRICE,
            "no payment went through: {:?}",
            race.payments
        );
        assert_eq!(
            race.balance,
            race.charged - race.paid,
            "{:?}",
            race.payments
        );
    }

    // 3. One user enters the queue 100 times at once: one ticket. The user
    // signs in once, before the race.
    let eager = Uuid::new_v4();
    api.user_token(eager).await;
    let entries = join_all(
        (0..100).map(|_| async move { api_ref.client.enter_queue(eager, concert_id).await }),
    )
    .await;
    let mut entry_statuses: HashMap<u16, usize> = HashMap::new();
    let mut tokens = HashSet::new();
    for answer in &entries {
        let answer = answer.as_ref().expect("a queue answer");
        *entry_statuses.entry(answer.status).or_default() += 1;
        if matches!(answer.status, 200 | 201) {
            let ticket: QueueToken = answer.json("queue entry", &[200, 201]).unwrap();
            tokens.insert(ticket.token);
        }
    }
    assert_eq!(
        tokens.len(),
        1,
        "one token for one user: {entry_statuses:?}"
    );
    assert_eq!(
        (entry_statuses.get(&201), entry_statuses.get(&200)),
        (Some(&1), Some(&99)),
        "one entry creates the ticket, the others return it"
    );

    let status = server.terminate().await;
    assert!(status.success(), "stopped with {status}");
    let (code, audit) = harness::audit(&work.data(), (CROWD + 100) as u32).await;
    assert_eq!(code, 0, "concert audit failed:\n{audit}");
    let log = harness::events(&work.data()).await;
    let mut violations = log.invariant_violations();
    let held = log
        .of_type("SeatHeld")
        .filter(|(event, _)| Log::id(event) == target.to_string())
        .count();
    if held != 1 {
        violations.push(format!("{held} SeatHeld events for the contested seat"));
    }
    let wallet = busy.user.to_string();
    let charged_events = log
        .of_type("Charged")
        .filter(|(event, _)| Log::id(event) == wallet)
        .count();
    if charged_events != CROWD + 1 {
        violations.push(format!(
            "{charged_events} Charged events for {} charges",
            CROWD + 1
        ));
    }
    for race in [&lean, &busy] {
        let wallet = race.user.to_string();
        if log.balances().get(&wallet) != Some(&(race.charged - race.paid)) {
            violations.push(format!(
                "the log's balance {:?} of {wallet} differs from the answers' {}",
                log.balances().get(&wallet),
                race.charged - race.paid
            ));
        }
    }
    let entered = log
        .of_type("QueueEntered")
        .filter(|(_, body)| body["user_id"] == eager.to_string())
        .count();
    if entered != 1 {
        violations.push(format!("{entered} QueueEntered for one user"));
    }
    violations.extend(api.stats.oddities());
    assert!(violations.is_empty(), "{violations:#?}");
    println!("{}", api.stats.summary());
    harness::report_figures(
        "scale",
        json!({
            "users_admitted": CROWD,
            "setup_seconds": setup.as_secs_f64(),
            "holds_on_one_seat": hold_statuses,
            "holds_seconds": hold_time.as_secs_f64(),
            "payments_on_a_wallet_for_two": lean.payments,
            "charges_on_one_wallet": CROWD,
            "payments_on_that_wallet": busy.payments,
            "charges_and_payments_seconds": busy.seconds,
            "queue_entries_of_one_user": entry_statuses.iter().map(|(k, v)| (k.to_string(), *v)).collect::<HashMap<_, _>>(),
            "http": api.stats.to_json(),
            "violations": 0,
            "seconds": started.elapsed().as_secs_f64(),
        }),
    );
}

/// What a race of payments (and charges) on one wallet gave.
struct WalletRace {
    user: Uuid,
    charged: i64,
    paid: i64,
    balance: i64,
    charge_statuses: HashMap<u16, usize>,
    payments: HashMap<String, usize>,
    seconds: f64,
}

/// The user holds a seat of each of `PAYMENTS` concerts (a token pays for
/// one seat, so each payment spends a token of its own), gets two seats'
/// worth, then pays for every hold at once while `charges` small charges hit
/// the same wallet.
async fn wallet_race(api: &Api, payer: Uuid, charges: usize) -> WalletRace {
    let holds: Vec<(String, Uuid)> = join_all((0..PAYMENTS).map(|_| async move {
        let (concert_id, date_id) = api.create_concert(1, PRICE).await;
        let entered = api
            .enter(payer, concert_id, Duration::from_secs(30))
            .await
            .expect("queue entry");
        let QueueToken { token, .. } = entered.json("queue entry", &[200, 201]).unwrap();
        let admitted = api.wait_admitted(&token, Duration::from_secs(60)).await;
        assert_eq!(admitted.as_deref(), Some("active"));
        let seats: Vec<FreeSeat> = api
            .free_seats(&token, concert_id, date_id, 1)
            .await
            .unwrap();
        let held = api.client.hold(&token, seats[0].seat_id).await.unwrap();
        let reservation: Reservation = held.json("hold", &[201]).unwrap();
        (token, reservation.reservation_id)
    }))
    .await;
    // The payer signed in to enter the queue: the race sends that token and mints none.
    api.user_token(payer).await;
    let opening = api.client.charge(payer, 2 * PRICE, None).await.unwrap();
    assert_eq!(opening.status, 200, "{}", opening.text());
    let amounts: Vec<i64> = (0..charges as i64).map(|n| n % 7 + 1).collect();
    let started = Instant::now();
    let charging = join_all(
        amounts
            .iter()
            .map(|amount| async move { api.client.charge(payer, *amount, None).await }),
    );
    let paying = join_all(holds.iter().map(|(token, reservation)| async move {
        api.client.pay(token, *reservation, None).await
    }));
    let (charged_answers, paid_answers) = tokio::join!(charging, paying);
    let seconds = started.elapsed().as_secs_f64();
    let mut charge_statuses: HashMap<u16, usize> = HashMap::new();
    let mut charged = 2 * PRICE;
    for (answer, amount) in charged_answers.iter().zip(&amounts) {
        let status = answer.as_ref().map(|a| a.status).unwrap_or(0);
        *charge_statuses.entry(status).or_default() += 1;
        if status == 200 {
            charged += amount;
        }
    }
    let mut payments: HashMap<String, usize> = HashMap::new();
    let mut paid = 0;
    for answer in &paid_answers {
        let answer = answer.as_ref().expect("a payment answer");
        *payments
            .entry(
                format!("{} {}", answer.status, answer.code().unwrap_or_default())
                    .trim()
                    .to_string(),
            )
            .or_default() += 1;
        match answer.status {
            201 => paid += answer.json::<Payment>("pay", &[201]).unwrap().amount,
            // Too little money.
            402 => {}
            _ => panic!("payment answered {}", answer.text()),
        }
    }
    let balance = api
        .client
        .balance(payer)
        .await
        .unwrap()
        .json::<Balance>("balance", &[200])
        .unwrap()
        .balance;
    WalletRace {
        user: payer,
        charged,
        paid,
        balance,
        charge_statuses,
        payments,
        seconds,
    }
}
