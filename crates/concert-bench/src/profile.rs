//! Where a request's database time goes: pg_stat_statements and
//! pg_stat_database read before and after a closed loop, divided by the
//! requests sent. Needs `shared_preload_libraries = 'pg_stat_statements'` and
//! `create extension pg_stat_statements` on the server's database.

use serde::Serialize;
use sqlx::PgPool;

use crate::BoxError;

pub struct Profiler {
    pool: PgPool,
    before: tokio::sync::Mutex<Option<Counters>>,
}

#[derive(Debug, Clone, Copy, sqlx::FromRow)]
struct Counters {
    commits: i64,
    rollbacks: i64,
    inserted: i64,
    updated: i64,
    returned: i64,
    wal_bytes: i64,
}

/// One normalised statement's share of the loop.
#[derive(Debug, Clone, Serialize)]
pub struct Statement {
    pub calls_per_request: f64,
    pub mean_ms: f64,
    pub total_ms: f64,
    pub query: String,
}

/// The database work of an average request during the loop.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    pub requests: u64,
    pub statements_per_request: f64,
    pub commits_per_request: f64,
    pub rollbacks_per_request: f64,
    pub rows_inserted_per_request: f64,
    pub rows_updated_per_request: f64,
    pub rows_returned_per_request: f64,
    pub wal_bytes_per_request: f64,
    /// Execution time inside PostgreSQL per request (excludes round trips and waits for a connection).
    pub exec_ms_per_request: f64,
    pub statements: Vec<Statement>,
}

const COUNTERS: &str = "select xact_commit as commits, xact_rollback as rollbacks,
        tup_inserted as inserted, tup_updated as updated, tup_returned as returned,
        (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint as wal_bytes
   from pg_stat_database where datname = current_database()";

impl Profiler {
    pub async fn connect(url: &str) -> Result<Self, BoxError> {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await?;
        sqlx::query("select 1 from pg_stat_statements limit 1")
            .execute(&pool)
            .await
            .map_err(|e| format!("pg_stat_statements is not usable: {e}"))?;
        Ok(Self {
            pool,
            before: tokio::sync::Mutex::new(None),
        })
    }

    /// Zeroes the statement counters and notes the database counters.
    pub async fn reset(&self) -> Result<(), BoxError> {
        sqlx::query("select pg_stat_statements_reset()")
            .execute(&self.pool)
            .await?;
        // pg_stat_database is refreshed per transaction: read a fresh snapshot.
        sqlx::query("select pg_stat_clear_snapshot()")
            .execute(&self.pool)
            .await?;
        let counters: Counters = sqlx::query_as(COUNTERS).fetch_one(&self.pool).await?;
        *self.before.lock().await = Some(counters);
        Ok(())
    }

    /// The work per request since `reset`.
    pub async fn report(&self, requests: u64) -> Result<Profile, BoxError> {
        // Statistics reach the shared counters within a second of a backend going idle.
        tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
        sqlx::query("select pg_stat_clear_snapshot()")
            .execute(&self.pool)
            .await?;
        let after: Counters = sqlx::query_as(COUNTERS).fetch_one(&self.pool).await?;
        let before = self.before.lock().await.ok_or("profiler was not reset")?;
        let rows: Vec<(i64, f64, f64, String)> = sqlx::query_as(
            "select calls, total_exec_time, mean_exec_time, regexp_replace(query, '\\s+', ' ', 'g')
               from pg_stat_statements
              where dbid = (select oid from pg_database where datname = current_database())
                and query not like '%pg_stat_%' and query not like '%pg_current_wal_lsn%'
              order by total_exec_time desc",
        )
        .fetch_all(&self.pool)
        .await?;
        let n = requests.max(1) as f64;
        let calls: i64 = rows.iter().map(|r| r.0).sum();
        let exec: f64 = rows.iter().map(|r| r.1).sum();
        Ok(Profile {
            requests,
            statements_per_request: calls as f64 / n,
            commits_per_request: (after.commits - before.commits) as f64 / n,
            rollbacks_per_request: (after.rollbacks - before.rollbacks) as f64 / n,
            rows_inserted_per_request: (after.inserted - before.inserted) as f64 / n,
            rows_updated_per_request: (after.updated - before.updated) as f64 / n,
            rows_returned_per_request: (after.returned - before.returned) as f64 / n,
            wal_bytes_per_request: (after.wal_bytes - before.wal_bytes) as f64 / n,
            exec_ms_per_request: exec / n,
            statements: rows
                .into_iter()
                .map(|(calls, total, mean, query)| Statement {
                    calls_per_request: calls as f64 / n,
                    mean_ms: mean,
                    total_ms: total,
                    query: query.chars().take(160).collect(),
                })
                .collect(),
        })
    }
}

impl Profile {
    pub fn print(&self) {
        println!(
            "\ndatabase work per request ({} requests): {:.1} statements, {:.2} commits, {:.2} rollbacks, \
             {:.1} rows inserted, {:.1} updated, {:.0} returned, {:.0} WAL bytes, {:.2} ms executing",
            self.requests,
            self.statements_per_request,
            self.commits_per_request,
            self.rollbacks_per_request,
            self.rows_inserted_per_request,
            self.rows_updated_per_request,
            self.rows_returned_per_request,
            self.wal_bytes_per_request,
            self.exec_ms_per_request
        );
        println!(
            "{:>9} {:>9} {:>10}  statement",
            "per req", "mean ms", "total ms"
        );
        for statement in self.statements.iter().take(25) {
            println!(
                "{:>9.2} {:>9.3} {:>10.0}  {}",
                statement.calls_per_request, statement.mean_ms, statement.total_ms, statement.query
            );
        }
    }
}
