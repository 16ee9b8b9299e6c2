//! concert-sse-bench: 10,000 Server-Sent Event subscribers on one date while
//! holds run at full speed. Measures the hold throughput without and then
//! with the subscribers (same run, same date), the push latency from a
//! hold's answer to its change reaching a subscriber (p50/p99 over a sample
//! of subscribers), and the server's memory per subscriber (its RSS, from
//! /proc, before and after they connect).
//!
//! With `--waiting-room N`, N users wait in a concert's line instead, each
//! watching its standing stream (`waiting_room`).
//!
//! With `--floor-every-ms MS`, the second phase runs the holds beside a bare
//! fan-out instead of the subscribers (`floor`): what the socket writes alone
//! cost the holds on this machine.
//!
//! Runs against a service started separately (see BENCHMARKS.md).

mod api;
mod cpu;
mod floor;
mod subscribers;
mod waiting_room;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;

#[derive(Parser)]
struct Args {
    /// The service's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Its admin token.
    #[arg(long, env = "CONCERT_ADMIN_TOKEN")]
    admin_token: String,
    /// The server's process id, to read its memory from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Subscribers on the date.
    #[arg(long, default_value_t = 10_000)]
    subscribers: usize,
    /// One subscriber in this many records every push's latency.
    #[arg(long, default_value_t = 50)]
    sample_every: usize,
    /// Holds sent at once.
    #[arg(long, default_value_t = 32)]
    holders: usize,
    /// Seconds of holds in each phase.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Subscribe with `?changes=compact` (`event: seat-changes`).
    #[arg(long)]
    compact: bool,
    /// Instead of the seat map: this many users wait in a concert's line,
    /// each watching its standing stream, for `--seconds` (`waiting_room`).
    #[arg(long)]
    waiting_room: Option<usize>,
    /// With `--waiting-room`: the service's database, to read what it did.
    #[arg(long)]
    database_url: Option<String>,
    /// Instead of the subscribers: a bare fan-out to as many loopback
    /// connections, one write to each every this many ms (`floor`).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    floor_every_ms: Option<u64>,
    /// With `--floor-every-ms`: bytes a write; by default the compact
    /// changes of one interval at the rate of the holds alone (7 bytes each).
    #[arg(long)]
    floor_bytes: Option<usize>,
    /// Be the floor's process (started by `--floor-every-ms`).
    #[arg(long, hide = true)]
    floor_child: bool,
}

/// When each seat's hold was answered, in µs since the start (0: not yet).
pub struct HoldTimes {
    start: Instant,
    answered: Vec<AtomicU64>,
}

impl HoldTimes {
    fn micros(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if args.floor_child {
        let every = Duration::from_millis(args.floor_every_ms.unwrap_or(250));
        let bytes = args.floor_bytes.unwrap_or(1);
        return floor::run(args.subscribers, every, bytes, args.seconds).await;
    }
    let api = api::Api::new(&args.url, &args.admin_token);
    if let Some(watchers) = args.waiting_room {
        let database = args.database_url.as_deref();
        return waiting_room::run(&api, &args.url, watchers, args.seconds, database).await;
    }
    let seats = 50_000;
    let date = api.concert(seats).await;
    let tokens = api.active_tokens(&date, args.holders).await;
    let times = Arc::new(HoldTimes {
        start: Instant::now(),
        answered: (0..=seats).map(|_| AtomicU64::new(0)).collect(),
    });
    let next_seat = Arc::new(AtomicUsize::new(1));
    let phase = Duration::from_secs(args.seconds);

    let before = cpu::Sample::now(args.server_pid);
    let alone = holds(&api, &date, &tokens, &times, &next_seat, phase).await;
    println!("holds without subscribers: {alone:.0}/s");
    println!(
        "  {}",
        before.report_until(&cpu::Sample::now(args.server_pid))
    );

    if let Some(every_ms) = args.floor_every_ms {
        let bytes = args
            .floor_bytes
            .unwrap_or((alone * 7.0 * every_ms as f64 / 1000.0) as usize);
        return beside_the_floor(&args, every_ms, bytes, alone, |phase| {
            holds(&api, &date, &tokens, &times, &next_seat, phase)
        })
        .await;
    }

    // Tokens for the subscribers, each within its share of streams; taken
    // before the memory is read, as the holders' are.
    let per_token = concert::live::stream_permits::STREAMS_PER_TOKEN;
    let watching = api
        .active_tokens(&date, args.subscribers.div_ceil(per_token))
        .await;
    let rss_before = args.server_pid.and_then(rss_kib);
    let subscribers = subscribers::open(
        &args.url,
        &date,
        &watching,
        args.subscribers,
        args.sample_every,
        times.clone(),
        args.compact,
    )
    .await;
    let rss_after = args.server_pid.and_then(rss_kib);
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        let per = (after.saturating_sub(before)) as f64 / args.subscribers as f64;
        println!(
            "server RSS {before} KiB -> {after} KiB with {} subscribers: {per:.1} KiB each",
            args.subscribers
        );
    }

