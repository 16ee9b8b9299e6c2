//! A database fault: PostgreSQL frozen (SIGSTOP) for several seconds under
//! load. The service answers `503 unavailable` meanwhile, never hangs past its
//! request timeout, recovers by itself, and the audit passes afterwards.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use concert::ids::{idempotent_id, UserId};
use concert_client::Balance;
use nix::sys::signal::Signal;
use rand::Rng;
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use tokio::io::{AsyncBufReadExt, BufReader};
use uuid::Uuid;

use crate::harness::{self, Api, Server, Workdir};
use crate::workload::RETRY;

/// `CONCERT_REQUEST_TIMEOUT_SECS` of these tests; the pool's acquire timeout is 5 s too.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Slack on top of the request timeout for an answer to arrive.
const SLACK: Duration = Duration::from_millis(1500);
/// How long PostgreSQL stays frozen.
const FROZEN: Duration = Duration::from_secs(12);

/// One request of the load and its outcome.
#[derive(Debug, Clone)]
struct Sample {
    #[allow(dead_code)] // shown in failure messages
    what: &'static str,
    sent: Instant,
    elapsed: Duration,
    /// None: no answer within the client's 20 s.
    status: Option<u16>,
    problem: bool,
    code: String,
    #[allow(dead_code)] // shown in failure messages
    raw: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_database_gives_503_problems_within_the_timeout_and_heals() {
    let _turn = harness::serial().await;
    let started = Instant::now();
    let work = Workdir::new("freeze");
    let settings = [(
        "CONCERT_REQUEST_TIMEOUT_SECS",
        REQUEST_TIMEOUT.as_secs().to_string(),
    )];
    let mut server = Server::start(&work, "freeze", &settings).await;
    let api = Arc::new(Api::new(vec![server.base()], Duration::from_secs(20)));
    let (concert_id, _) = api.create_concert(100, 1000).await;
    let users: Arc<Vec<Uuid>> = Arc::new((0..20).map(|_| Uuid::new_v4()).collect());
    // The wallets' owners sign in before the load (minting needs no database).
    for user in users.iter() {
        api.user_token(*user).await;
    }
    let samples = Arc::new(Mutex::new(Vec::<Sample>::new()));
    // Keyed charges and their answers: (user, key, amount, status).
    let charges = Arc::new(Mutex::new(Vec::<(Uuid, String, i64, Option<u16>)>::new()));
    let stop = Arc::new(AtomicBool::new(false));

    let load: Vec<_> = (0..6)
        .map(|_| {
            let (api, users, samples, charges, stop, concert_id) = (
                api.clone(),
                users.clone(),
                samples.clone(),
                charges.clone(),
                stop.clone(),
                concert_id,
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let (pick, user, amount) = {
                        let mut rng = rand::thread_rng();
                        (
                            rng.gen_range(0..4),
                            users[rng.gen_range(0..users.len())],
                            rng.gen_range(1..1000),
                        )
                    };
                    // A queue entry is by a new user, who signs in first: minting
                    // (no database) is not part of the sample.
                    let newcomer = Uuid::new_v4();
                    api.user_token(if pick == 3 { newcomer } else { user })
                        .await;
                    let sent = Instant::now();
                    let (what, outcome) = match pick {
                        0 | 1 => {
                            let key = Uuid::new_v4().to_string();
                            let outcome = api.client.charge(user, amount, Some(&key)).await;
                            let status = outcome.as_ref().ok().map(|a| a.status);
                            charges.lock().unwrap().push((user, key, amount, status));
                            ("charge", outcome)
                        }
                        2 => ("balance", api.client.balance(user).await),
                        _ => ("queue", api.client.enter_queue(newcomer, concert_id).await),
                    };
                    let sample = match outcome {
                        Ok(answer) => Sample {
                            what,
                            sent,
                            elapsed: sent.elapsed(),
                            status: Some(answer.status),
                            problem: answer.is_problem(),
                            code: answer.code().unwrap_or_default(),
                            raw: answer.text().chars().take(200).collect(),
                        },
                        Err(error) => Sample {
                            what,
                            sent,
                            elapsed: sent.elapsed(),
                            status: None,
                            problem: false,
                            code: String::new(),
                            raw: error.to_string(),
                        },
                    };
                    samples.lock().unwrap().push(sample);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let frozen_processes = harness::signal_postgres(&work.data(), Signal::SIGSTOP);
    assert!(
        frozen_processes >= 2,
        "PostgreSQL processes found: {frozen_processes}"
    );
    let frozen_at = Instant::now();
    // The readiness probe says so too, within its own 3 s budget.
    let ready = api.client.readiness().await.expect("readyz answers");
    let ready_while_frozen = (ready.status, frozen_at.elapsed());
    tokio::time::sleep(FROZEN.saturating_sub(frozen_at.elapsed())).await;
    harness::signal_postgres(&work.data(), Signal::SIGCONT);
    let thawed_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::SeqCst);
    for task in load {
        task.await.unwrap();
    }
    assert!(
        server.running(),
        "the service died while the database was frozen"
    );

    let samples = samples.lock().unwrap().clone();
    let hung: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.status.is_none() || s.elapsed > REQUEST_TIMEOUT + SLACK)
        .collect();
    assert!(
        hung.is_empty(),
        "requests that hung past the timeout: {hung:#?}"
    );
    let server_errors: Vec<&Sample> = samples
        .iter()
        .filter(|s| {
            s.status
                .is_some_and(|status| status >= 500 && status != 503)
        })
        .collect();
    assert!(
        server_errors.is_empty(),
        "5xx other than 503: {server_errors:#?}"
    );
    // Sent after the freeze and answered before the thaw: refused, not served.
    // (A request sent just before may still finish on a loaded machine.)
    let during: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.sent >= frozen_at && s.sent + s.elapsed < thawed_at)
        .collect();
    assert!(
        during.len() >= 4,
        "too few requests while frozen: {during:#?}"
    );
    let served: Vec<&&Sample> = during.iter().filter(|s| s.status != Some(503)).collect();
    assert!(
        served.is_empty(),
        "answers other than 503 while frozen: {served:#?}"
    );
    assert_eq!(ready_while_frozen.0, 503, "readyz while frozen");
    assert!(
        ready_while_frozen.1 < Duration::from_secs(4),
        "readyz took {:?}",
        ready_while_frozen.1
    );
    // Healed by itself: everything sent 3 s after the thaw succeeds.
    let after: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.sent > thawed_at + Duration::from_secs(3))
        .collect();
    assert!(!after.is_empty(), "no load after the thaw");
    let failing: Vec<&&Sample> = after
        .iter()
        .filter(|s| !s.status.is_some_and(|status| (200..300).contains(&status)))
        .collect();
    assert!(
        failing.is_empty(),
        "still failing 3 s after the thaw: {failing:#?}"
    );
    let first_success = samples
        .iter()
        .filter(|s| s.sent >= thawed_at && s.status.is_some_and(|st| st < 300))
        .map(|s| s.sent + s.elapsed - thawed_at)
        .min()
        .expect("a success after the thaw");

