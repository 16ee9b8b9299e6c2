//! Where a phase's CPU went, from /proc: the server's, this load generator's
//! and the whole machine's (the rest is mostly PostgreSQL), in cores.

use std::time::Instant;

/// Clock ticks per second of /proc's counters (USER_HZ on Linux).
pub const TICKS_PER_SECOND: f64 = 100.0;

/// The counters at one moment.
pub struct Sample {
    at: Instant,
    server: Option<u64>,
    own: Option<u64>,
    /// (busy, total) ticks of all cores.
    machine: Option<(u64, u64)>,
}

impl Sample {
    pub fn now(server_pid: Option<u32>) -> Self {
        Self {
            at: Instant::now(),
            server: server_pid.and_then(|pid| process_ticks(&pid.to_string())),
            own: process_ticks("self"),
            machine: machine_ticks(),
        }
    }

    /// Seconds from `earlier` to `self`.
    pub fn seconds_since(&self, earlier: &Sample) -> f64 {
        self.at.duration_since(earlier.at).as_secs_f64()
    }

    /// What was used since `self`, as a line to print.
    pub fn report_until(&self, later: &Sample) -> String {
        let seconds = later.at.duration_since(self.at).as_secs_f64();
        let cores = |before: Option<u64>, after: Option<u64>| match (before, after) {
            (Some(before), Some(after)) => {
                format!(
                    "{:.2}",
                    (after - before) as f64 / TICKS_PER_SECOND / seconds
                )
            }
            _ => "?".into(),
        };
        let machine = match (self.machine, later.machine) {
            (Some((busy0, total0)), Some((busy1, total1))) if total1 > total0 => format!(
                "{:.0} %",
                (busy1 - busy0) as f64 * 100.0 / (total1 - total0) as f64
            ),
            _ => "?".into(),
        };
        format!(
            "CPU in cores: server {}, load generator {}; machine busy {machine}",
            cores(self.server, later.server),
            cores(self.own, later.own),
        )
    }
}

/// utime + stime of a process (`self` or a pid).
pub fn process_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it are plain.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(user + system)
}

/// (busy, total) ticks of the machine's cores from the `cpu` line of /proc/stat.
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|field| field.parse().ok())
        .collect();
    let total: u64 = ticks.iter().sum();
    // idle and iowait
    let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_and_the_machine_have_counters() {
        assert!(process_ticks("self").is_some());
        let (busy, total) = machine_ticks().unwrap();
        assert!(busy <= total && total > 0);
    }
}
