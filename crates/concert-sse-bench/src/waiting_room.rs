//! The waiting-room run (`--waiting-room N`): N users wait in one concert's
//! line, each watching its standing stream, while the line moves. The line
//! moves as active tokens time out and the scheduler admits the next ones,
//! so start the server with a small `CONCERT_QUEUE_ACTIVE_MAX` and a short
//! `CONCERT_QUEUE_ACTIVE_TTL_SECS`. Prints the standings pushed and, with
//! `--database-url`, what the database did meanwhile.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::api::{Api, Date};

/// Users entering the line at once while it fills.
const ENTERING_AT_ONCE: usize = 32;

pub async fn run(api: &Api, url: &str, watchers: usize, seconds: u64, database: Option<&str>) {
    let date = api.concert(1).await;
    let started = Instant::now();
    let tokens = enter(api, &date, watchers).await;
    println!(
        "{watchers} users entered the line in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let address = url.trim_start_matches("http://").trim_end_matches('/');
    let (watched, watching) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let pushed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    for (index, token) in tokens.into_iter().enumerate() {
        tokio::spawn(watch(
            address.to_string(),
            token,
            [watched.clone(), watching.clone()],
            pushed.clone(),
        ));
        // Connect in waves, so the listen backlog never overflows.
        if index % 200 == 199 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    crate::until_all(&watched, watchers, started).await;
    println!(
        "{watchers} watchers had their first standing in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let database = match database {
        Some(url) => Some(PgPool::connect(url).await.expect("the database")),
        None => None,
    };
    let (before, pushed_before, started) = (
        activity(database.as_ref()).await,
        pushed.load(Ordering::Relaxed),
        Instant::now(),
    );
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let after = activity(database.as_ref()).await;
    let pushed = pushed.load(Ordering::Relaxed) - pushed_before;
    println!(
        "over {elapsed:.1} s: {:.0} standings pushed a second; {} of {watchers} still watching",
        pushed as f64 / elapsed,
        watching.load(Ordering::Relaxed)
    );
    if let (Some(before), Some(after)) = (before, after) {
        println!(
            "database: {:.0} transactions and {:.0} rows read a second",
            (after.0 - before.0) as f64 / elapsed,
            (after.1 - before.1) as f64 / elapsed
        );
    }
}

/// The queue tokens of `count` new users, in the order they entered.
async fn enter(api: &Api, date: &Date, count: usize) -> Vec<String> {
    let mut tokens = Vec::with_capacity(count);
    let mut entering = JoinSet::new();
    for _ in 0..count {
        if entering.len() == ENTERING_AT_ONCE {
            tokens.push(entering.join_next().await.unwrap().unwrap());
        }
        let (api, date) = (api.clone(), date.clone());
        entering.spawn(async move { api.queue_token(&date).await });
    }
    while let Some(token) = entering.join_next().await {
        tokens.push(token.unwrap());
    }
    tokens
}

/// Watches one token's standing: counts it in `watched` once it has its first
/// standing, in `watching` from then until the stream ends (its token was
/// admitted and timed out), and every standing in `pushed`.
async fn watch(
    address: String,
    token: String,
    [watched, watching]: [Arc<AtomicUsize>; 2],
    pushed: Arc<AtomicU64>,
) {
    let Ok(mut stream) = TcpStream::connect(&address).await else {
        eprintln!("a watcher could not connect");
        return;
    };
    let request = format!(
        "GET /api/v1/queue/tokens/current/events HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).await.is_err() {
        return;
    }
    let mut buffer = vec![0u8; 4096];
    let mut seen = 0;
    while let Ok(read @ 1..) = stream.read(&mut buffer).await {
        let standings = String::from_utf8_lossy(&buffer[..read])
            .matches("event: standing")
            .count() as u64;
        if seen == 0 && standings > 0 {
            watched.fetch_add(1, Ordering::Relaxed);
            watching.fetch_add(1, Ordering::Relaxed);
        }
        seen += standings;
        pushed.fetch_add(standings, Ordering::Relaxed);
    }
    if seen > 0 {
        watching.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The database's transactions and rows read so far.
async fn activity(database: Option<&PgPool>) -> Option<(i64, i64)> {
    sqlx::query_as(
        "select xact_commit + xact_rollback, tup_returned + tup_fetched
         from pg_stat_database where datname = current_database()",
    )
    .fetch_one(database?)
    .await
    .ok()
}