    let before = cpu::Sample::now(args.server_pid);
    let with = holds(&api, &date, &tokens, &times, &next_seat, phase).await;
    println!(
        "holds with {} subscribers: {with:.0}/s ({:+.1} %)",
        args.subscribers,
        (with / alone - 1.0) * 100.0
    );
    println!(
        "  {}",
        before.report_until(&cpu::Sample::now(args.server_pid))
    );
    // The last pushes of the phase are let in before the count.
    tokio::time::sleep(Duration::from_secs(2)).await;
    subscribers.report(next_seat.load(Ordering::Relaxed) - 1);
}

/// The second phase beside the fan-out's floor: the holds per second, and
/// the CPU of the server, the floor and the machine.
async fn beside_the_floor<F, Fut>(args: &Args, every_ms: u64, bytes: usize, alone: f64, holds: F)
where
    F: FnOnce(Duration) -> Fut,
    Fut: std::future::Future<Output = f64>,
{
    let mut child = floor::start(
        args.subscribers,
        Duration::from_millis(every_ms),
        bytes,
        args.seconds + 10,
    )
    .await;
    let before = cpu::Sample::now(args.server_pid);
    let floor_before = cpu::process_ticks(&child.id().to_string());
    let with = holds(Duration::from_secs(args.seconds)).await;
    let after = cpu::Sample::now(args.server_pid);
    let floor_after = cpu::process_ticks(&child.id().to_string());
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "holds beside the floor ({} connections, {bytes} bytes to each every {every_ms} ms): {with:.0}/s ({:+.1} %)",
        args.subscribers,
        (with / alone - 1.0) * 100.0
    );
    println!("  {}", before.report_until(&after));
    if let (Some(ticks_before), Some(ticks_after)) = (floor_before, floor_after) {
        let seconds = after.seconds_since(&before);
        println!(
            "  the floor's process: {:.2} cores",
            (ticks_after - ticks_before) as f64 / cpu::TICKS_PER_SECOND / seconds
        );
    }
}

/// Holds free seats one after another with every token at once for `phase`:
/// the holds per second.
async fn holds(
    api: &api::Api,
    date: &api::Date,
    tokens: &[String],
    times: &Arc<HoldTimes>,
    next_seat: &Arc<AtomicUsize>,
    phase: Duration,
) -> f64 {
    let started = Instant::now();
    let done = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = tokens
        .iter()
        .map(|token| {
            let (api, date, token) = (api.clone(), date.clone(), token.clone());
            let (times, next_seat, done) = (times.clone(), next_seat.clone(), done.clone());
            tokio::spawn(async move {
                while started.elapsed() < phase {
                    let seat_no = next_seat.fetch_add(1, Ordering::Relaxed);
                    if seat_no >= times.answered.len() {
                        break;
                    }
                    if api.hold(&date, &token, seat_no as u32).await {
                        times.answered[seat_no].store(times.micros(), Ordering::Release);
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Waits until `counter` reaches `count`; gives up five minutes after `started`.
async fn until_all(counter: &AtomicUsize, count: usize, started: Instant) {
    while counter.load(Ordering::Relaxed) < count {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "only {} of {count} streams started in five minutes",
            counter.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