    // A charge refused with 503 may still have been committed when the
    // request timeout cut its answer short (the commit was on its way):
    // counted here, and made harmless by the Idempotency-Key retry below.
    let charges = charges.lock().unwrap().clone();
    let db = PgPoolOptions::new()
        .max_connections(1)
        .connect(&work.database_url())
        .await
        .expect("connect to the private PostgreSQL");
    let committed: HashSet<String> = sqlx::query_scalar(
        "select payload->'Charged'->>'charge_id' from events where event_type = 'Charged'",
    )
    .fetch_all(&db)
    .await
    .unwrap()
    .into_iter()
    .collect();
    db.close().await;
    let refused_but_committed = charges
        .iter()
        .filter(|(user, key, _, status)| {
            *status != Some(200)
                && committed.contains(&idempotent_id(UserId(*user), "charge", key).to_string())
        })
        .count();
    // Nothing was half-done: retrying each refused keyed charge charges it
    // once, and every balance is the sum of its charges.
    let mut expected: HashMap<Uuid, i64> = HashMap::new();
    for (user, key, amount, status) in &charges {
        let settled = if *status == Some(200) {
            200
        } else {
            api.user_token(*user).await;
            api.retry(RETRY, || api.client.charge(*user, *amount, Some(key)))
                .await
                .expect("the retried charge is answered")
                .status
        };
        assert_eq!(settled, 200, "charge {key} of {user}");
        *expected.entry(*user).or_default() += amount;
    }
    // A commit that a timeout cut short left its read model behind until the
    // scheduler's catch-up.
    api.wait_caught_up(Duration::from_secs(12)).await;
    for (user, total) in &expected {
        api.user_token(*user).await;
        let answer = api.client.balance(*user).await.unwrap();
        let balance: Balance = answer.json("balance", &[200]).unwrap();
        assert_eq!(balance.balance, *total, "balance of {user}");
    }

