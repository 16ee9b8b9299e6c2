//! The measured loop of `endpoint`: C clients, each sending its next request
//! as soon as the previous one is answered, for T seconds; around it, the
//! probes that sample CPU and the database's statements from the start of the
//! loop, not of the setup.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::progress;
use crate::machine::{CpuMeter, CpuTimes, MachineTicks};
use crate::profile::Profiler;
use crate::BoxError;

/// What is measured around the loop besides the requests.
pub struct Probes {
    pub profiler: Option<Profiler>,
    pub meter: Option<CpuMeter>,
    /// CPU and machine readings taken as the loop starts.
    pub start: std::sync::Mutex<Option<(Option<CpuTimes>, MachineTicks)>>,
}

/// Runs `step(worker)` on `clients` workers until `duration` passed (or a step
/// fails, which ends that worker); returns the time from start until the last
/// worker's last answer.
pub async fn closed_loop<F, Fut>(
    probes: &Probes,
    clients: usize,
    duration: Duration,
    max_steps: usize,
    step: F,
) -> Duration
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), BoxError>> + Send + 'static,
{
    let step = Arc::new(step);
    if let Some(profiler) = &probes.profiler {
        if let Err(error) = profiler.reset().await {
            eprintln!("profile: cannot reset pg_stat_statements: {error}");
        }
    }
    *probes.start.lock().expect("probe lock") = Some((
        probes.meter.as_ref().map(CpuMeter::sample),
        MachineTicks::read(),
    ));
    let started = Instant::now();
    let bar = progress("run", duration.as_secs());
    let ticker = {
        let bar = bar.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                bar.inc(1);
            }
        })
    };
    let steps = Arc::new(AtomicUsize::new(0));
    let stopped = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for worker in 0..clients {
        let step = step.clone();
        let steps = steps.clone();
        let stopped = stopped.clone();
        workers.push(tokio::spawn(async move {
            while started.elapsed() < duration && steps.fetch_add(1, Ordering::Relaxed) < max_steps
            {
                if let Err(error) = step(worker).await {
                    if stopped.fetch_add(1, Ordering::Relaxed) == 0 {
                        eprintln!("a client stopped early: {error}");
                    }
                    break;
                }
            }
        }));
    }
    for worker in workers {
        let _ = worker.await;
    }
    let elapsed = started.elapsed();
    ticker.abort();
    bar.finish_and_clear();
    let stopped = stopped.load(Ordering::Relaxed);
    if stopped > 0 {
        eprintln!("{stopped} of {clients} clients stopped before the end");
    }
    elapsed
}
