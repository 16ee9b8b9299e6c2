//! Pieces shared by the scenarios: a bounded-concurrency worker pool with a
//! progress bar, signing users in, waiting for a queue token's admission, and
//! writing results (`machine` reads the processes' memory and CPU).

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

/// Signs `count` fresh users in and enters them into the queue; returns
/// (user, queue token) pairs, waiting or active as the service admits them.
pub async fn entered_users(
    api: &Client,
    concert: Uuid,
    count: usize,
    concurrency: usize,
) -> Result<Vec<(Uuid, String)>, BoxError> {
    let users: Vec<Uuid> = (0..count).map(|_| Uuid::new_v4()).collect();
    sign_in(api, &users, concurrency).await?;
    let client = api.clone();
    for_each("enter queue", concurrency, users, move |user| {
        let api = client.clone();
        async move { enter(&api, user, concert).await.map(|t| (user, t.token)) }
    })
    .await
    .into_iter()
    .collect()
}

/// `entered_users`, once all are active.
pub async fn active_users(
    api: &Client,
    concert: Uuid,
    count: usize,
    concurrency: usize,
) -> Result<Vec<(Uuid, String)>, BoxError> {
    let tokens = entered_users(api, concert, count, concurrency).await?;
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

/// Writes `value` as pretty JSON to `path`.
pub fn write_json(path: &std::path::Path, value: &impl Serialize) -> Result<(), BoxError> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n")?;
    println!("results written to {}", path.display());
    Ok(())
}
