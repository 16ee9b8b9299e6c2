//! Instances whose clocks disagree. One instance's clock runs 3 s ahead
//! (libfaketime) and it alone runs the scheduler, so it expires every hold:
//! a hold made on the other still lasts its full time, and a hold made on it
//! ends when the others think it does, because every instance keeps time by
//! the database's clock.

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use concert_client::{QueueToken, Reservation};
use uuid::Uuid;

use crate::harness::{self, Api, Server, Workdir};

const HOLD_TTL_SECS: i64 = 4;
const AHEAD: &str = "+3s";

/// The preload library of Debian's `libfaketime` package.
fn libfaketime() -> PathBuf {
    let found = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("faketime/libfaketime.so.1"))
        .find(|library| library.exists());
    found.expect("libfaketime is needed for this test: apt-get install faketime")
}

/// Settings of the instance on the real clock. It never looks for due work:
/// the one whose clock is faked does it all.
fn exact_clock() -> [(&'static str, String); 2] {
    [
        ("CONCERT_HOLD_TTL_SECS", HOLD_TTL_SECS.to_string()),
        ("CONCERT_SCHEDULER_INTERVAL_MS", "3600000".to_string()),
    ]
}

/// Settings of an instance on `work`'s database whose clock libfaketime
/// fakes as `faking` says; tokio's timers keep the real pace.
fn faked_clock(work: &Workdir, faking: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut settings = vec![
        ("CONCERT_HOLD_TTL_SECS", HOLD_TTL_SECS.to_string()),
        ("DATABASE_URL", work.database_url()),
        ("LD_PRELOAD", libfaketime().display().to_string()),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_string()),
    ];
    settings.extend_from_slice(faking);
    settings
}

/// Sleeps until a second before `held`'s deadline; it must still be held.
async fn assert_held_a_second_before_its_deadline(api: &Api, token: &str, held: &Reservation) {
    let before = held.expires_at - chrono::TimeDelta::seconds(1);
    tokio::time::sleep((before - Utc::now()).to_std().unwrap_or_default()).await;
    let read: Reservation = api
        .client
        .reservation(token, held.reservation_id)
        .await
        .unwrap()
        .json("reservation", &[200])
        .unwrap();
    assert_eq!(read.status, "held", "a second before its deadline");
}

/// Stops both instances (each must stop cleanly); the audit must pass.
async fn stop_and_audit(work: &Workdir, servers: [&mut Server; 2]) {
    for server in servers {
        let status = server.terminate().await;
        assert!(status.success(), "{} stopped with {status}", server.name);
    }
    let (code, audit) = harness::audit(&work.data(), 100).await;
    assert_eq!(code, 0, "{audit}");
}

/// An admitted user of `api` for `concert`, with `balance` in their wallet.
async fn admitted_user(api: &Api, concert: Uuid, balance: i64) -> (Uuid, String) {
    let user = Uuid::new_v4();
    let entered: QueueToken = api
        .enter(user, concert, Duration::from_secs(10))
        .await
        .expect("an answer to the entry")
        .json("enter", &[200, 201])
        .unwrap();
    let status = api
        .wait_admitted(&entered.token, Duration::from_secs(10))
        .await;
    assert_eq!(status.as_deref(), Some("active"));
    let charged = api.client.charge(user, balance, None).await.unwrap();
    assert_eq!(charged.status, 200, "{}", charged.text());
    (user, entered.token)
}

async fn hold(api: &Api, token: &str, seat: Uuid) -> Reservation {
    api.client
        .hold(token, seat)
        .await
        .unwrap()
        .json("hold", &[201])
        .unwrap()
}

/// `server`'s answers are dated by the real clock (the pages count down by it).
async fn assert_dates_answers_on_time(server: &Server, which: &str) {
    let answer = reqwest::get(format!("{}/healthz", server.base()))
        .await
        .unwrap();
    let dated = httpdate::parse_http_date(answer.headers()["date"].to_str().unwrap()).unwrap();
    let apart = chrono::DateTime::<Utc>::from(dated) - Utc::now();
    assert!(
        apart.num_milliseconds().abs() < 1_500,
        "{which} dates its answers {apart} off"
    );
}