    let status = server.terminate().await;
    assert!(status.success(), "stopped with {status}");
    let (code, audit) = harness::audit(&work.data(), 100).await;
    assert_eq!(code, 0, "concert audit failed:\n{audit}");
    let log = harness::events(&work.data()).await;
    let violations = log.invariant_violations();
    assert!(violations.is_empty(), "{violations:#?}");
    let refused = samples.iter().filter(|s| s.status == Some(503)).count();
    harness::report_figures(
        "db_frozen",
        json!({
            "frozen_seconds": FROZEN.as_secs_f64(),
            "requests_sent": samples.len(),
            "answered_503": refused,
            "slowest_answer_ms": samples.iter().map(|s| s.elapsed.as_millis()).max(),
            "first_success_after_thaw_ms": first_success.as_millis(),
            "refused_charges_retried_once": charges.iter().filter(|c| c.3 != Some(200)).count(),
            "refused_charges_committed_anyway": refused_but_committed,
            "http": api.stats.to_json(),
            "violations": 0,
            "seconds": started.elapsed().as_secs_f64(),
        }),
    );
    // Every error is a problem document with the `unavailable` code, the
    // request timeout's 503 included. Checked last, so that a failure here
    // means only this promise was broken.
    let bare: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.status == Some(503) && !(s.problem && s.code == "unavailable"))
        .collect();
    assert!(
        bare.is_empty(),
        "{} of {refused} 503 answers are not `unavailable` problem documents, e.g. {:#?}",
        bare.len(),
        &bare[..bare.len().min(3)]
    );
}

/// A tool run beside the service while the database is frozen says within
/// seconds that it waits, and for how long, then finishes once the database
/// thaws. It waited a minute in silence, which a backup run by cron would
/// leave nothing in its log to explain.
#[tokio::test]
async fn a_tool_says_it_waits_for_a_frozen_database_and_finishes_once_it_thaws() {
    let _turn = harness::serial().await;
    let work = Workdir::new("freeze-tool");
    let mut server = Server::start(&work, "freeze-tool", &[]).await;
    let api = Api::new(vec![server.base()], Duration::from_secs(20));
    let (concert_id, _) = api.create_concert(10, 1000).await;

    let frozen_processes = harness::signal_postgres(&work.data(), Signal::SIGSTOP);
    let store = [("CONCERT_DATA_DIR", work.data().display().to_string())];
    let mut tool = harness::spawn_cli(&store, &["events", "--json"]);
    let mut stderr = BufReader::new(tool.stderr.take().expect("piped stderr")).lines();
    let said = tokio::time::timeout(Duration::from_secs(15), async {
        while let Ok(Some(line)) = stderr.next_line().await {
            if line.contains("does not answer") {
                return Some(line);
            }
        }
        None
    })
    .await;
    harness::signal_postgres(&work.data(), Signal::SIGCONT);
    assert!(
        frozen_processes >= 2,
        "PostgreSQL processes found: {frozen_processes}"
    );
    let said = said
        .ok()
        .flatten()
        .expect("the tool said nothing of the frozen database within 15 s");
    assert!(said.contains("waiting up to 60 s"), "{said}");

    let output = tokio::time::timeout(Duration::from_secs(60), tool.wait_with_output())
        .await
        .expect("the tool finished within 60 s of the thaw")
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", output.status);
    assert!(out.contains(&concert_id.to_string()), "{out}");
    let status = server.terminate().await;
    assert!(status.success(), "stopped with {status}");
}

