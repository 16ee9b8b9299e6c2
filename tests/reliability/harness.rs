//! Runs the real `concert` binary: each test gets a fresh folder under /tmp
//! holding the private PostgreSQL (`CONCERT_DATA_DIR`) and the servers' logs,
//! removed at the end. Also the API's typed client (`concert-client`) with
//! every answer counted and checked, users signed in through restarts and
//! the retries the tests need; the command-line tools (`audit`,
//! `events --json`, `replay`), and signals for the server and its PostgreSQL.

use std::collections::HashMap;
use std::fs;
use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use concert::event_log::RawEvent;
use concert_client::{
    Answer, Call, Client, Concert, Error as ClientError, FreeSeat, NewConcert, NewDate, Options,
    QueueToken, SeatPage,
};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use uuid::Uuid;

/// The admin token every test server uses.
pub const ADMIN: &str = "reliability-admin-token";
/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_concert");

/// Tests of this binary run one at a time: they measure timeouts and each
/// starts PostgreSQL servers, which two cores cannot do in parallel reliably.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

/// A fresh folder under /tmp for one test, removed on drop.
pub struct Workdir {
    pub root: PathBuf,
}

impl Workdir {
    pub fn new(tag: &str) -> Self {
        // Short: the PostgreSQL socket path must stay under 100 bytes.
        let root = PathBuf::from(format!(
            "/tmp/crel-{}-{tag}-{}",
            std::process::id(),
            &Uuid::new_v4().simple().to_string()[..6]
        ));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("logs")).expect("create the test folder");
        Workdir { root }
    }

    /// The private PostgreSQL's data folder (`CONCERT_DATA_DIR`).
    pub fn data(&self) -> PathBuf {
        self.root.join("d")
    }

    pub fn log(&self, name: &str) -> PathBuf {
        self.root.join("logs").join(format!("{name}.log"))
    }

    /// The URL of the private server while one runs on this folder.
    pub fn database_url(&self) -> String {
        database_url(&self.data())
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        // A server still running on the folder was stopped by `Server::drop`;
        // give its PostgreSQL a moment to finish its fast shutdown.
        wait_postgres_gone(&self.data(), Duration::from_secs(15));
        // CONCERT_RELIABILITY_KEEP=1 keeps the folder (data and logs) to look into.
        if std::env::var_os("CONCERT_RELIABILITY_KEEP").is_some() {
            eprintln!("kept {}", self.root.display());
            return;
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// `postgres://...?host=<data dir>`: the private server's unix socket.
pub fn database_url(data_dir: &Path) -> String {
    format!(
        "postgres://postgres@localhost:5432/concert?host={}",
        data_dir.display()
    )
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Settings common to every test server.
fn base_env(data_dir: &Path, port: u16) -> Vec<(String, String)> {
    [
        ("CONCERT_DATA_DIR", data_dir.display().to_string()),
        ("CONCERT_BIND", format!("127.0.0.1:{port}")),
        ("CONCERT_ADMIN_TOKEN", ADMIN.to_string()),
        ("CONCERT_SCHEDULER_INTERVAL_MS", "50".to_string()),
        ("CONCERT_PAYMENT_RECOVERY_SECS", "1".to_string()),
        ("CONCERT_LOG_FORMAT", "json".to_string()),
        (
            "RUST_LOG",
            "warn,concert::private_postgres=info".to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// A command for the binary with no inherited `CONCERT_*` or `DATABASE_URL`.
fn concert_command(env: &[(String, String)]) -> Command {
    let mut command = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("CONCERT_") || key == "DATABASE_URL" || key == "RUST_LOG" {
            command.env_remove(&key);
        }
    }
    for (key, value) in env {
        command.env(key, value);
    }
    command.stdin(Stdio::null());
    command
}

/// A running `concert serve`.
pub struct Server {
    pub name: String,
    pub port: u16,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
    /// Starts of this server (1 + restarts).
    pub starts: u32,
}

impl Server {
    /// Starts `concert serve` on `work`'s data folder with `extra` settings
    /// (which override the common ones) and waits until `/readyz` answers 200.
    pub async fn start(work: &Workdir, name: &str, extra: &[(&str, String)]) -> Server {
        let port = free_port();
        let mut env = base_env(&work.data(), port);
        for (key, value) in extra {
            env.retain(|(k, _)| k != key);
            env.push((key.to_string(), value.clone()));
        }
        let mut server = Server {
            name: name.to_string(),
            port,
            data_dir: work.data(),
            log: work.log(name),
            env,
            child: None,
            starts: 0,
        };
        server.launch(&[]).await;
        server
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Whether this server runs its own private PostgreSQL.
    fn owns_database(&self) -> bool {
        !self.env.iter().any(|(k, _)| k == "DATABASE_URL")
    }

    /// Starts the process again on the same port and data (after a kill),
    /// with `extra` settings for this start only.
    pub async fn restart(&mut self, extra: &[(&str, String)]) -> Duration {
        assert!(self.child.is_none(), "restart of a running server");
        let started = Instant::now();
        self.launch(extra).await;
        started.elapsed()
    }

    async fn launch(&mut self, extra: &[(&str, String)]) {
        let mut env = self.env.clone();
        for (key, value) in extra {
            env.retain(|(k, _)| k != key);
            env.push((key.to_string(), value.clone()));
        }
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the server log");
        let child = concert_command(&env)
            .arg("serve")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start concert serve");
        self.child = Some(child);
        self.starts += 1;
        let options = Options {
            timeout: Duration::from_secs(2),
            ..Options::default()
        };
        let client = Client::new(&[self.base()], ADMIN, options).expect("a client");
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(ready) = client.readiness().await {
                if ready.status == 200 {
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                panic!(
                    "{} exited during start-up ({status}); log:\n{}",
                    self.name,
                    tail(&self.log, 40)
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready within 90 s; log:\n{}",
                self.name,
                tail(&self.log, 40)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The exit status once the process has ended by itself (it is then forgotten).
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| child.try_wait().ok().flatten().is_none())
    }

    /// SIGKILL, then waits until the process and (when it owns one) its
    /// private PostgreSQL are gone, so the next start finds the data free.
    pub async fn kill9(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let postmaster = self.owns_database().then(|| postmaster_pid(&self.data_dir));
        kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).expect("SIGKILL");
        child.wait().expect("reap the killed server");
        if let Some(Some(pid)) = postmaster {
            // The parent-death signal asks PostgreSQL for a fast shutdown.
            let deadline = Instant::now() + Duration::from_secs(30);
            while alive(pid) {
                assert!(
                    Instant::now() < deadline,
                    "PostgreSQL {pid} outlived its killed parent"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// SIGTERM (graceful stop), waiting up to 30 s for the exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("a running server");
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                if self.owns_database() {
                    wait_postgres_gone(&self.data_dir, Duration::from_secs(30));
                }
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} did not stop within 30 s of SIGTERM; log:\n{}",
                    self.name,
                    tail(&self.log, 40)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if self.owns_database() {
                // A test that failed while PostgreSQL was stopped must not leave it stopped.
                signal_postgres(&self.data_dir, Signal::SIGCONT);
            }
            let _ = child.kill();
            let _ = child.wait();
            if std::thread::panicking() {
                eprintln!("--- end of {} log ---\n{}", self.name, tail(&self.log, 30));
            }
        }
    }
}

/// The last `lines` lines of a file.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Whether a process is alive (a zombie counts as gone).
pub fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// The postmaster's pid, from the first line of `pgdata/postmaster.pid`.
pub fn postmaster_pid(data_dir: &Path) -> Option<i32> {
    fs::read_to_string(data_dir.join("pgdata/postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// The postmaster and every process it started (backends, checkpointer, ...).
pub fn postgres_pids(data_dir: &Path) -> Vec<i32> {
    let Some(postmaster) = postmaster_pid(data_dir) else {
        return Vec::new();
    };
    let mut pids = vec![postmaster];
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let parent = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|ppid| ppid.parse::<i32>().ok());
            if parent == Some(postmaster) {
                pids.push(pid);
            }
        }
    }
    pids
}

/// Sends `signal` to the whole PostgreSQL server of `data_dir`; returns how many processes.
pub fn signal_postgres(data_dir: &Path, signal: Signal) -> usize {
    let pids = postgres_pids(data_dir);
    if signal != Signal::SIGSTOP {
        // The postmaster first on SIGCONT.
        for pid in &pids {
            let _ = kill(Pid::from_raw(*pid), signal);
        }
        return pids.len();
    }
    // The postmaster first, so it forks no new backend; then every child,
    // listed again until no new one appears (a fork may have raced the list).
    if let Some(postmaster) = postmaster_pid(data_dir) {
        let _ = kill(Pid::from_raw(postmaster), signal);
    }
    let mut stopped = std::collections::HashSet::new();
    loop {
        let fresh: Vec<i32> = postgres_pids(data_dir)
            .into_iter()
            .filter(|pid| !stopped.contains(pid))
            .collect();
        if fresh.is_empty() {
            return stopped.len().max(pids.len());
        }
        for pid in fresh {
            let _ = kill(Pid::from_raw(pid), signal);
            stopped.insert(pid);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_postgres_gone(data_dir: &Path, limit: Duration) {
    let Some(pid) = postmaster_pid(data_dir) else {
        return;
    };
    let deadline = Instant::now() + limit;
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `concert <args>` with the given settings; returns (exit code, stdout, stderr).
pub async fn cli(env: &[(&str, String)], args: &[&str]) -> (i32, String, String) {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .chain([("RUST_LOG".to_string(), "warn".to_string())])
        .collect();
    let mut command: tokio::process::Command = concert_command(&env).into();
    command.args(args).kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .unwrap_or_else(|_| panic!("concert {args:?} took over 120 s"))
        .expect("run concert");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `concert audit` on a stopped data folder (it starts the private server itself).
pub async fn audit(data_dir: &Path, queue_active_max: u32) -> (i32, String) {
    let (code, out, err) = cli(
        &[("CONCERT_DATA_DIR", data_dir.display().to_string())],
        &["audit", "--queue-active-max", &queue_active_max.to_string()],
    )
    .await;
    (code, format!("{out}{err}"))
}

/// Every event, from `concert events --json` on a stopped data folder.
pub async fn events(data_dir: &Path) -> Log {
    let (code, out, err) = cli(
        &[("CONCERT_DATA_DIR", data_dir.display().to_string())],
        &["events", "--json"],
    )
    .await;
    assert_eq!(code, 0, "concert events failed: {err}");
    Log::parse(&out)
}

/// The event log, as `concert events --json` prints it.
pub struct Log {
    pub events: Vec<Value>,
}

impl Log {
    pub fn parse(text: &str) -> Log {
        let events = text
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| serde_json::from_str(line).expect("an event as JSON"))
            .collect();
        Log { events }
    }

    /// Events of one type, with their payload body (the value inside the variant).
    pub fn of_type<'a>(
        &'a self,
        event_type: &'a str,
    ) -> impl Iterator<Item = (&'a Value, &'a Value)> + 'a {
        self.events
            .iter()
            .filter(move |e| e["event_type"] == event_type)
            .map(move |e| (e, &e["payload"][event_type]))
    }

    pub fn count(&self, event_type: &str) -> usize {
        self.of_type(event_type).count()
    }

    /// The stream id of an event.
    pub fn id(event: &Value) -> &str {
        event["aggregate_id"].as_str().unwrap_or_default()
    }

    /// Sum of charges, minus payments, plus refunds, per wallet.
    pub fn balances(&self) -> HashMap<String, i64> {
        let mut balances = HashMap::new();
        for event in &self.events {
            let delta = match event["event_type"].as_str() {
                Some("Charged") => event["payload"]["Charged"]["amount"].as_i64().unwrap(),
                Some("Paid") => -event["payload"]["Paid"]["amount"].as_i64().unwrap(),
                Some("Refunded") => event["payload"]["Refunded"]["amount"].as_i64().unwrap(),
                _ => continue,
            };
            *balances.entry(Self::id(event).to_string()).or_insert(0) += delta;
        }
        balances
    }

    /// The audit's own rules over this history (`concert::audit::check_history`:
    /// a seat held by one at a time and sold once, payments debited once and
    /// ending sold or refunded, holds expired after their deadline, balances
    /// that add up and never go negative, tickets entered first). The log
    /// chain and the read models are checked by `concert audit` on the database.
    pub fn invariant_violations(&self) -> Vec<String> {
        let history = self.events.iter().map(|event| {
            RawEvent::from_logged(
                event["position"].as_i64().unwrap_or_default(),
                event["aggregate_type"].as_str().unwrap_or_default(),
                Self::id(event),
                event["sequence"].as_i64().unwrap_or_default(),
                event["event_type"].as_str().unwrap_or_default(),
                &event["payload"],
            )
        });
        // The active limit differs from test to test; `concert audit` checks it.
        concert::audit::check_history(history, u32::MAX)
            .into_iter()
            .map(|found| {
                format!(
                    "[{}] {} ({})",
                    found.rule,
                    found.detail,
                    found.events.join(", ")
                )
            })
            .collect()
    }
}

/// How the answers of one test went.
#[derive(Default)]
pub struct Stats {
    pub sent: AtomicU64,
    pub ok: AtomicU64,
    pub client_errors: AtomicU64,
    pub unavailable: AtomicU64,
    pub server_errors: AtomicU64,
    pub transport_errors: AtomicU64,
    /// Answers that break the contract: a 5xx other than 503, or an error without a problem document.
    pub oddities: Mutex<Vec<String>>,
}

impl Stats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Counts one call the client made and keeps it if it broke the contract.
    fn count(&self, call: &Call<'_>) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        let Ok(answer) = call.outcome else {
            self.transport_errors.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let status = answer.status;
        let counter = match status {
            200..=299 => &self.ok,
            503 => &self.unavailable,
            400..=499 => &self.client_errors,
            _ => &self.server_errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let odd = (status >= 500 && status != 503) || (status >= 400 && !answer.is_problem());
        if odd {
            self.oddities.lock().unwrap().push(format!(
                "{} -> {status} [{}] {}",
                call.endpoint,
                answer.content_type,
                answer.text().chars().take(300).collect::<String>()
            ));
        }
    }

    pub fn summary(&self) -> String {
        format!(
            "sent {}, 2xx {}, 4xx {}, 503 {}, other 5xx {}, no answer {}",
            Self::get(&self.sent),
            Self::get(&self.ok),
            Self::get(&self.client_errors),
            Self::get(&self.unavailable),
            Self::get(&self.server_errors),
            Self::get(&self.transport_errors)
        )
    }

    pub fn oddities(&self) -> Vec<String> {
        self.oddities.lock().unwrap().clone()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "requests_sent": Self::get(&self.sent),
            "answered_2xx": Self::get(&self.ok),
            "answered_4xx": Self::get(&self.client_errors),
            "answered_503": Self::get(&self.unavailable),
            "answered_other_5xx": Self::get(&self.server_errors),
            "not_answered": Self::get(&self.transport_errors),
            "contract_breaches": self.oddities.lock().unwrap().len(),
        })
    }
}

/// How long a minted user token lives: longer than any test.
const USER_TOKEN_TTL_SECS: u64 = 3600;

/// The typed client of the API over the test's servers (round-robin), whose
/// every call but signing in is counted and checked in `stats`, with what
/// the tests add on top: signing in through restarts, retrying what is safe
/// to repeat, and waiting for admission or for the read models.
pub struct Api {
    pub client: Client,
    pub stats: Arc<Stats>,
}

impl Api {
    pub fn new(bases: Vec<String>, timeout: Duration) -> Api {
        let options = Options {
            // Room for the largest crowd of concurrent callers (1,000).
            connections: 1024,
            timeout,
            idle_timeout: Duration::from_secs(5),
            user_token_ttl_secs: USER_TOKEN_TTL_SECS,
        };
        let stats = Arc::new(Stats::default());
        let counted = stats.clone();
        let client = Client::new(&bases, ADMIN, options)
            .expect("a client of the test servers")
            .with_observer(move |call: &Call<'_>| {
                // Signing in is not part of the workload a test measures.
                if call.endpoint != "sign-in" {
                    counted.count(call);
                }
            });
        Api { client, stats }
    }

    /// The user token of `user` (`Authorization: Bearer` for entering the
    /// queue and for that user's wallet): minted on first use with the admin
    /// token and kept by the client, so later calls send no request. The
    /// signing key lives in the database and is shared by every instance, so
    /// a token outlives restarts and works on each.
    ///
    /// Minting is retried through 503s and lost connections (a restart) for
    /// 30 s; any other answer fails the test. Mint before a race on one user,
    /// so that the race does not mint.
    pub async fn user_token(&self, user: Uuid) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.client.user_token(user).await {
                Ok(token) => return token,
                Err(ClientError::Transport { .. }) => {}
                Err(error) if error.status() == Some(503) => {}
                Err(error) => panic!("no user token for {user}: {error}"),
            }
            assert!(
                Instant::now() < deadline,
                "no user token for {user} within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Makes `call` until an answer other than 503 comes, or `limit` passes
    /// (then `None`). Only for calls that are safe to repeat.
    pub async fn retry<F, Fut>(&self, limit: Duration, mut call: F) -> Option<Answer>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Answer, ClientError>>,
    {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(answer) = call().await {
                if answer.status != 503 {
                    return Some(answer);
                }
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `/readyz` reports read models caught up with the log (the
    /// scheduler applies updates lost to a failed connection).
    pub async fn wait_caught_up(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(ready) = self.client.readiness().await {
                if ready.status == 200 && projection_lag(&ready) == 0 {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "read models still behind: {}",
                    ready.text()
                );
            }
            assert!(Instant::now() < deadline, "/readyz does not answer");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Creates a concert of one date (`seats` seats at `price`) as admin;
    /// returns its id and the date's.
    pub async fn create_concert(&self, seats: u32, price: i64) -> (Uuid, Uuid) {
        let concert = NewConcert {
            title: "Reliability".into(),
            dates: vec![NewDate {
                starts_at: chrono::Utc::now() + chrono::Duration::days(30),
                seats,
                price,
            }],
        };
        let created: Concert = self
            .retry(Duration::from_secs(30), || {
                self.client.create_concert(&concert)
            })
            .await
            .expect("the concert is created")
            .json("create concert", &[201])
            .unwrap();
        (created.concert_id, created.dates[0].date_id)
    }

    /// Enters the queue as `user`, signed in with their user token (retrying:
    /// a repeated entry returns the same ticket).
    pub async fn enter(&self, user: Uuid, concert: Uuid, limit: Duration) -> Option<Answer> {
        self.user_token(user).await;
        self.retry(limit, || self.client.enter_queue(user, concert))
            .await
    }

    /// The token's status (`waiting`, `active`, `expired`), polling until it
    /// is not `waiting` or `limit` passes.
    pub async fn wait_admitted(&self, token: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(answer) = self.client.current_token(token).await {
                if let Ok(ticket) = answer.json::<QueueToken>("queue status", &[200]) {
                    if ticket.status != "waiting" {
                        return Some(ticket.status);
                    }
                }
                if answer.status == 401 {
                    return Some("invalid".into());
                }
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Free seats of a date, first page of `limit`.
    pub async fn free_seats(
        &self,
        token: &str,
        concert: Uuid,
        date: Uuid,
        limit: u32,
    ) -> Option<Vec<FreeSeat>> {
        let answer = self
            .client
            .seats(token, concert, date, 0, Some(limit))
            .await
            .ok()?;
        if answer.status != 200 {
            return None;
        }
        let page: SeatPage = answer.json("free seats", &[200]).ok()?;
        Some(page.seats)
    }
}

/// `projection_lag_events` of a `/readyz` answer (0 when absent).
pub fn projection_lag(ready: &Answer) -> i64 {
    body(ready)["projection_lag_events"].as_i64().unwrap_or(0)
}

/// The body of an answer as JSON (`null` when it is not JSON), for the
/// fields no response type of the client names.
pub fn body(answer: &Answer) -> Value {
    serde_json::from_slice(&answer.body).unwrap_or(Value::Null)
}

/// Keeps a test's figures for RELIABILITY.md: printed, and written to
/// `<target tmp>/reliability-figures/<test>.json`.
pub fn report_figures(test: &str, figures: Value) {
    println!("FIGURES {test}: {figures}");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("reliability-figures");
    let _ = fs::create_dir_all(&dir);
    let _ = fs::write(
        dir.join(format!("{test}.json")),
        serde_json::to_string_pretty(&figures).unwrap(),
    );
}
