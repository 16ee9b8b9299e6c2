//! The private PostgreSQL under supervision: its postmaster SIGKILLed three
//! times during a booking workload (as an out-of-memory kill would), a
//! server left running by a SIGKILLed `concert`, and a server that cannot be
//! brought back. The service heals by itself, loses no answered command and
//! leaves no payment half-done; or, when it cannot heal, exits non-zero.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;

use crate::harness::{self, Api, Server, Workdir};
use crate::workload::{check_answered_commands, start_workers, unended_holds, Shared};

const WORKERS: usize = 6;
const KILLS: usize = 3;
const HOLD_TTL_SECS: u64 = 3;
const ACTIVE_MAX: u32 = 1000;
const PRICE: i64 = 1000;
/// The promise: back without any action within this.
const HEAL_LIMIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_the_private_postmaster_heals_without_help_three_times() {
    let _turn = harness::serial().await;
    let started = Instant::now();
    let work = Workdir::new("pgkill");
    let settings = [
        ("CONCERT_HOLD_TTL_SECS", HOLD_TTL_SECS.to_string()),
        ("CONCERT_QUEUE_ACTIVE_MAX", ACTIVE_MAX.to_string()),
    ];
    let mut server = Server::start(&work, "pgkill", &settings).await;
    let api = Api::new(vec![server.base()], Duration::from_secs(20));
    let shared = Shared::on_new_concert(api, 3000, PRICE, false).await;
    let workers = start_workers(&shared, WORKERS);

    let mut heals = Vec::new();
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let postmaster = harness::postmaster_pid(&work.data()).expect("a running postmaster");
        kill(Pid::from_raw(postmaster), Signal::SIGKILL).expect("SIGKILL the postmaster");
        let killed = Instant::now();
        let mut saw_restarting = false;
        loop {
            assert!(server.running(), "concert serve exited after the kill");
            if let Ok(ready) = shared.api.client.readiness().await {
                if ready.status == 200 && harness::postmaster_pid(&work.data()) != Some(postmaster)
                {
                    break;
                }
                if ready.status == 503 {
                    assert!(ready.is_problem(), "{}", ready.text());
                    saw_restarting |=
                        harness::body(&ready)["private_server"]["state"] == "restarting";
                }
            }
            assert!(
                killed.elapsed() < HEAL_LIMIT,
                "not healed within {HEAL_LIMIT:?}; log:\n{}",
                harness::tail(&server.log, 30)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let healed = killed.elapsed();
        println!("postmaster {postmaster} SIGKILLed; healed in {healed:?} (saw restarting: {saw_restarting})");
        heals.push(healed.as_secs_f64());
    }
    tokio::time::sleep(Duration::from_millis(2000)).await;
    shared.stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.await.expect("a worker panicked");
    }
    // Holds lapse and payments cut by a kill are finished or refunded by the scheduler.
    tokio::time::sleep(Duration::from_secs(HOLD_TTL_SECS + 2)).await;
    shared.api.wait_caught_up(Duration::from_secs(30)).await;
    let metrics = shared.api.client.metrics().await.expect("metrics");
    let metrics = metrics.text();
    assert!(
        metrics.contains(&format!("concert_private_postgres_restarts_total {KILLS}")),
        "restarts not counted: {}",
        metrics
            .lines()
            .filter(|l| l.contains("private_postgres"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let ready = shared.api.client.readiness().await.expect("readyz");
    assert_eq!(
        harness::body(&ready)["private_server"]["restarts"],
        KILLS as u64,
        "{}",
        ready.text()
    );
    let log_text = std::fs::read_to_string(&server.log).unwrap_or_default();
    assert_eq!(
        log_text
            .matches("the private PostgreSQL server died; restarting it")
            .count(),
        KILLS,
        "each restart is logged with its cause"
    );
    assert!(log_text.contains("SIGKILL"), "the cause is logged");
    let status = server.terminate().await;
    assert!(status.success(), "the server stopped with {status}");

    let (code, audit) = harness::audit(&work.data(), ACTIVE_MAX).await;
    assert_eq!(code, 0, "concert audit failed:\n{audit}");
    let log = harness::events(&work.data()).await;
    let journal = std::mem::take(&mut *shared.journal.lock().unwrap());
    let mut violations = check_answered_commands(&journal, &log);
    violations.extend(unended_holds(&log));
    violations.extend(log.invariant_violations());
    assert!(
        violations.is_empty(),
        "{} violations: {violations:#?}",
        violations.len()
    );
    let stats = &shared.api.stats;
    assert!(
        stats.oddities().is_empty(),
        "answers breaking the contract: {:#?}",
        stats.oddities()
    );
    assert!(
        journal.holds.len() > 10 && journal.payments.len() > 5,
        "the workload did too little to prove anything: {} holds, {} payments",
        journal.holds.len(),
        journal.payments.len()
    );
    println!("{}", stats.summary());
    harness::report_figures(
        "postmaster_sigkill",
        json!({
            "postmaster_kills": KILLS,
            "heal_seconds": heals,
            "heal_limit_seconds": HEAL_LIMIT.as_secs(),
            "workers": WORKERS,
            "http": stats.to_json(),
            "holds": journal.holds.len(),
            "payments": journal.payments.len(),
            "refunds": log.count("Refunded"),
            "events": log.events.len(),
            "violations": 0,
            "seconds": started.elapsed().as_secs_f64(),
        }),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_left_running_by_a_killed_concert_is_stopped_at_the_next_start() {
    let _turn = harness::serial().await;
    let work = Workdir::new("orphan");
    let mut server = Server::start(&work, "orphan", &[]).await;
    let api = Api::new(vec![server.base()], Duration::from_secs(20));
    let (concert_id, _) = api.create_concert(10, PRICE).await;
    // SIGKILL: the owner file still names the dead concert.
    server.kill9().await;

    // A postmaster its parent-death signal did not stop (one started by an
    // older concert, or a signal lost) runs on the folder: here, detached by pg_ctl.
    let orphan = start_detached_postmaster(&work.data());
    assert!(harness::alive(orphan), "the orphan runs");

    let restart = server.restart(&[]).await;
    assert!(!harness::alive(orphan), "the orphan postmaster was stopped");
    assert_ne!(harness::postmaster_pid(&work.data()), Some(orphan));
    let concerts = api.client.concerts().await.expect("concerts");
    assert!(
        concerts.text().contains(&concert_id.to_string()),
        "the data survived: {}",
        concerts.text()
    );
    let log_text = std::fs::read_to_string(&server.log).unwrap_or_default();
    assert!(
        log_text.contains("left running by a concert that died"),
        "{log_text}"
    );
    println!("started again in {restart:?}, after stopping the orphan postmaster {orphan}");
    let status = server.terminate().await;
    assert!(status.success());
}

/// Starts the folder's cluster with `pg_ctl` as the `postgres` user, so the
/// postmaster's parent is not us; returns its pid.
fn start_detached_postmaster(data_dir: &std::path::Path) -> i32 {
    let pg_ctl = concert::private_postgres::server_tool("pg_ctl").expect("pg_ctl");
    let pgdata = data_dir.join("pgdata");
    let options = format!("-k {} -p 5432 -c listen_addresses=", data_dir.display());
    let mut command = std::process::Command::new(if nix::unistd::geteuid().is_root() {
        "runuser"
    } else {
        "env"
    });
    if nix::unistd::geteuid().is_root() {
        command.args(["-u", "postgres", "--"]);
    }
    let status = command
        .arg(&pg_ctl)
        .arg("-D")
        .arg(&pgdata)
        .arg("-l")
        .arg(data_dir.join("orphan.log"))
        .args(["-o", &options, "-w", "start"])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run pg_ctl");
    assert!(status.success(), "pg_ctl start failed");
    harness::postmaster_pid(data_dir).expect("the detached postmaster")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_exits_non_zero_when_its_database_cannot_come_back() {
    let _turn = harness::serial().await;
    let work = Workdir::new("giveup");
    let mut server = Server::start(&work, "giveup", &[]).await;
    let pgdata = work.data().join("pgdata");
    // PostgreSQL refuses a data folder with the wrong permissions: every restart fails.
    set_mode(&pgdata, 0o000);
    let postmaster = harness::postmaster_pid(&work.data()).expect("a running postmaster");
    kill(Pid::from_raw(postmaster), Signal::SIGKILL).expect("SIGKILL the postmaster");
    let killed = Instant::now();
    let status = loop {
        if let Some(status) = server.try_exit() {
            break status;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "concert still loops after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The same folder at the next start: a clear error at once, not a hang.
    let (code, _, err) = harness::cli(
        &[("CONCERT_DATA_DIR", work.data().display().to_string())],
        &["audit"],
    )
    .await;
    assert_ne!(code, 0);
    assert!(
        err.contains("cannot use") && err.contains("chmod 700"),
        "{err}"
    );
    set_mode(&pgdata, 0o700);
    let log_text = std::fs::read_to_string(&server.log).unwrap_or_default();
    println!("gave up after {:?} with {status}", killed.elapsed());
    assert!(!status.success(), "exits non-zero");
    assert!(
        log_text.contains("giving up"),
        "a clear message: {log_text}"
    );
    assert!(
        log_text.contains("permissions"),
        "the cause is named: {log_text}"
    );
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The private server's socket removed while it runs (a cleaner of the
/// temporary folder, a hand): no new connection reached it, and once the
/// pooled ones went the service answered `503` for ever while `/readyz`
/// called the server fine. The supervisor restarts it, which makes the
/// socket again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_socket_is_made_again_by_a_restart() {
    let _turn = harness::serial().await;
    let work = Workdir::new("socket");
    let mut server = Server::start(&work, "socket", &[]).await;
    let api = Api::new(vec![server.base()], Duration::from_secs(20));
    let socket = work.data().join(".s.PGSQL.5432");
    assert!(
        socket.exists(),
        "the server listens on {}",
        socket.display()
    );
    let postmaster = harness::postmaster_pid(&work.data()).expect("a running postmaster");

    std::fs::remove_file(&socket).expect("remove the socket");
    let removed = Instant::now();
    loop {
        assert!(server.running(), "concert serve exited");
        let restarted = harness::postmaster_pid(&work.data()).is_some_and(|pid| pid != postmaster);
        if restarted && socket.exists() {
            break;
        }
        assert!(
            removed.elapsed() < HEAL_LIMIT,
            "not restarted within {HEAL_LIMIT:?}; log:\n{}",
            harness::tail(&server.log, 30)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // New connections reach it again.
    let (concert, _) = api.create_concert(5, PRICE).await;
    assert!(!concert.is_nil());
    let log_text = std::fs::read_to_string(&server.log).unwrap_or_default();
    assert!(log_text.contains("was removed while it ran"), "{log_text}");
    assert!(server.terminate().await.success());
}
