//! Graceful shutdown of the real binary: SIGTERM in the middle of a burst of
//! charges loses no charge that was answered, the process exits 0, and the
//! private PostgreSQL it started is gone. Its logs carry the request span and
//! never the admin token or a user token. It is started as `concert --demo`:
//! `serve` is the default command, and its flag may come without it.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use concert_client::{Client, Options};
use nix::sys::signal::{kill, Signal};
use serde_json::Value;
use uuid::Uuid;

pub(crate) const ADMIN_TOKEN: &str = "shutdown-test-admin-secret";
const USERS: usize = 8;
const WORKERS: usize = 16;
/// Charges answered before SIGTERM is sent, so that it lands mid-burst.
const ANSWERED_BEFORE_SIGTERM: usize = 60;

#[path = "shutdown/process.rs"]
mod process;

#[path = "shutdown/drain.rs"]
mod drain;

use process::{concert, free_address, postgres_processes, send_raw, Service};

/// What one worker saw: each answer's status and correlation id, and whether
/// it arrived after SIGTERM was sent (a request in flight at the signal).
#[derive(Debug)]
struct Answer {
    user: Uuid,
    status: u16,
    correlation_id: String,
    in_flight_at_sigterm: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_mid_burst_loses_no_answered_request_and_stops_postgres() {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = PathBuf::from(format!(
        "/tmp/concert-shutdown-{}-{nanos}",
        std::process::id()
    ));
    fs::create_dir_all(&dir).unwrap();
    let address = free_address();
    let base = format!("http://{address}");
    let mut service = Service::start(&dir, &address);
    let options = Options {
        connections: WORKERS,
        timeout: Duration::from_secs(60),
        user_token_ttl_secs: 3600,
        ..Options::default()
    };
    let client = Client::new(&[&base], ADMIN_TOKEN, options).unwrap();

    // given: a running service (the first start initialises the cluster)
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if client.healthy().await {
            break;
        }
        assert!(
            service.exited().is_none(),
            "serve exited early:\n{}",
            service.log()
        );
        assert!(
            Instant::now() < deadline,
            "serve never became healthy:\n{}",
            service.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let audit = client.audit_events(0, 100).await.unwrap();
    assert_eq!(audit.status, 200);
    let concerts: Value = reqwest::get(format!("{base}/api/v1/concerts"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        concerts["concerts"].as_array().map(Vec::len),
        Some(1),
        "`concert --demo` serves the sample concert: {concerts}"
    );

    // and: a request with a made-up method of 20,000 characters (answered
    // 405): HTTP sets no limit on a method's length but the head's
    let long_method = "X".repeat(20_000);
    assert_eq!(
        send_raw(&address, &format!("{long_method} /api/v1/concerts")),
        "HTTP/1.1 405 Method Not Allowed"
    );

    // and: users signed in (a user token each, minted with the admin token)
    let users: Vec<Uuid> = (0..USERS).map(|_| Uuid::new_v4()).collect();
    let mut user_tokens: HashMap<Uuid, String> = HashMap::new();
    for user in &users {
        let token = client
            .user_token(*user)
            .await
            .expect("the user token is minted");
        user_tokens.insert(*user, token);
    }

    // when: SIGTERM lands in the middle of a burst of charges
    let answered = Arc::new(AtomicUsize::new(0));
    let sigterm_sent = Arc::new(AtomicBool::new(false));
    let exited = Arc::new(AtomicBool::new(false));
    let answers = Arc::new(Mutex::new(Vec::<Answer>::new()));
    let mut workers = Vec::new();
    for worker in 0..WORKERS {
        let user = users[worker % USERS];
        let client = client.clone();
        let (answered, sigterm_sent, exited, answers) = (
            answered.clone(),
            sigterm_sent.clone(),
            exited.clone(),
            answers.clone(),
        );
        workers.push(tokio::spawn(async move {
            while !exited.load(Ordering::SeqCst) {
                // The user token was minted above: a charge sends it and mints none.
                match client.charge(user, 1, None).await {
                    // An answer: its body arrived in full (the client reads it all).
                    Ok(answer) => {
                        answered.fetch_add(1, Ordering::SeqCst);
                        answers.lock().unwrap().push(Answer {
                            user,
                            status: answer.status,
                            correlation_id: answer.correlation_id,
                            in_flight_at_sigterm: sigterm_sent.load(Ordering::SeqCst),
                        });
                    }
                    // Refused or cut: no answer, so nothing is owed.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while answered.load(Ordering::SeqCst) < ANSWERED_BEFORE_SIGTERM {
        assert!(
            Instant::now() < deadline,
            "the burst got no answers:\n{}",
            service.log()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    kill(service.pid(), Signal::SIGTERM).unwrap();
    sigterm_sent.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = service.exited() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not stop after SIGTERM:\n{}",
            service.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    exited.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.await.unwrap();
    }

    // then: a clean exit, PostgreSQL gone, and every answered charge stored
    let log = service.log();
    assert_eq!(status.code(), Some(0), "serve exit status {status}:\n{log}");
    assert_eq!(
        postgres_processes(&dir),
        Vec::<i32>::new(),
        "PostgreSQL outlived serve"
    );
    let answers = std::mem::take(&mut *answers.lock().unwrap());
    let statuses: BTreeSet<u16> = answers.iter().map(|answer| answer.status).collect();
    assert_eq!(statuses, BTreeSet::from([200]), "every answer is a success");
    let answered: BTreeSet<&str> = answers.iter().map(|a| a.correlation_id.as_str()).collect();
    assert_eq!(
        answered.len(),
        answers.len(),
        "one correlation id per request"
    );

    let events = concert(&dir).args(["events", "--json"]).output().unwrap();
    assert!(
        events.status.success(),
        "{}",
        String::from_utf8_lossy(&events.stderr)
    );
    // A reader that stops reading (`concert events | head`) ends it cleanly.
    let mut stopped_reading = concert(&dir)
        .arg("events")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(stopped_reading.stdout.take());
    let stopped_reading = stopped_reading.wait_with_output().unwrap();
    assert!(
        stopped_reading.status.success(),
        "{:?}: {}",
        stopped_reading.status,
        String::from_utf8_lossy(&stopped_reading.stderr)
    );
    let mut charged_per_user: HashMap<String, usize> = HashMap::new();
    let mut charged: BTreeSet<String> = BTreeSet::new();
    for line in String::from_utf8(events.stdout).unwrap().lines() {
        let event: Value = serde_json::from_str(line).unwrap();
        if event["aggregate_type"] == "Wallet" && event["event_type"] == "Charged" {
            *charged_per_user
                .entry(event["aggregate_id"].as_str().unwrap().to_string())
                .or_default() += 1;
            charged.insert(
                event["metadata"]["correlation_id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
    }
    let mut answered_per_user: HashMap<String, usize> = HashMap::new();
    for answer in &answers {
        *answered_per_user
            .entry(answer.user.to_string())
            .or_default() += 1;
    }
    let lost: Vec<&&str> = answered
        .iter()
        .filter(|id| !charged.contains(**id))
        .collect();
    assert!(
        lost.is_empty(),
        "answered charges missing from the log: {lost:?}"
    );
    assert_eq!(
        charged.len(),
        answers.len(),
        "charges stored without an answer"
    );
    assert_eq!(charged_per_user, answered_per_user);

    // One stream, named by its UUID in any spelling, as in the audit API;
    // a stream that is not in the log is an error, not an empty history.
    let (wallet, charges) = charged_per_user.iter().next().unwrap();
    let stream = concert(&dir)
        .args([
            "events",
            "--stream",
            &format!("Wallet/{}", wallet.to_uppercase()),
        ])
        .output()
        .unwrap();
    assert!(stream.status.success());
    let lines: Vec<String> = String::from_utf8(stream.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), *charges);
    assert!(
        lines
            .iter()
            .all(|line| line.contains(&format!("Wallet/{wallet} "))
                && line.split_whitespace().nth(1).unwrap().ends_with('Z')),
        "{lines:?}"
    );
    // Not in the log: the command fails (1); not a stream's name at all: a
    // usage error (2), as clap's own are.
    for (unknown, code) in [
        (format!("Wallet/{}", Uuid::new_v4()), 1),
        ("Wallet/42".to_string(), 2),
    ] {
        let refused = concert(&dir)
            .args(["events", "--stream", &unknown])
            .output()
            .unwrap();
        assert_eq!(
            refused.status.code(),
            Some(code),
            "events --stream {unknown}"
        );
    }
    assert_eq!(
        postgres_processes(&dir),
        Vec::<i32>::new(),
        "PostgreSQL outlived `concert events`"
    );

    // The request span made it into the JSON log, without any token.
    assert!(!log.contains(ADMIN_TOKEN), "the admin token was logged");
    assert!(
        !user_tokens
            .values()
            .any(|token| log.contains(token.as_str())),
        "a user token was logged"
    );
    let request_line = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| {
            line["span"]["route"] == "/api/v1/users/{user_id}/balance/charges"
                && line["message"] == "request finished"
        })
        .unwrap_or_else(|| panic!("no request line in\n{log}"));
    let span = &request_line["span"];
    assert_eq!(span["method"], "POST", "{request_line}");
    assert_eq!(request_line["status"], 200, "{request_line}");
    assert!(request_line["latency_ms"].is_number(), "{request_line}");
    assert!(
        answered.contains(request_line["correlation_id"].as_str().unwrap()),
        "{request_line}"
    );
    assert!(
        Uuid::parse_str(span["request_id"].as_str().unwrap()).is_ok(),
        "{request_line}"
    );
    // A made-up method is on its request's line cut to a few dozen characters.
    let long_method_line = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["message"] == "request finished" && line["status"] == 405)
        .unwrap_or_else(|| panic!("no line for the long method in\n{log}"));
    let logged = long_method_line["span"]["method"].as_str().unwrap();
    assert!(
        logged.starts_with("XXXX") && logged.ends_with("…(20000 bytes)") && logged.len() < 64,
        "{logged}"
    );
    assert!(
        !log.contains(&long_method[..100]),
        "the long method was logged whole"
    );
    // Requests in flight when the signal came were finished, not dropped.
    let finished = answers
        .iter()
        .filter(|answer| answer.in_flight_at_sigterm)
        .count();
    println!(
        "{} charges answered, {finished} of them after SIGTERM",
        answers.len()
    );
    assert!(finished > 0, "no request in flight at SIGTERM was answered");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn demo_goes_with_serve_alone() {
    let refused = Command::new(env!("CARGO_BIN_EXE_concert"))
        .args(["--demo", "migrate"])
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .unwrap();
    // A usage error, as clap's own are.
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--demo goes with serve"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
