//! `ceiling`: what PostgreSQL itself allows on this machine, measured with
//! pgbench and the custom scripts of `bench/` against a scratch table
//! `bench_events` shaped like the service's `events` (created here, dropped
//! afterwards; the service's tables are untouched).

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;
use serde_json::json;

use crate::common::write_json;
use crate::BoxError;

const SETUP: &str = include_str!("../../../bench/ceiling_setup.sql");
const SERVICE_SHAPE: &str = include_str!("../../../bench/ceiling_service_shape.sql");
const TEARDOWN: &str = include_str!("../../../bench/ceiling_teardown.sql");
const APPEND: &str = include_str!("../../../bench/append.sql");
const ES_COMMAND: &str = include_str!("../../../bench/es_command.sql");

#[derive(Debug, Clone, Args, Serialize)]
pub struct CeilingArgs {
    /// The database, e.g. postgres://postgres@localhost:5432/concert?host=/tmp/bench-data
    /// (the URL the server logs when it starts its private PostgreSQL).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    #[serde(skip)]
    pub database_url: String,
    /// pgbench clients (connections).
    #[arg(long, default_value_t = 64)]
    pub clients: u32,
    /// pgbench threads (default: the number of CPUs, at most the clients).
    #[arg(long)]
    pub jobs: Option<u32>,
    /// Seconds per script.
    #[arg(long, default_value_t = 15)]
    pub seconds: u32,
    /// Streams of 10 events prefilled for the event-sourced command.
    #[arg(long, default_value_t = 20_000)]
    pub streams: u32,
    /// Also run both scripts on a table with the service's extra columns,
    /// indexes and hash-chain trigger (migrations/0003).
    #[arg(long)]
    pub service_shape: bool,
    /// The pgbench binary (default: /usr/lib/postgresql/15/bin/pgbench, else pgbench on PATH).
    #[arg(long)]
    pub pgbench: Option<PathBuf>,
    /// Write the results here as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// One pgbench run's figures.
#[derive(Debug, Clone, Serialize)]
pub struct PgbenchResult {
    pub script: String,
    pub table_shape: String,
    pub tps: f64,
    pub latency_avg_ms: Option<f64>,
    pub transactions: Option<u64>,
    pub failed: Option<u64>,
}

pub async fn run(args: CeilingArgs) -> Result<bool, BoxError> {
    let pgbench = args.pgbench.clone().unwrap_or_else(|| {
        let debian = PathBuf::from("/usr/lib/postgresql/15/bin/pgbench");
        if debian.exists() {
            debian
        } else {
            PathBuf::from("pgbench")
        }
    });
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
    let jobs = args.jobs.unwrap_or(cpus).clamp(1, args.clients.max(1));
    let dir = std::env::temp_dir().join(format!("concert-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let append = dir.join("append.sql");
    let es_command = dir.join("es_command.sql");
    std::fs::write(&append, APPEND)?;
    std::fs::write(&es_command, ES_COMMAND)?;

    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&args.database_url)
        .await?;
    let version: String = sqlx::query_scalar("show server_version")
        .fetch_one(&pool)
        .await?;
    let mut settings = serde_json::Map::new();
    for name in [
        "max_connections",
        "shared_buffers",
        "fsync",
        "synchronous_commit",
        "full_page_writes",
        "wal_level",
        "max_wal_size",
        "checkpoint_timeout",
        "wal_buffers",
        "commit_delay",
    ] {
        let value: String = sqlx::query_scalar(&format!("show {name}"))
            .fetch_one(&pool)
            .await?;
        settings.insert(name.to_string(), value.into());
    }
    println!(
        "PostgreSQL {version}; {}",
        serde_json::Value::Object(settings.clone())
    );

    let shapes: &[&str] = if args.service_shape {
        &["plain", "service"]
    } else {
        &["plain"]
    };
    let mut results = Vec::new();
    let outcome: Result<(), BoxError> = async {
        for shape in shapes {
            eprintln!(
                "preparing bench_events ({shape} shape, {} streams x 10 events)",
                args.streams
            );
            let setup = SETUP.replace(":streams", &args.streams.to_string());
            sqlx::raw_sql(&setup).execute(&pool).await?;
            if *shape == "service" {
                sqlx::raw_sql(SERVICE_SHAPE).execute(&pool).await?;
            }
            // Best effort (needs superuser or pg_checkpoint): start from a fresh checkpoint.
            let _ = sqlx::raw_sql("checkpoint").execute(&pool).await;
            for (name, script) in [("append", &append), ("es-command", &es_command)] {
                eprintln!(
                    "pgbench {name}: {} clients, {jobs} threads, {} s",
                    args.clients, args.seconds
                );
                let result = run_pgbench(&pgbench, &args, jobs, script)?;
                results.push(PgbenchResult {
                    script: name.to_string(),
                    table_shape: shape.to_string(),
                    ..result
                });
            }
        }
        Ok(())
    }
    .await;
    sqlx::raw_sql(TEARDOWN).execute(&pool).await?;
    let _ = std::fs::remove_dir_all(&dir);
    outcome?;

    println!(
        "\npgbench ceiling, {} clients, {} s each",
        args.clients, args.seconds
    );
    println!(
        "{:<12} {:<8} {:>10} {:>10} {:>10} {:>7}",
        "script", "shape", "tps", "avg ms", "xacts", "failed"
    );
    for r in &results {
        println!(
            "{:<12} {:<8} {:>10.0} {:>10.2} {:>10} {:>7}",
            r.script,
            r.table_shape,
            r.tps,
            r.latency_avg_ms.unwrap_or(f64::NAN),
            r.transactions.map_or("-".into(), |n| n.to_string()),
            r.failed.map_or("-".into(), |n| n.to_string()),
        );
    }
    if let Some(path) = &args.json {
        write_json(
            path,
            &json!({
                "command": "ceiling",
                "args": args,
                "jobs": jobs,
                "postgres_version": version,
                "settings": settings,
                "results": results,
            }),
        )?;
    }
    Ok(results.iter().all(|r| r.failed.unwrap_or(0) == 0))
}

fn run_pgbench(
    pgbench: &PathBuf,
    args: &CeilingArgs,
    jobs: u32,
    script: &PathBuf,
) -> Result<PgbenchResult, BoxError> {
    // The password goes to pgbench's environment, not its command line.
    let connection = concert::backup::ToolConnection::new(&args.database_url);
    let output = connection
        .command(pgbench)
        .arg("--no-vacuum")
        .args(["--protocol", "prepared"])
        .args(["--client", &args.clients.to_string()])
        .args(["--jobs", &jobs.to_string()])
        .args(["--time", &args.seconds.to_string()])
        .args(["--define", &format!("streams={}", args.streams)])
        .arg("--file")
        .arg(script)
        .arg(&connection.url)
        .output()
        .map_err(|e| format!("running {}: {e}", pgbench.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("pgbench failed ({}):\n{stdout}\n{stderr}", output.status).into());
    }
    parse_pgbench(&stdout).ok_or_else(|| format!("no tps in pgbench output:\n{stdout}").into())
}

/// Reads tps, average latency, transactions and failures from pgbench's report.
fn parse_pgbench(report: &str) -> Option<PgbenchResult> {
    let number_after = |prefix: &str| -> Option<f64> {
        report
            .lines()
            .find_map(|line| line.trim().strip_prefix(prefix))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Some(PgbenchResult {
        script: String::new(),
        table_shape: String::new(),
        tps: number_after("tps = ")?,
        latency_avg_ms: number_after("latency average = "),
        transactions: number_after("number of transactions actually processed: ").map(|n| n as u64),
        failed: number_after("number of failed transactions: ").map(|n| n as u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_pgbench_15_report() {
        let report = "transaction type: /tmp/append.sql
scaling factor: 1
query mode: prepared
number of clients: 64
number of threads: 2
maximum number of tries: 1
duration: 15 s
number of transactions actually processed: 150123
number of failed transactions: 0 (0.000%)
latency average = 6.395 ms
initial connection time = 40.120 ms
tps = 10008.201234 (without initial connection time)
";
        let r = parse_pgbench(report).unwrap();
        assert_eq!(r.tps, 10008.201234);
        assert_eq!(r.latency_avg_ms, Some(6.395));
        assert_eq!(r.transactions, Some(150123));
        assert_eq!(r.failed, Some(0));
    }
}
