//! Connecting to PostgreSQL and applying the migrations.

use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Postgres};

/// The migrations in `migrations/`, embedded in the binary. Migrations a
/// newer release applied, which this binary does not know, are passed
/// over: a rolling upgrade's newer instances migrate the store while older
/// ones still serve it, and an older one restarted then must start again
/// (releases before this setting refuse to). Each migration keeps what the
/// release before it reads working.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate::Migrator {
    ignore_missing: true,
    ..sqlx::migrate!("./migrations")
};

/// A pool to `url`; statements that run longer than 30 s are cancelled, and
/// a session whose transaction waits 15 s for its client is ended: an
/// instance frozen mid-transaction (a paused process, a lost host, a
/// network path that stopped) would otherwise hold its row locks, and every
/// batch that needs them would fail on its lock timeout, for as long as it
/// stayed frozen. No transaction of the service idles that long: a batch
/// sends its statements back to back, and a scheduler round that ran so
/// long would end without admitting and be begun again.
///
/// JIT compilation is off: every statement here is short, and PostgreSQL
/// compiles whenever a plan's cost estimate is high, which a poor estimate
/// makes it (the once-a-minute release of abandoned queue numbers spent
/// 600 ms compiling for 19 ms of work).
pub async fn connect(url: &str, max_connections: u32) -> sqlx::Result<PgPool> {
    let options: PgConnectOptions = url.parse()?;
    let options = options.options([
        ("statement_timeout", "30s"),
        ("lock_timeout", "10s"),
        ("idle_in_transaction_session_timeout", "15s"),
        ("jit", "off"),
    ]);
    let pool_options = checked_in_time(
        PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5)),
    );
    let pool = match pool_options.clone().connect_with(options.clone()).await {
        // The pool only says it waited; one plain connection says why (the
        // connection refused, an unknown host), for the operator to read. A
        // server that came up meanwhile gets the pool's second try.
        Err(sqlx::Error::PoolTimedOut) => {
            let alone = PgConnection::connect_with(&options);
            match tokio::time::timeout(Duration::from_secs(5), alone).await {
                Ok(Err(cause)) => return Err(cause),
                Ok(Ok(_)) => pool_options.connect_with(options).await?,
                Err(_) => return Err(sqlx::Error::PoolTimedOut),
            }
        }
        pool => pool?,
    };
    ensure_utf8(&pool).await?;
    Ok(pool)
}

/// How long a connection has to answer the pool's check before it is closed.
const CHECK_LIMIT: Duration = Duration::from_secs(3);
/// A connection used this recently is handed out unchecked: it answered
/// its last check when it came back, moments ago.
const CHECKED_RECENTLY: Duration = Duration::from_millis(500);

/// Pool options whose checks of a connection are given up after
/// [`CHECK_LIMIT`]. The pool checks a connection that comes back (a round
/// trip that also waits for every answer still owed on it) and waits for
/// good: a connection given up mid-statement on a network path that stopped
/// answering then held its place in the pool for good, and after two such
/// freezes the pool had six of its eight places held, with every request
/// waiting seconds for a connection long after the path answered again.
/// The check on the way out is skipped for a connection back within
/// [`CHECKED_RECENTLY`], as HikariCP does, so that a busy pool makes no
/// more round trips than before: two a use (this check and the pool's own
/// as it comes back), both after the work is answered. Checking every
/// connection on the way out too cost a tenth of the holds, charges and
/// payments a second; skipping it fails a use of a connection whose session
/// the server ended within that half second (a restart, an operator's
/// `pg_terminate_backend`) with a 503 where a fresh connection would have
/// served it: four terminations of every session under load failed 88 to
/// 123 requests, against 14 to 70 before.
fn checked_in_time(options: PgPoolOptions) -> PgPoolOptions {
    options
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for < CHECKED_RECENTLY {
                    return Ok(true);
                }
                answers_in_time(conn).await
            })
        })
        .after_release(|conn, _| Box::pin(answers_in_time(conn)))
}

/// Whether `conn` answers a ping (and every answer owed before it) within
/// [`CHECK_LIMIT`]; an error closes it at once, a `false` politely.
async fn answers_in_time(conn: &mut PgConnection) -> sqlx::Result<bool> {
    match tokio::time::timeout(CHECK_LIMIT, conn.ping()).await {
        Ok(answered) => answered.map(|()| true),
        Err(_) => Ok(false),
    }
}

/// How long a short read that nothing else would give up has to answer: one
/// in an event stream, which no request timeout bounds, or one that others
/// wait on under a shared lock. Such reads take a millisecond; a connection
/// whose path stopped answering would otherwise stall them for good.
pub const SHORT_READ_WITHIN: Duration = Duration::from_secs(5);

/// `work` on the database, failed as a timed-out I/O error when it has no
/// answer within `limit`: for work apart from any request, which nothing
/// else gives up on a connection whose path stopped answering.
pub async fn answered_within<T>(
    limit: Duration,
    work: impl std::future::Future<Output = sqlx::Result<T>>,
) -> sqlx::Result<T> {
    tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
        Err(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer within {} s", limit.as_secs()),
        )))
    })
}

