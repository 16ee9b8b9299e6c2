//! The subscribers: plain HTTP/1.1 connections reading the date's event
//! stream (a client library per connection would cost the load generator
//! more than the server). One in `sample_every` parses what it gets and
//! records each hold's push latency; the others only read.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::api::Date;
use crate::HoldTimes;

/// What the subscribers saw.
pub struct Subscribers {
    count: usize,
    ready: Arc<AtomicUsize>,
    bytes: Arc<AtomicU64>,
    /// Push latencies of the sampled subscribers, µs.
    latencies: Arc<Mutex<Vec<u64>>>,
    /// Pushes that arrived before the hold's own answer (counted as 0).
    early: Arc<AtomicUsize>,
    sampled: usize,
}

/// Opens `count` subscriptions, taking turns with `tokens` (a token may
/// hold only a few streams), and waits until each has its snapshot.
pub async fn open(
    url: &str,
    date: &Date,
    tokens: &[String],
    count: usize,
    sample_every: usize,
    times: Arc<HoldTimes>,
    compact: bool,
) -> Subscribers {
    let address = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let query = if compact { "?changes=compact" } else { "" };
    let request = |token: &str| {
        format!(
            "GET /api/v1/concerts/{}/dates/{}/seats/events{query} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n",
            date.concert_id, date.date_id
        )
    };
    let subscribers = Subscribers {
        count,
        ready: Arc::default(),
        bytes: Arc::default(),
        latencies: Arc::default(),
        early: Arc::default(),
        sampled: count.div_ceil(sample_every),
    };
    let started = Instant::now();
    for index in 0..count {
        let sampled = index % sample_every == 0;
        let ready = subscribers.ready.clone();
        let subscription = subscribe(
            address.clone(),
            request(&tokens[index % tokens.len()]),
            sampled.then(|| times.clone()),
            ready.clone(),
            subscribers.bytes.clone(),
            subscribers.latencies.clone(),
            subscribers.early.clone(),
        );
        tokio::spawn(async move {
            // A stream that had its snapshot and then ended is counted out.
            if subscription.await {
                ready.fetch_sub(1, Ordering::Relaxed);
            }
        });
        // Connect in waves, so the listen backlog never overflows.
        if index % 200 == 199 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    crate::until_all(&subscribers.ready, count, started).await;
    println!(
        "{count} subscribers connected, each with its snapshot, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    subscribers
}

async fn subscribe(
    address: String,
    request: String,
    times: Option<Arc<HoldTimes>>,
    ready: Arc<AtomicUsize>,
    bytes: Arc<AtomicU64>,
    latencies: Arc<Mutex<Vec<u64>>>,
    early: Arc<AtomicUsize>,
) -> bool {
    let Ok(mut stream) = TcpStream::connect(&address).await else {
        eprintln!("a subscriber could not connect");
        return false;
    };
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    // The request says which format comes back.
    let compact = request.contains("?changes=compact");
    let mut buffer = vec![0u8; 8192];
    let mut text = String::new();
    let mut snapshot = false;
    loop {
        let Ok(read) = stream.read(&mut buffer).await else {
            return snapshot;
        };
        if read == 0 {
            return snapshot;
        }
        bytes.fetch_add(read as u64, Ordering::Relaxed);
        if snapshot && times.is_none() {
            continue;
        }
        text.push_str(&String::from_utf8_lossy(&buffer[..read]));
        if !snapshot {
            if text.contains("event: snapshot") && text.contains("\n\n") {
                snapshot = true;
                ready.fetch_add(1, Ordering::Relaxed);
                text.clear();
            }
            continue;
        }
        let Some(times) = &times else { continue };
        let now = times.micros();
        // Whole events only; the rest waits for the next read.
        let Some(end) = text.rfind("\n\n") else {
            continue;
        };
        let found = if compact {
            held_in_compact(&text[..end])
        } else {
            held_in_full(&text[..end])
        };
        text.drain(..end + 2);
        let mut latencies = latencies.lock().unwrap();
        for seat_no in found {
            match times
                .answered
                .get(seat_no)
                .map(|at| at.load(Ordering::Acquire))
            {
                Some(answered) if answered > 0 && answered <= now => latencies.push(now - answered),
                _ => {
                    early.fetch_add(1, Ordering::Relaxed);
                    latencies.push(0);
                }
            }
        }
    }
}

impl Subscribers {
    /// Prints the push latencies and how much each sampled subscriber got.
    pub fn report(&self, holds: usize) {
        let mut latencies = self.latencies.lock().unwrap().clone();
        latencies.sort_unstable();
        let at = |quantile: f64| {
            latencies
                .get(
                    ((latencies.len() as f64 * quantile) as usize)
                        .min(latencies.len().saturating_sub(1)),
                )
                .map_or(0.0, |micros| *micros as f64 / 1000.0)
        };
        println!(
            "push latency from a hold's answer to a subscriber (ms), {} pushes to {} sampled subscribers: p50 {:.1}, p99 {:.1}, max {:.1} ({} arrived before the answer, counted as 0)",
            latencies.len(),
            self.sampled,
            at(0.5),
            at(0.99),
            latencies.last().map_or(0.0, |micros| *micros as f64 / 1000.0),
            self.early.load(Ordering::Relaxed),
        );
        println!(
            "{} subscribers still connected of {}; {:.1} MiB pushed in all; {holds} seats held in the run",
            self.ready.load(Ordering::Relaxed),
            self.count,
            self.bytes.load(Ordering::Relaxed) as f64 / 1048576.0,
        );
    }
}

/// The seats held in `event: seats` frames (`"seat_no":17,"status":"held"`).
fn held_in_full(text: &str) -> Vec<usize> {
    let mut found = Vec::new();
    for part in text.split("\"seat_no\":").skip(1) {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        if part[digits.len()..].starts_with(",\"status\":\"held\"") {
            if let Ok(seat_no) = digits.parse::<usize>() {
                found.push(seat_no);
            }
        }
    }
    found
}

/// The seats held in `event: seat-changes` frames (`data: "17H,18S"`).
fn held_in_compact(text: &str) -> Vec<usize> {
    text.lines()
        .filter_map(|line| line.strip_prefix("data: \""))
        .flat_map(|data| data.trim_end_matches('"').split(','))
        .filter_map(|change| change.strip_suffix('H')?.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_give_the_held_seats() {
        let full = "event: seats\nid: 9\ndata: {\"changes\":[{\"seat_id\":\"x\",\"seat_no\":17,\"status\":\"held\"},{\"seat_id\":\"y\",\"seat_no\":18,\"status\":\"sold\"}]}";
        let compact = "event: seat-changes\nid: 9\ndata: \"17H,18S\"\n\nevent: seat-changes\nid: 10\ndata: \"4H\"";

        assert_eq!(held_in_full(full), vec![17]);
        assert_eq!(held_in_compact(compact), vec![17, 4]);
    }
}
