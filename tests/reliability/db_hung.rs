//! A database connection that stops answering without closing (a proxy or a
//! network path that freezes): the commands waiting on it are given up at
//! their batch's deadline, the connection is closed rather than handed back
//! to the pool, and the service answers again on fresh connections (the
//! streams of the frozen transaction once PostgreSQL ends it), where before
//! every command on a stream of a stuck batch waited for it for good. Each
//! pipeline is frozen in turn: the commands' (a charge), the payments' and
//! the queue entries'.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use concert_client::QueueToken;
use futures::future::join_all;
use serde_json::json;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::harness::{self, Api, FreezingProxy, Server, Workdir};
use crate::workload::{check_answered_commands, start_workers, Journal, Shared, RETRY};

/// `CONCERT_REQUEST_TIMEOUT_SECS` of the instance behind the proxy: its
/// batches are given up after twice that (`batching::batch_deadline`, 10 s).
const REQUEST_TIMEOUT_SECS: u64 = 5;
/// How long every wallet has, from the freeze, to take charges again. The
/// wallets of the frozen transaction stay locked until PostgreSQL ends it
/// for idling 15 s (`idle_in_transaction_session_timeout`, src/db.rs): it
/// never hears that its client gave up. Their batches then fail on
/// `lock_timeout` (10 s) once more at most. The others take charges once
/// the batches waiting on frozen connections are given up (10 s). With a
/// minute's idling allowed, the last wallets took 55 s.
const RECOVERY_LIMIT: Duration = Duration::from_secs(40);
/// Short, so that the scheduler expires the seat of the frozen payment.
const HOLD_TTL_SECS: u64 = 3;
/// How long queue entries have to go on after their freeze: the workers
/// waiting to be admitted enter again only once the admissions go on, which
/// may need the concert's rows the frozen transaction locked (15–35 s seen).
const ENTRY_RECOVERY_LIMIT: Duration = Duration::from_secs(60);
/// Most connections of the pool (8 places) in use once the load stopped.
/// Without a freeze, 1 (the scheduler's rounds); after these two, 0 to 4
/// (sqlx's own check of a returned connection, which has no deadline, can
/// go out just as the path freezes). Before the pool gave up its checks of
/// returned connections, those given up on a frozen path held their places
/// for good: 6 seen here, and all 8 in the run where no queue entry was
/// answered within a minute.
const POOL_IN_USE_AT_REST: u64 = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_on_a_connection_that_stops_answering_are_given_up_and_the_service_recovers() {
    let _turn = harness::serial().await;
    let started = Instant::now();
    let mut hung = Hung::start("hung", &[], &[]).await;
    let api = Arc::new(Api::new(vec![hung.server.base()], Duration::from_secs(20)));
    let users: Vec<Uuid> = (0..8).map(|_| Uuid::new_v4()).collect();
    for user in &users {
        api.user_token(*user).await;
    }

    // Each user charges without pause; the freeze catches batches mid-query.
    let frozen_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let load: Vec<JoinHandle<Option<Duration>>> = users
        .iter()
        .map(|&user| {
            let (api, frozen_at) = (api.clone(), frozen_at.clone());
            tokio::spawn(async move {
                loop {
                    let sent = Instant::now();
                    let status = api.client.charge(user, 100, None).await.map(|a| a.status);
                    let freeze = *frozen_at.lock().unwrap();
                    match freeze {
                        // Sent after the freeze and charged: recovered.
                        Some(at) if sent > at && status.as_ref().is_ok_and(|s| *s == 200) => {
                            return Some(sent - at)
                        }
                        Some(at) if at.elapsed() > RECOVERY_LIMIT => return None,
                        _ => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Frozen as a wallet batch sends a statement, whose answer never comes.
    *frozen_at.lock().unwrap() = Some(hung.freeze_on(b"Wallet").await);
    let recovered: Vec<Option<Duration>> = join_all(load)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    hung.stop().await;

    let stuck = recovered.iter().filter(|wait| wait.is_none()).count();
    assert_eq!(
        stuck,
        0,
        "{stuck} of {} wallets took no charge within {RECOVERY_LIMIT:?} of the freeze; log:\n{}",
        users.len(),
        harness::tail(&hung.server.log, 30)
    );
    let slowest = recovered.iter().flatten().max().copied().unwrap();
    let fastest = recovered.iter().flatten().min().copied().unwrap();
    let (code, audit) = harness::audit(&hung.work.data(), 100).await;
    assert_eq!(code, 0, "concert audit failed:\n{audit}");
    harness::report_figures(
        "db_hung",
        json!({
            "wallets": users.len(),
            "fastest_recovery_ms": fastest.as_millis(),
            "slowest_recovery_ms": slowest.as_millis(),
            "seconds": started.elapsed().as_secs_f64(),
        }),
    );
}

/// Payments caught mid-commit, then queue entries: each freeze is ridden
/// out, nothing answered is lost and the money adds up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_and_queue_entries_on_a_connection_that_stops_answering_are_given_up_and_booking_recovers(
) {
    let _turn = harness::serial().await;
    let started = Instant::now();
    let mut hung = Hung::start(
        "hung-booking",
        &[("CONCERT_HOLD_TTL_SECS", HOLD_TTL_SECS.to_string())],
        &[("CONCERT_HOLD_TTL_SECS", HOLD_TTL_SECS.to_string())],
    )
    .await;
    let api = Api::new(vec![hung.server.base()], Duration::from_secs(20));
    let shared = Shared::on_new_concert(api, 2_000, 1_000, false).await;
    let workers = start_workers(&shared, 8);
    let paid = |journal: &Journal| journal.payments.len();
    let entered = |journal: &Journal| journal.entries.len();
    assert!(
        grows(&shared, paid, 4, RECOVERY_LIMIT).await.is_some(),
        "no payment before the freeze"
    );

    // Each freeze leaves the batch that sent the statement waiting for
    // good, with every connection open then; the answers that follow came
    // through fresh ones.
    let mut recoveries = Vec::new();
    for (trigger, progress, what, limit) in [
        (
            &b"SeatSold"[..],
            &paid as &dyn Fn(&Journal) -> usize,
            "payment",
            RECOVERY_LIMIT,
        ),
        (
            &b"QueueEntered"[..],
            &entered,
            "queue entry",
            ENTRY_RECOVERY_LIMIT,
        ),
    ] {
        let frozen_at = hung.freeze_on(trigger).await;
        let recovered = grows(&shared, progress, 8, limit).await;
        let Some(recovered) = recovered else {
            panic!(
                "no {what} answered within {limit:?} of the freeze; log:\n{}",
                harness::tail(&hung.server.log, 30)
            );
        };
        recoveries.push(recovered - frozen_at);
    }
    shared.stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.await.expect("a worker panicked");
    }
    let in_use = hung.pool_freed().await;
    hung.stop().await;
    assert!(
        in_use <= POOL_IN_USE_AT_REST,
        "{in_use} of the pool's connections still in use 20 s after the load stopped"
    );
    // The live feed's listener, frozen with the rest, heard nothing again
    // for good before; now its silence is noticed and it reconnects.
    let log = std::fs::read_to_string(&hung.server.log).unwrap_or_default();
    assert!(
        log.contains("listener connection stopped answering"),
        "the frozen listener was not replaced; log:\n{}",
        harness::tail(&hung.server.log, 30)
    );

    let (code, audit) = harness::audit(&hung.work.data(), 100).await;
    assert_eq!(code, 0, "concert audit failed:\n{audit}");
    let log = harness::events(&hung.work.data()).await;
    let journal = std::mem::take(&mut *shared.journal.lock().unwrap());
    let mut violations = check_answered_commands(&journal, &log);
    violations.extend(log.invariant_violations());
    assert!(violations.is_empty(), "{violations:#?}");
    let stats = &shared.api.stats;
    assert!(
        stats.oddities().is_empty(),
        "answers breaking the contract: {:#?}",
        stats.oddities()
    );
    harness::report_figures(
        "db_hung_booking",
        json!({
            "payment_recovery_ms": recoveries[0].as_millis(),
            "queue_entry_recovery_ms": recoveries[1].as_millis(),
            "pool_in_use_at_rest": in_use,
            "payments": journal.payments.len(),
            "queue_entries": journal.entries.len(),
            "http": stats.to_json(),
            "seconds": started.elapsed().as_secs_f64(),
        }),
    );
}

/// An admission round whose connection stops answering fails after 10 s
/// (its own statements' deadline) and the next round, on a fresh
/// connection, admits once PostgreSQL has ended the frozen session and its
/// leadership with it (15 s idle). Before, the instance waited for the
/// round's own deadline (90 s) and admitted no one meanwhile. The other
/// instance's scheduler sleeps for the day, so only this one admits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admission_round_on_a_connection_that_stops_answering_holds_admissions_back_seconds_not_minutes(
) {
    const ADMITTED_WITHIN: Duration = Duration::from_secs(45);
    let _turn = harness::serial().await;
    let limits = [
        ("CONCERT_QUEUE_ACTIVE_MAX", "1".to_string()),
        ("CONCERT_QUEUE_ACTIVE_TTL_SECS", "3".to_string()),
    ];
    let asleep: Vec<_> = limits
        .iter()
        .cloned()
        .chain([("CONCERT_SCHEDULER_INTERVAL_MS", "86400000".to_string())])
        .collect();
    let mut hung = Hung::start("hung-admission", &limits, &asleep).await;
    let api = Api::new(vec![hung.server.base()], Duration::from_secs(20));
    let (concert, _) = api.create_concert(10, 1_000).await;
    // The first takes the only active place.
    admitted(&api, concert).await;
    let entered = api.enter(Uuid::new_v4(), concert, RETRY).await.unwrap();
    let second: QueueToken = entered.json("queue entry", &[201]).unwrap();
    assert_eq!(second.status, "waiting");

    // Frozen as an admission round looks for concerts with tokens waiting;
    // the first token's place frees 3 s after its admission.
    let frozen_at = hung.freeze_on(b"with recursive waiting").await;
    let admitted = api.wait_admitted(&second.token, ADMITTED_WITHIN).await;
    let waited = frozen_at.elapsed();
    hung.stop().await;
    assert_eq!(
        admitted.as_deref(),
        Some("active"),
        "the waiting token was not admitted within {ADMITTED_WITHIN:?} of the freeze; log:\n{}",
        harness::tail(&hung.server.log, 30)
    );
    harness::report_figures(
        "db_hung_admission",
        json!({ "admitted_after_freeze_ms": waited.as_millis() }),
    );
}

/// A read that every look at a concert waits for (whether it sold out,
/// asked every 5 s by a standing stream, apart from any request) is given
/// up when its connection stops answering. Before, the stream held the
/// concert's lock for good: every queue answer of the concert waited behind
/// it and was `503` at its request timeout, and the stream sent nothing
/// more, not even its comments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streams_read_on_a_connection_that_stops_answering_holds_the_concerts_queue_answers_back_seconds_not_for_good(
) {
    const ANSWERED_WITHIN: Duration = Duration::from_secs(30);
    let _turn = harness::serial().await;
    let mut hung = Hung::start("hung-stream", &[], &[]).await;
    let api = Api::new(vec![hung.server.base()], Duration::from_secs(20));
    let (concert, _) = api.create_concert(10, 1_000).await;
    // Admitted first: an admission round names the concert too.
    let ticket = admitted(&api, concert).await;

    let streamed = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let stream = tokio::spawn(follow_standing(
        format!("{}/api/v1/queue/tokens/current/events", hung.server.base()),
        ticket.token.clone(),
        streamed.clone(),
    ));
    // Its first standing sent, the stream's next look whether the concert
    // sold out is the only statement naming the concert (in binary, among
    // the bound values) until the freeze.
    let opened = Instant::now();
    while streamed.lock().unwrap().is_empty() {
        assert!(
            opened.elapsed() < Duration::from_secs(10),
            "the stream sent nothing"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let concert_bytes: &'static [u8] = Box::leak(Box::new(*concert.as_bytes()));
    let frozen_at = hung.freeze_on(concert_bytes).await;

    let current = api
        .retry(ANSWERED_WITHIN, || api.client.current_token(&ticket.token))
        .await;
    let answered_after = frozen_at.elapsed();
    let streamed_after_freeze = || {
        (streamed.lock().unwrap().iter())
            .find(|at| **at > frozen_at)
            .map(|at| *at - frozen_at)
    };
    while streamed_after_freeze().is_none() && frozen_at.elapsed() < ANSWERED_WITHIN {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let streamed_after_freeze = streamed_after_freeze();
    stream.abort();
    hung.stop().await;
    assert_eq!(
        current.map(|answer| answer.status),
        Some(200),
        "the concert's queue answers still failed {ANSWERED_WITHIN:?} after the freeze; log:\n{}",
        harness::tail(&hung.server.log, 30)
    );
    // Its comment comes every 15 s; the frozen look is given up after 5.
    let streamed_after_freeze =
        streamed_after_freeze.expect("the stream sent nothing after the freeze");
    assert!(
        streamed_after_freeze < Duration::from_secs(25),
        "the stream sent nothing for {streamed_after_freeze:?} after the freeze"
    );
    harness::report_figures(
        "db_hung_stream",
        json!({
            "queue_answer_after_freeze_ms": answered_after.as_millis(),
            "stream_sent_after_freeze_ms": streamed_after_freeze.as_millis(),
        }),
    );
}

/// A new user's queue token for `concert`, once admitted.
async fn admitted(api: &Api, concert: Uuid) -> QueueToken {
    let entered = api.enter(Uuid::new_v4(), concert, RETRY).await.unwrap();
    let ticket: QueueToken = entered.json("queue entry", &[201]).unwrap();
    assert_eq!(
        api.wait_admitted(&ticket.token, RETRY).await.as_deref(),
        Some("active")
    );
    ticket
}

/// Follows a token's standing stream, noting when each piece of it came.
async fn follow_standing(url: String, token: String, streamed: Arc<Mutex<Vec<Instant>>>) {
    let client = reqwest::Client::new();
    let mut answer = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("the standing stream opens");
    assert_eq!(answer.status(), 200, "the standing stream was refused");
    while let Ok(Some(_)) = answer.chunk().await {
        streamed.lock().unwrap().push(Instant::now());
    }
}

/// One instance with the private server, and the instance under test,
/// which reaches that server through a proxy that freezes.
struct Hung {
    work: Workdir,
    owner: Server,
    proxy: FreezingProxy,
    server: Server,
}

impl Hung {
    /// `extra` settings for the instance under test, `owner_extra` for the other.
    async fn start(tag: &str, extra: &[(&str, String)], owner_extra: &[(&str, String)]) -> Hung {
        let work = Workdir::new(tag);
        let owner = Server::start(&work, &format!("{tag}-owner"), owner_extra).await;
        let proxy = FreezingProxy::start(work.data().join(".s.PGSQL.5432")).await;
        let behind_proxy = [
            (
                "DATABASE_URL",
                format!("postgres://postgres@127.0.0.1:{}/concert", proxy.port),
            ),
            (
                "CONCERT_REQUEST_TIMEOUT_SECS",
                REQUEST_TIMEOUT_SECS.to_string(),
            ),
        ];
        let settings: Vec<(&str, String)> = behind_proxy
            .into_iter()
            .chain(extra.iter().cloned())
            .collect();
        let server = Server::start(&work, &format!("{tag}-behind-proxy"), &settings).await;
        Hung {
            work,
            owner,
            proxy,
            server,
        }
    }

    /// Freezes every connection open once a statement holding `trigger`
    /// has gone through; returns when.
    async fn freeze_on(&self, trigger: &'static [u8]) -> Instant {
        let froze_before = self.proxy.freezes();
        self.proxy.freeze_after(trigger);
        let armed = Instant::now();
        while self.proxy.freezes() == froze_before {
            assert!(
                armed.elapsed() < Duration::from_secs(10),
                "no statement holding {:?} went through the proxy",
                String::from_utf8_lossy(trigger)
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Instant::now()
    }

    /// The fewest connections of the pool in use that `/metrics` shows
    /// within 20 s (it samples every 5 s), once one shows at most
    /// [`POOL_IN_USE_AT_REST`].
    async fn pool_freed(&self) -> u64 {
        let url = format!("{}/metrics", self.server.base());
        let since = Instant::now();
        let mut fewest = u64::MAX;
        while since.elapsed() < Duration::from_secs(20) && fewest > POOL_IN_USE_AT_REST {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let Ok(answer) = reqwest::get(&url).await else {
                continue;
            };
            let metrics = answer.text().await.unwrap_or_default();
            let in_use = metrics.lines().find_map(|line| {
                line.strip_prefix(r#"concert_db_pool_connections{state="in_use"} "#)
            });
            if let Some(in_use) = in_use.and_then(|value| value.parse::<f64>().ok()) {
                fewest = fewest.min(in_use as u64);
            }
        }
        fewest
    }

    /// Ends the frozen connections with the proxy, so that the instance
    /// stops, then stops both instances.
    async fn stop(&mut self) {
        self.proxy.stop();
        let status = self.server.terminate().await;
        assert!(status.success(), "stopped with {status}");
        let status = self.owner.terminate().await;
        assert!(status.success(), "stopped with {status}");
    }
}

/// When the count `progress` reads from the journal has grown by `by`
/// since the call, or None after `limit`.
async fn grows(
    shared: &Shared,
    progress: impl Fn(&Journal) -> usize,
    by: usize,
    limit: Duration,
) -> Option<Instant> {
    let count = || progress(&shared.journal.lock().unwrap());
    let (from, since) = (count(), Instant::now());
    while since.elapsed() < limit {
        if count() >= from + by {
            return Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}
