//! Progress of a backup or restore: a spinner with bytes and rate on a
//! terminal, a plain line every few seconds otherwise.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressStyle};

/// Reports bytes done, or steps of a restore.
pub(super) struct Meter {
    bar: Option<ProgressBar>,
    label: &'static str,
    started: Instant,
    last_line: Instant,
}

impl Meter {
    pub(super) fn new(label: &'static str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            let style = ProgressStyle::with_template("{spinner} {msg}: {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.set_message(label);
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Meter {
            bar,
            label,
            started: Instant::now(),
            last_line: Instant::now(),
        }
    }

    /// Records `bytes` written so far.
    pub(super) fn bytes(&mut self, bytes: u64) {
        let rate = bytes as f64 / self.elapsed().max(1e-3);
        self.show(format!(
            "{} written, {}/s",
            HumanBytes(bytes),
            HumanBytes(rate as u64)
        ));
    }

    /// Records a step of `total` (e.g. a table restored).
    pub(super) fn step(&mut self, done: usize, total: usize, what: &str) {
        self.show(format!("{done}/{total} {what}"));
    }

    fn show(&mut self, text: String) {
        match &self.bar {
            Some(bar) => bar.set_message(format!("{}: {text}", self.label)),
            None if self.last_line.elapsed() >= Duration::from_secs(5) => {
                crate::say_to_stderr!("{}: {text}", self.label);
                self.last_line = Instant::now();
            }
            None => {}
        }
    }

    /// Seconds since the start.
    pub(super) fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Ends the spinner.
    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
