//! The event store: postgres-es's tables and loading, with appends that write
//! the events, the aggregate's snapshot and every read model the events change
//! in one transaction.
//!
//! postgres-es commits the events and cqrs-es then hands them to the queries
//! in a second transaction: a crash in between loses the read-model update,
//! and every command pays for two commits. Here a read model is never behind
//! its log, so a command's answer is visible to every later query, and a
//! racing append still loses on the events table's key (the optimistic lock).

use std::sync::Arc;

use async_trait::async_trait;
use cqrs_es::persist::{
    PersistedEventRepository, PersistedEventStore, PersistenceError, ReplayStream, SerializedEvent,
    SerializedSnapshot,
};
use cqrs_es::{Aggregate, CqrsFramework};
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

mod projector;

pub use projector::{ProjectionError, Projector};

/// The command side of one aggregate type: cqrs-es on this store.
pub type Cqrs<A> = CqrsFramework<A, PersistedEventStore<ProjectingRepository, A>>;

/// The same statements postgres-es uses, so both write identical rows.
const INSERT_EVENT: &str = "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
     values ($1, $2, $3, $4, $5, $6, $7)";
const INSERT_SNAPSHOT: &str =
    "insert into snapshots (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload)
     values ($1, $2, $3, $4, $5)";
const UPDATE_SNAPSHOT: &str =
    "update snapshots set last_sequence = $3, payload = $6, current_snapshot = $4
     where aggregate_type = $1 and aggregate_id = $2 and current_snapshot = $5";

/// The read models of one aggregate type, written inside an append.
#[async_trait]
pub trait AppendProjector: Send + Sync {
    /// Applies the appended events of one stream, inside the append's transaction.
    async fn project_appended(
        &self,
        tx: &mut PgConnection,
        events: &[SerializedEvent],
    ) -> Result<(), ProjectionError>;
}

/// postgres-es for reading; appends with their read models for writing.
pub struct ProjectingRepository {
    reads: PostgresEventRepository,
    pool: PgPool,
    projector: Arc<dyn AppendProjector>,
}

impl ProjectingRepository {
    /// A repository on `pool` whose appends also run `projector`.
    pub fn new(pool: PgPool, projector: Arc<dyn AppendProjector>) -> Self {
        Self {
            reads: PostgresEventRepository::new(pool.clone()),
            pool,
            projector,
        }
    }

    async fn append<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), AppendError> {
        let mut tx = self.pool.begin().await?;
        for event in events {
            sqlx::query(INSERT_EVENT)
                .bind(A::TYPE)
                .bind(&event.aggregate_id)
                .bind(event.sequence as i64)
                .bind(&event.event_type)
                .bind(&event.event_version)
                .bind(&event.payload)
                .bind(&event.metadata)
                .execute(&mut *tx)
                .await?;
        }
        if let Some((aggregate_id, payload, current_snapshot)) = snapshot_update {
            let last_sequence = events.last().map_or(0, |event| event.sequence) as i64;
            let query = if current_snapshot == 1 {
                sqlx::query(INSERT_SNAPSHOT)
                    .bind(A::TYPE)
                    .bind(&aggregate_id)
                    .bind(last_sequence)
                    .bind(current_snapshot as i64)
                    .bind(&payload)
            } else {
                sqlx::query(UPDATE_SNAPSHOT)
                    .bind(A::TYPE)
                    .bind(&aggregate_id)
                    .bind(last_sequence)
                    .bind(current_snapshot as i64)
                    .bind(current_snapshot as i64 - 1)
                    .bind(&payload)
            };
            // Another writer moved the snapshot on: this append lost the race.
            if query.execute(&mut *tx).await?.rows_affected() != 1 {
                return Err(AppendError::Conflict);
            }
        }
        self.projector.project_appended(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }
}

impl PersistedEventRepository for ProjectingRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.reads.get_events::<A>(aggregate_id).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.reads
            .get_last_events::<A>(aggregate_id, last_sequence)
            .await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        self.reads.get_snapshot::<A>(aggregate_id).await
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        if events.is_empty() {
            return Ok(());
        }
        self.append::<A>(events, snapshot_update)
            .await
            .map_err(PersistenceError::from)
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        self.reads.stream_events::<A>(aggregate_id).await
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        self.reads.stream_all_events::<A>().await
    }
}

/// Why an append did not commit.
#[derive(Debug, thiserror::Error)]
enum AppendError {
    #[error("another writer appended to the stream first")]
    Conflict,
    #[error("database: {0}")]
    Database(sqlx::Error),
    #[error("read models: {0}")]
    Projection(ProjectionError),
}

impl From<sqlx::Error> for AppendError {
    fn from(error: sqlx::Error) -> Self {
        // Only the event or snapshot key means a lost race: a duplicate in a
        // read model is a bug and must not be retried as a conflict.
        match &error {
            sqlx::Error::Database(database)
                if database.code().as_deref() == Some("23505")
                    && matches!(
                        database.constraint(),
                        Some("events_pkey" | "snapshots_pkey")
                    ) =>
            {
                AppendError::Conflict
            }
            _ => AppendError::Database(error),
        }
    }
}

impl From<ProjectionError> for AppendError {
    fn from(error: ProjectionError) -> Self {
        match error {
            ProjectionError::Database(error) => error.into(),
            other => AppendError::Projection(other),
        }
    }
}

impl From<AppendError> for PersistenceError {
    fn from(error: AppendError) -> Self {
        match error {
            AppendError::Conflict => PersistenceError::OptimisticLockError,
            AppendError::Database(
                error @ (sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed),
            ) => PersistenceError::ConnectionError(Box::new(error)),
            other => PersistenceError::UnknownError(Box::new(other)),
        }
    }
}