/// The store must hold any text a client may send (a title in any script,
/// an emoji). A database in another encoding refused such a title when its
/// batch was stored, and every command of that batch was answered 503.
pub async fn ensure_utf8<'c, E>(executor: E) -> sqlx::Result<()>
where
    E: sqlx::PgExecutor<'c>,
{
    let encoding: String = sqlx::query_scalar("select current_setting('server_encoding')")
        .fetch_one(executor)
        .await?;
    if encoding == "UTF8" {
        return Ok(());
    }
    Err(sqlx::Error::Configuration(
        format!(
            "the database's encoding is {encoding}; the service needs UTF8 \
             (create database … encoding 'UTF8' template template0)"
        )
        .into(),
    ))
}

/// A pool of up to `connections` to the database of `pool`, opened on first
/// use, that keeps one generic plan of each statement. With PostgreSQL's
/// default choice, a statement over array parameters is planned anew on every
/// call whenever its arrays are small (a plan for one element looks cheaper
/// than one for any number), and planning such a statement can take longer
/// than running it: 0.57 ms against 0.27 ms, measured for a lone queue entry.
///
/// Every statement sent through it looks rows up by key, so it never scans a
/// whole table: a plan made while the statistics still saw a table as a few
/// rows (a flash sale's first seconds, before autovacuum analyzes it) scanned
/// `queue_tickets` for each user of an entry batch (36 ms a batch at 14,000
/// tickets, entries 4,500 -> 800 a second).
pub fn generic_plan_pool(pool: &PgPool, connections: u32) -> PgPool {
    let options = (*pool.connect_options()).clone().options([
        ("plan_cache_mode", "force_generic_plan"),
        ("enable_seqscan", "off"),
    ]);
    pool.options()
        .clone()
        .max_connections(connections)
        .min_connections(0)
        .connect_lazy_with(options)
}

/// A pooled connection for work that may be given up mid-statement (a
/// batch past its deadline). Dropped before [`Leased::release`] or
/// [`Leased::close`], it is closed rather than returned to the pool: the
/// pool's check of a returned connection waits for every answer still owed
/// on it, which a server that stopped answering never sends, and the
/// connection's place in the pool would be held while it waits.
pub struct Leased(Option<PoolConnection<Postgres>>);

impl Leased {
    pub async fn acquire(pool: &PgPool) -> sqlx::Result<Self> {
        Ok(Self(Some(pool.acquire().await?)))
    }

    /// Returns the connection to the pool: its work is done.
    pub fn release(mut self) {
        drop(self.0.take());
    }

    /// Closes the connection (after a failure that may have left it
    /// mid-transaction).
    pub async fn close(mut self) {
        if let Some(conn) = self.0.take() {
            let _ = conn.detach().close().await;
        }
    }

    /// Hands the connection back after work that `succeeded`, closes it
    /// after work that failed (it may be left mid-statement or
    /// mid-transaction).
    pub async fn finish(self, succeeded: bool) {
        if succeeded {
            self.release();
        } else {
            self.close().await;
        }
    }
}

/// Runs `work` on a [`Leased`] connection of `pool`: handed back to the pool
/// after a success, closed after a failure (it may be left mid-statement) or
/// when the work is dropped unfinished.
pub async fn on_leased<T>(
    pool: &PgPool,
    work: impl AsyncFnOnce(&mut PgConnection) -> sqlx::Result<T>,
) -> sqlx::Result<T> {
    let mut conn = Leased::acquire(pool).await?;
    let done = work(&mut conn).await;
    conn.finish(done.is_ok()).await;
    done
}

impl std::ops::Deref for Leased {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        self.0.as_ref().expect("a leased connection until released")
    }
}

impl std::ops::DerefMut for Leased {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.0.as_mut().expect("a leased connection until released")
    }
}

impl Drop for Leased {
    fn drop(&mut self) {
        if let Some(conn) = self.0.as_mut() {
            conn.close_on_drop();
        }
    }
}

/// Applies every migration not applied yet.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// What the commands that only read (`events`, `audit`, `backup`) say of a
/// database without the event log: they do not create a store where
/// DATABASE_URL may be mistyped.
pub const NO_STORE: &str = "this database holds no concert store (it has no event log): \
check DATABASE_URL (or CONCERT_DATA_DIR), or create an empty store with `concert migrate`";

/// Whether the database holds a concert store: its event log, migrated by
/// this release or another.
pub async fn holds_a_store(connection: impl sqlx::PgExecutor<'_>) -> sqlx::Result<bool> {
    sqlx::query_scalar("select to_regclass('events') is not null")
        .fetch_one(connection)
        .await
}

/// Whether the database answers and has every migration this binary knows.
pub async fn migrations_applied(pool: &PgPool) -> sqlx::Result<bool> {
    let latest = MIGRATOR
        .iter()
        .map(|migration| migration.version)
        .max()
        .unwrap_or(0);
    sqlx::query_scalar(
        "select exists (select 1 from _sqlx_migrations where version = $1 and success)",
    )
    .bind(latest)
    .fetch_one(pool)
    .await
}

/// The server secret called `name`, created on first use, so every instance
/// on one database signs and verifies with the same one.
pub async fn server_secret(pool: &PgPool, name: &str) -> sqlx::Result<Vec<u8>> {
    let fresh: [u8; 32] = rand::random();
    sqlx::query("insert into server_secrets (name, secret) values ($1, $2) on conflict do nothing")
        .bind(name)
        .bind(fresh.to_vec())
        .execute(pool)
        .await?;
    sqlx::query_scalar("select secret from server_secrets where name = $1")
        .bind(name)
        .fetch_one(pool)
        .await
}