/// A stop while PostgreSQL is frozen: the private server ignores its fast
/// shutdown and SIGQUIT, and is killed with every process of its own. The
/// service says so with exit 1 (it exited 0, a clean stop to whatever
/// supervises it), no process of the server is left (its frozen backends
/// were, and kept the next start out), and the next start recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_that_must_kill_a_frozen_database_says_so_and_leaves_no_process() {
    let _turn = harness::serial().await;
    let work = Workdir::new("frozen-stop");
    let mut server = Server::start(&work, "frozen-stop", &[]).await;
    let api = Api::new(vec![server.base()], Duration::from_secs(20));
    api.create_concert(3, 1000).await;
    let processes = harness::postgres_pids(&work.data());
    assert!(
        processes.len() > 1,
        "a postmaster and its children: {processes:?}"
    );
    harness::signal_postgres(&work.data(), Signal::SIGSTOP);

    // A fast shutdown's 30 s, then SIGQUIT's 10 s, then SIGKILL.
    let status = server.terminate_within(Duration::from_secs(90)).await;
    assert_eq!(
        status.code(),
        Some(1),
        "log:\n{}",
        harness::tail(&work.log("frozen-stop"), 20)
    );
    let left: Vec<i32> = processes
        .into_iter()
        .filter(|pid| harness::alive(*pid))
        .collect();
    assert!(
        left.is_empty(),
        "PostgreSQL processes left behind: {left:?}"
    );

    server.restart(&[]).await;
    api.create_concert(3, 1000).await;
}

/// A backup stopped by SIGTERM while a frozen database keeps it waiting,
/// reaching the private server through its data folder (before anything
/// listened for the signal) or through `DATABASE_URL` (before pg_dump ran):
/// it says so and exits 1, as README promises, and leaves no file. It was
/// killed by the signal, wordless (exit 143), either way.
#[tokio::test]
async fn a_backup_stopped_while_the_database_is_frozen_says_so() {
    let _turn = harness::serial().await;
    let work = Workdir::new("freeze-backup");
    let mut server = Server::start(&work, "freeze-backup", &[]).await;
    let api = Api::new(vec![server.base()], Duration::from_secs(20));
    api.create_concert(3, 1000).await;
    harness::signal_postgres(&work.data(), Signal::SIGSTOP);
    let by_folder = [("CONCERT_DATA_DIR", work.data().display().to_string())];
    let by_url = [("DATABASE_URL", work.database_url())];
    for (how, store) in [("data folder", &by_folder), ("DATABASE_URL", &by_url)] {
        let file = work.root.join("frozen.dump");
        let run = harness::spawn_cli(store, &["backup", &file.display().to_string()]);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let pid = nix::unistd::Pid::from_raw(run.id().expect("running") as i32);
        nix::sys::signal::kill(pid, Signal::SIGTERM).expect("SIGTERM");
        let output = tokio::time::timeout(Duration::from_secs(10), run.wait_with_output())
            .await
            .expect("the backup ended within 10 s of SIGTERM")
            .unwrap();
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(1),
            "by {how}: {}, {err}",
            output.status
        );
        assert!(err.contains("stopped by SIGTERM"), "by {how}: {err}");
        assert!(!file.exists(), "by {how}");
    }
    harness::signal_postgres(&work.data(), Signal::SIGCONT);
    let status = server.terminate().await;
    assert!(status.success(), "stopped with {status}");
}
