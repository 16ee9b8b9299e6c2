//! Pieces shared by the scenarios: a bounded-concurrency worker pool with a
//! progress bar, signing users in, waiting for a queue token's admission, and
//! reading the server's memory from /proc.

use std::collections::VecDeque;
use std::future::Future;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use concert_client::{Client, QueueToken};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use uuid::Uuid;

use crate::BoxError;

/// A progress bar on a terminal's stderr, hidden elsewhere.
pub fn progress(label: &str, len: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>14} [{bar:40}] {pos}/{len} {per_sec:>10} eta {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_message(label.to_string());
    bar
}

/// Runs `step` on every item with at most `concurrency` at once, each on its
/// own tokio task; returns the results in the items' order. Shows a progress
/// bar labelled `label` and prints how long it took.
pub async fn for_each<T, R, F, Fut>(
    label: &str,
    concurrency: usize,
    items: Vec<T>,
    step: F,
) -> Vec<R>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
{
    let total = items.len();
    let bar = progress(label, total as u64);
    let started = Instant::now();
    let queue: Arc<Mutex<VecDeque<(usize, T)>>> =
        Arc::new(Mutex::new(items.into_iter().enumerate().collect()));
    let results: Arc<Mutex<Vec<Option<R>>>> =
        Arc::new(Mutex::new((0..total).map(|_| None).collect()));
    let step = Arc::new(step);
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1).min(total.max(1)) {
        let queue = queue.clone();
        let results = results.clone();
        let step = step.clone();
        let bar = bar.clone();
        workers.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().expect("queue lock").pop_front();
                let Some((index, item)) = next else { break };
                let result = step(item).await;
                results.lock().expect("results lock")[index] = Some(result);
                bar.inc(1);
            }
        }));
    }
    for worker in workers {
        worker.await.expect("a worker task panicked");
    }
    bar.finish_and_clear();
    eprintln!(
        "{label}: {total} done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let results = std::mem::take(&mut *results.lock().expect("results lock"));
    results
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect()
}

/// Signs `users` in, `concurrency` at once: mints each one's user token with
/// the admin token and keeps it in `api` (and every clone of it). Part of a
/// scenario's setup, so that a timed phase that enters the queue, charges or
/// reads a balance mints nothing.
pub async fn sign_in(api: &Client, users: &[Uuid], concurrency: usize) -> Result<(), BoxError> {
    let client = api.clone();
    for_each("sign in", concurrency, users.to_vec(), move |user| {
        let api = client.clone();
        async move {
            api.user_token(user)
                .await
                .map(|_| ())
                .map_err(BoxError::from)
        }
    })
    .await
    .into_iter()
    .collect()
}

/// Enters `user` into the concert's queue (signing them in first if they
/// are not yet); returns the token.
pub async fn enter(api: &Client, user: Uuid, concert: Uuid) -> Result<QueueToken, BoxError> {
    Ok(api
        .enter_queue(user, concert)
        .await?
        .json("enter queue", &[200, 201])?)
}

/// What a waiting token came to.
pub enum Turn {
    Admitted,
    /// Still waiting when the service said nothing is left to book.
    SoldOut,
}

/// Polls the token every `poll` until it is active; fails when it expired or
/// `timeout` passed.
pub async fn wait_active(
    api: &Client,
    token: &str,
    poll: Duration,
    timeout: Duration,
) -> Result<(), BoxError> {
    wait_turn(api, token, poll, timeout, false).await.map(drop)
}

/// `wait_active`, which with `leave_when_sold_out` gives up waiting, as a
/// person in the line would, once the token's body says the concert sold out.
pub async fn wait_turn(
    api: &Client,
    token: &str,
    poll: Duration,
    timeout: Duration,
    leave_when_sold_out: bool,
) -> Result<Turn, BoxError> {
    let deadline = Instant::now() + timeout;
    loop {
        let current: QueueToken = api
            .current_token(token)
            .await?
            .json("queue status", &[200])?;
        match current.status.as_str() {
            "active" => return Ok(Turn::Admitted),
            "waiting" if leave_when_sold_out && current.sold_out => return Ok(Turn::SoldOut),
            "waiting" => {}
            other => return Err(format!("token became {other} while waiting").into()),
        }
        if Instant::now() > deadline {
            return Err("not admitted in time; is CONCERT_QUEUE_ACTIVE_MAX high enough?".into());
        }
        tokio::time::sleep(poll).await;
    }
}

/// Signs `count` fresh users in, enters them into the queue and waits until
/// all are active; returns (user, queue token) pairs.
pub async fn active_users(
    api: &Client,
    concert: Uuid,
    count: usize,
    concurrency: usize,
) -> Result<Vec<(Uuid, String)>, BoxError> {
    let users: Vec<Uuid> = (0..count).map(|_| Uuid::new_v4()).collect();
    sign_in(api, &users, concurrency).await?;
    let client = api.clone();
    let tokens = for_each("enter queue", concurrency, users, move |user| {
        let api = client.clone();
        async move { enter(&api, user, concert).await.map(|t| (user, t.token)) }
    })
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()?;
    let client = api.clone();
    for_each(
        "admission",
        concurrency,
        tokens.clone(),
        move |(_, token)| {
            let api = client.clone();
            async move {
                wait_active(
                    &api,
                    &token,
                    Duration::from_millis(100),
                    Duration::from_secs(300),
                )
                .await
            }
        },
    )
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()?;
    Ok(tokens)
}