/// `held` was answered with its full time left, by the real clock.
fn assert_lasts_its_time(held: &Reservation, which: &str) {
    let left = held.expires_at - Utc::now();
    assert!(
        (left.num_milliseconds() - HOLD_TTL_SECS * 1000).abs() < 1_000,
        "a hold of {HOLD_TTL_SECS} s {which} answered with {left} left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_whose_clock_runs_ahead_cuts_no_hold_short() {
    let _turn = harness::serial().await;
    let work = Workdir::new("clocks");
    let mut exact = Server::start(&work, "exact-clock", &exact_clock()).await;
    let ahead_settings = faked_clock(&work, &[("FAKETIME", AHEAD.to_string())]);
    let mut ahead = Server::start(&work, "clock-ahead", &ahead_settings).await;
    let on_exact = Api::new(vec![exact.base()], Duration::from_secs(10));
    let on_ahead = Api::new(vec![ahead.base()], Duration::from_secs(10));
    let (concert, date) = on_exact.create_concert(4, 1_000).await;

    // Held on the exact instance, expired by the one ahead.
    let (_, token) = admitted_user(&on_exact, concert, 1_000).await;
    let seats = on_exact.free_seats(&token, concert, date, 4).await.unwrap();
    let held = hold(&on_exact, &token, seats[0].seat_id).await;
    assert_lasts_its_time(&held, "made on the exact instance");
    // Two seconds before its deadline (2 s after the hold on this clock, when
    // the clock ahead reads its deadline already passed a second ago).
    let pay_at = held.expires_at - chrono::TimeDelta::seconds(2);
    tokio::time::sleep((pay_at - Utc::now()).to_std().unwrap_or_default()).await;
    let paid = on_exact
        .client
        .pay(&token, held.reservation_id, None)
        .await
        .unwrap();
    assert_eq!(
        paid.status,
        201,
        "paying 2 s before the deadline: {}",
        paid.text()
    );

    // Its answers' Date is on the same clock (the pages count down by it).
    assert_dates_answers_on_time(&ahead, "the instance ahead").await;

    // Held on the instance ahead: its deadline is the hold's time from now.
    let (_, token) = admitted_user(&on_ahead, concert, 1_000).await;
    let held = hold(&on_ahead, &token, seats[1].seat_id).await;
    assert_lasts_its_time(&held, "made on the instance ahead");
    // And it lapses then, not earlier and not 3 s later.
    assert_held_a_second_before_its_deadline(&on_ahead, &token, &held).await;
    tokio::time::sleep((held.expires_at - Utc::now()).to_std().unwrap_or_default()).await;
    let lapsed_within = Duration::from_secs(2);
    let started = std::time::Instant::now();
    loop {
        let free = on_ahead
            .free_seats(&token, concert, date, 4)
            .await
            .unwrap_or_default();
        if free.iter().any(|seat| seat.seat_id == seats[1].seat_id) {
            break;
        }
        assert!(
            started.elapsed() < lapsed_within,
            "the seat is not free {lapsed_within:?} after its hold's deadline"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    stop_and_audit(&work, [&mut ahead, &mut exact]).await;
}

/// The sole scheduler's clock is stepped 4 s ahead while holds run (an
/// operator's `date -s`, a bad NTP step): the instance keeps time by the
/// database's clock running on by its monotonic one, so neither the holds it
/// expires nor the deadlines it answers move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_of_the_schedulers_clock_moves_no_deadline() {
    let _turn = harness::serial().await;
    let work = Workdir::new("clock-step");
    let mut exact = Server::start(&work, "steady-clock", &exact_clock()).await;
    let offset = work.root.join("faketime.rc");
    std::fs::write(&offset, "+0\n").unwrap();
    let stepped_settings = faked_clock(
        &work,
        &[
            ("FAKETIME_TIMESTAMP_FILE", offset.display().to_string()),
            ("FAKETIME_NO_CACHE", "1".to_string()),
        ],
    );
    let mut stepped = Server::start(&work, "stepped-clock", &stepped_settings).await;
    let on_exact = Api::new(vec![exact.base()], Duration::from_secs(10));
    let on_stepped = Api::new(vec![stepped.base()], Duration::from_secs(10));
    let (concert, date) = on_exact.create_concert(4, 1_000).await;
    let (_, token) = admitted_user(&on_exact, concert, 1_000).await;
    let seats = on_exact.free_seats(&token, concert, date, 4).await.unwrap();
    let held = hold(&on_exact, &token, seats[0].seat_id).await;

    std::fs::write(&offset, "+4s\n").unwrap();
    assert_dates_answers_on_time(&stepped, "the stepped instance").await;
    let (_, other) = admitted_user(&on_stepped, concert, 1_000).await;
    let answered = hold(&on_stepped, &other, seats[1].seat_id).await;
    assert_lasts_its_time(&answered, "made on the stepped instance");

    // The hold made before the step lasts until its deadline.
    assert_held_a_second_before_its_deadline(&on_exact, &token, &held).await;

    stop_and_audit(&work, [&mut stepped, &mut exact]).await;
}
