//! What the server, its PostgreSQL and the load generator use of the
//! machine, read from /proc: resident memory and CPU time.

use std::time::Duration;

use serde::Serialize;

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