/// Peak and current resident memory of a process, from /proc/<pid>/status.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    pub pid: u32,
    pub peak_rss_kib: u64,
    pub rss_kib: u64,
}

impl Memory {
    pub fn read(pid: u32) -> Option<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| -> Option<u64> {
            status
                .lines()
                .find(|line| line.starts_with(name))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        };
        Some(Self {
            pid,
            peak_rss_kib: field("VmHWM:")?,
            rss_kib: field("VmRSS:")?,
        })
    }

    pub fn print(&self) {
        println!(
            "server pid {}: peak RSS {:.1} MiB, current RSS {:.1} MiB",
            self.pid,
            self.peak_rss_kib as f64 / 1024.0,
            self.rss_kib as f64 / 1024.0
        );
    }
}

/// Writes `value` as pretty JSON to `path`.
pub fn write_json(path: &std::path::Path, value: &impl Serialize) -> Result<(), BoxError> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n")?;
    println!("results written to {}", path.display());
    Ok(())
}

/// Cumulative CPU seconds (user + system) of the server, its PostgreSQL
/// (postmaster, live backends and reaped ones) and this load generator.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CpuTimes {
    pub server: f64,
    pub postgres: f64,
    pub load_generator: f64,
}

/// Reads CPU times from /proc; PostgreSQL is the server's `postgres` child.
pub struct CpuMeter {
    server_pid: u32,
    postmaster_pid: Option<u32>,
}

/// Linux reports /proc times in clock ticks of 1/100 s (USER_HZ).
const TICKS_PER_SECOND: f64 = 100.0;

/// (ppid, comm, utime + stime, cutime + cstime) in ticks.
fn proc_stat(pid: &str) -> Option<(u32, String, u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_string();
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let number = |i: usize| -> Option<u64> { fields.get(i)?.parse().ok() };
    Some((
        number(1)? as u32,
        comm,
        number(11)? + number(12)?,
        number(13)? + number(14)?,
    ))
}

impl CpuMeter {
    pub fn new(server_pid: u32) -> Self {
        let postmaster_pid = children(server_pid)
            .into_iter()
            .find(|(_, comm)| comm == "postgres")
            .map(|(pid, _)| pid);
        Self {
            server_pid,
            postmaster_pid,
        }
    }

    pub fn sample(&self) -> CpuTimes {
        let own = |pid: &str| proc_stat(pid).map_or(0, |s| s.2) as f64 / TICKS_PER_SECOND;
        let postgres = self.postmaster_pid.map_or(0.0, |pm| {
            let Some((_, _, mine, reaped)) = proc_stat(&pm.to_string()) else {
                return 0.0;
            };
            let live: u64 = children(pm)
                .iter()
                .filter_map(|(pid, _)| proc_stat(&pid.to_string()))
                .map(|s| s.2)
                .sum();
            (mine + reaped + live) as f64 / TICKS_PER_SECOND
        });
        CpuTimes {
            server: own(&self.server_pid.to_string()),
            postgres,
            load_generator: own("self"),
        }
    }
}

fn children(parent: u32) -> Vec<(u32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let pid: u32 = name.parse().ok()?;
            let (ppid, comm, _, _) = proc_stat(&name)?;
            (ppid == parent).then_some((pid, comm))
        })
        .collect()
}

/// CPU used between two samples, in total and per request.
#[derive(Debug, Clone, Serialize)]
pub struct CpuUse {
    pub seconds: CpuTimes,
    pub ms_per_request: CpuTimes,
    /// Of the machine's capacity over the window (all cores = 100 %).
    pub machine_percent: f64,
}

impl CpuUse {
    pub fn between(before: CpuTimes, after: CpuTimes, window: Duration, requests: u64) -> Self {
        let seconds = CpuTimes {
            server: after.server - before.server,
            postgres: after.postgres - before.postgres,
            load_generator: after.load_generator - before.load_generator,
        };
        let n = requests.max(1) as f64 / 1000.0;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let total = seconds.server + seconds.postgres + seconds.load_generator;
        Self {
            seconds,
            ms_per_request: CpuTimes {
                server: seconds.server / n,
                postgres: seconds.postgres / n,
                load_generator: seconds.load_generator / n,
            },
            machine_percent: 100.0 * total / (window.as_secs_f64().max(1e-9) * cores),
        }
    }

    pub fn print(&self) {
        println!(
            "CPU: server {:.1} s ({:.3} ms/req), PostgreSQL {:.1} s ({:.3} ms/req), load generator {:.1} s ({:.3} ms/req); {:.0} % of the machine",
            self.seconds.server,
            self.ms_per_request.server,
            self.seconds.postgres,
            self.ms_per_request.postgres,
            self.seconds.load_generator,
            self.ms_per_request.load_generator,
            self.machine_percent
        );
    }
}

/// Busy and total CPU ticks of the whole machine, from /proc/stat.
#[derive(Debug, Clone, Copy, Default)]
pub struct MachineTicks {
    busy: u64,
    total: u64,
}

impl MachineTicks {
    pub fn read() -> Self {
        let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let values: Vec<u64> = text
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        let total: u64 = values.iter().take(8).sum();
        let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
        Self {
            busy: total.saturating_sub(idle),
            total,
        }
    }

    /// Busy share of every core between two readings, in percent.
    pub fn busy_percent(before: Self, after: Self) -> f64 {
        let total = after.total.saturating_sub(before.total).max(1) as f64;
        100.0 * after.busy.saturating_sub(before.busy) as f64 / total
    }
}
