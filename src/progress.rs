//! Progress of long work: a bar with rate and ETA on a terminal, a plain line
//! every few seconds otherwise.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Reports `done` of `total` events.
pub struct Progress {
    bar: Option<ProgressBar>,
    label: &'static str,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    /// Progress of the work named `label`.
    pub fn new(label: &'static str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            let style = ProgressStyle::with_template(
                "{msg} [{bar:40}] {pos}/{len} events, {per_sec}, eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_message(label);
            bar
        });
        Self {
            bar,
            label,
            started: Instant::now(),
            last_line: Instant::now(),
        }
    }

    /// Records that `done` of `total` are finished.
    pub fn update(&mut self, done: u64, total: u64) {
        match &self.bar {
            Some(bar) => {
                bar.set_length(total);
                bar.set_position(done);
            }
            None if self.last_line.elapsed() >= Duration::from_secs(5) => {
                crate::say_to_stderr!(
                    "{}: {done}/{total} events, {:.0}/s",
                    self.label,
                    self.rate(done)
                );
                self.last_line = Instant::now();
            }
            None => {}
        }
    }

    /// Events per second so far.
    pub fn rate(&self, done: u64) -> f64 {
        done as f64 / self.started.elapsed().as_secs_f64().max(1e-9)
    }

    /// Ends the bar and prints the totals.
    pub fn finish(&self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        crate::say_to_stderr!(
            "{}: {done} events in {:.1} s ({:.0} events/s)",
            self.label,
            self.started.elapsed().as_secs_f64(),
            self.rate(done)
        );
    }
}
