//! Per-endpoint request statistics: latencies, statuses, throughput, and the
//! printed and JSON reports. Latencies are kept as a plain vector of
//! microseconds and sorted once for the percentiles (a few hundred thousand
//! samples at most), so no histogram crate is needed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use concert_client::{Call, Observer};
use serde::Serialize;

/// What one endpoint saw.
#[derive(Debug, Default)]
struct Samples {
    latencies_us: Vec<u32>,
    statuses: BTreeMap<u16, u64>,
    transport_errors: u64,
    first_start: Option<Instant>,
    last_end: Option<Instant>,
}

/// Shared recorder of every request of one phase.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    inner: Arc<Mutex<HashMap<&'static str, Samples>>>,
}

impl Stats {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one answered request that took `elapsed`, ending now.
    pub fn record(&self, endpoint: &'static str, elapsed: Duration, status: u16) {
        let (started, ended) = span_ending_now(elapsed);
        let micros = elapsed.as_micros().min(u128::from(u32::MAX)) as u32;
        let mut inner = self.inner.lock().expect("stats lock");
        let samples = inner.entry(endpoint).or_default();
        samples.latencies_us.push(micros);
        *samples.statuses.entry(status).or_default() += 1;
        samples.first_start = Some(samples.first_start.map_or(started, |t| t.min(started)));
        samples.last_end = Some(samples.last_end.map_or(ended, |t| t.max(ended)));
    }

    /// Records a request that got no HTTP answer (connection refused, timeout...).
    pub fn record_transport_error(&self, endpoint: &'static str, elapsed: Duration) {
        let (started, ended) = span_ending_now(elapsed);
        let mut inner = self.inner.lock().expect("stats lock");
        let samples = inner.entry(endpoint).or_default();
        samples.transport_errors += 1;
        samples.first_start = Some(samples.first_start.map_or(started, |t| t.min(started)));
        samples.last_end = Some(samples.last_end.map_or(ended, |t| t.max(ended)));
    }

    /// Number of 5xx answers over every endpoint.
    pub fn server_errors(&self) -> u64 {
        let inner = self.inner.lock().expect("stats lock");
        inner
            .values()
            .flat_map(|s| s.statuses.iter())
            .filter(|(status, _)| **status >= 500)
            .map(|(_, count)| *count)
            .sum()
    }

    /// Number of requests that got no answer.
    pub fn transport_errors(&self) -> u64 {
        let inner = self.inner.lock().expect("stats lock");
        inner.values().map(|s| s.transport_errors).sum()
    }

    /// Summaries, by endpoint name. With `window`, throughput is over that
    /// fixed duration (a closed-loop run); without it, over the span from the
    /// endpoint's first request to its last answer.
    pub fn summaries(&self, window: Option<Duration>) -> BTreeMap<String, EndpointSummary> {
        let mut inner = self.inner.lock().expect("stats lock");
        inner
            .iter_mut()
            .map(|(name, samples)| (name.to_string(), summarise(samples, window)))
            .collect()
    }
}

/// Every call of a client observed by these stats is timed into them.
impl Observer for Stats {
    fn observe(&self, call: &Call<'_>) {
        match call.status() {
            Some(status) => self.record(call.endpoint, call.elapsed, status),
            None => self.record_transport_error(call.endpoint, call.elapsed),
        }
    }
}

/// (start, end) of a span of `elapsed` that ends now.
fn span_ending_now(elapsed: Duration) -> (Instant, Instant) {
    let ended = Instant::now();
    (ended.checked_sub(elapsed).unwrap_or(ended), ended)
}

/// Latency figures, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// One endpoint's figures.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointSummary {
    /// Answered requests plus transport errors.
    pub requests: u64,
    /// 2xx answers.
    pub ok: u64,
    /// Seconds the throughput is computed over.
    pub seconds: f64,
    /// Answered requests per second (any status).
    pub throughput_rps: f64,
    /// 2xx answers per second.
    pub ok_rps: f64,
    /// Over every answered request, whatever its status.
    pub latency_ms: Option<Latency>,
    /// Count of answers by HTTP status.
    pub statuses: BTreeMap<String, u64>,
    /// Requests without an HTTP answer.
    pub transport_errors: u64,
}

fn summarise(samples: &mut Samples, window: Option<Duration>) -> EndpointSummary {
    let answered = samples.latencies_us.len() as u64;
    let ok: u64 = samples
        .statuses
        .iter()
        .filter(|(status, _)| (200..300).contains(*status))
        .map(|(_, n)| *n)
        .sum();
    let seconds = match (window, samples.first_start, samples.last_end) {
        (Some(window), _, _) => window.as_secs_f64(),
        (None, Some(first), Some(last)) => last.duration_since(first).as_secs_f64(),
        _ => 0.0,
    };
    let per_second = |n: u64| {
        if seconds > 0.0 {
            n as f64 / seconds
        } else {
            0.0
        }
    };
    samples.latencies_us.sort_unstable();
    let latency = (!samples.latencies_us.is_empty()).then(|| {
        let sorted = &samples.latencies_us;
        let sum: u64 = sorted.iter().map(|&us| u64::from(us)).sum();
        Latency {
            mean: sum as f64 / sorted.len() as f64 / 1000.0,
            p50: percentile(sorted, 50.0),
            p95: percentile(sorted, 95.0),
            p99: percentile(sorted, 99.0),
            max: *sorted.last().expect("non-empty") as f64 / 1000.0,
        }
    });
    EndpointSummary {
        requests: answered + samples.transport_errors,
        ok,
        seconds,
        throughput_rps: per_second(answered),
        ok_rps: per_second(ok),
        latency_ms: latency,
        statuses: samples
            .statuses
            .iter()
            .map(|(status, n)| (status.to_string(), *n))
            .collect(),
        transport_errors: samples.transport_errors,
    }
}

/// Nearest-rank percentile of sorted microseconds, in milliseconds.
fn percentile(sorted: &[u32], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    sorted[index] as f64 / 1000.0
}

/// Prints a table of summaries.
pub fn print_table(title: &str, summaries: &BTreeMap<String, EndpointSummary>) {
    println!("\n{title}");
    println!(
        "{:<16} {:>9} {:>9} {:>10} {:>8} {:>8} {:>8} {:>9}  statuses",
        "endpoint", "requests", "req/s", "2xx/s", "p50 ms", "p95 ms", "p99 ms", "max ms"
    );
    for (name, s) in summaries {
        let (p50, p95, p99, max) = s
            .latency_ms
            .as_ref()
            .map_or((0.0, 0.0, 0.0, 0.0), |l| (l.p50, l.p95, l.p99, l.max));
        let mut statuses: Vec<String> = s
            .statuses
            .iter()
            .map(|(status, n)| format!("{status}:{n}"))
            .collect();
        if s.transport_errors > 0 {
            statuses.push(format!("no-answer:{}", s.transport_errors));
        }
        println!(
            "{:<16} {:>9} {:>9.0} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>9.2}  {}",
            name,
            s.requests,
            s.throughput_rps,
            s.ok_rps,
            p50,
            p95,
            p99,
            max,
            statuses.join(" ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let sorted: Vec<u32> = (1..=100).map(|ms| ms * 1000).collect();
        assert_eq!(percentile(&sorted, 50.0), 50.0);
        assert_eq!(percentile(&sorted, 99.0), 99.0);
        assert_eq!(percentile(&sorted, 100.0), 100.0);
        assert_eq!(percentile(&[7000], 95.0), 7.0);
    }
}
