//! `AppState`: what every request handler and the scheduler share.

use std::sync::Arc;

use postgres_es::{postgres_cqrs, postgres_snapshot_cqrs, PostgresCqrs};
use sqlx::PgPool;

use crate::aggregates::{Concert, QueueTicket, Seat, Wallet};
use crate::api::EntryLimiter;
use crate::config::Config;
use crate::projections::{
    available_dates::AvailableDates, available_seats::AvailableSeats, balances::Balances,
    payments::Payments, queue_tickets::QueueTickets, reservations::Reservations, ProjectionError,
    Projector,
};
use crate::tokens::TokenSigner;

/// Wallets keep a snapshot every this many events, so a long history loads fast.
const WALLET_SNAPSHOT_EVERY: usize = 100;

/// The command side (one cqrs framework per aggregate), the read side (the
/// pool the projections' tables are read through) and the settings.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub admin_token: Arc<str>,
    pub tokens: TokenSigner,
    /// Per-address limit on queue entries, when configured.
    pub entry_limiter: Option<EntryLimiter>,
    pub concerts: Arc<PostgresCqrs<Concert>>,
    pub seats: Arc<PostgresCqrs<Seat>>,
    pub wallets: Arc<PostgresCqrs<Wallet>>,
    pub tickets: Arc<PostgresCqrs<QueueTicket>>,
    pub projectors: Arc<Projectors>,
}

/// The projectors of each aggregate type, also used to catch up at start.
pub struct Projectors {
    pub concerts: Arc<Projector<Concert>>,
    pub seats: Arc<Projector<Seat>>,
    pub wallets: Arc<Projector<Wallet>>,
    pub tickets: Arc<Projector<QueueTicket>>,
}

impl Projectors {
    /// Projectors writing every read model through `pool`.
    pub fn new(pool: &PgPool) -> Self {
        let dates = Arc::new(AvailableDates);
        let seats = Arc::new(AvailableSeats);
        let payments = Arc::new(Payments);
        Self {
            concerts: Arc::new(Projector::new(
                pool.clone(),
                vec![dates.clone(), seats.clone()],
            )),
            seats: Arc::new(Projector::new(
                pool.clone(),
                vec![seats, dates, Arc::new(Reservations), payments.clone()],
            )),
            wallets: Arc::new(Projector::new(
                pool.clone(),
                vec![Arc::new(Balances), payments],
            )),
            tickets: Arc::new(Projector::new(pool.clone(), vec![Arc::new(QueueTickets)])),
        }
    }

    /// Applies every committed event the read models are missing. Wallets go
    /// before seats so a payment exists before the sale that completes it.
    pub async fn catch_up(&self) -> Result<u64, ProjectionError> {
        Ok(self.concerts.catch_up().await?
            + self.wallets.catch_up().await?
            + self.seats.catch_up().await?
            + self.tickets.catch_up().await?)
    }
}

impl Projectors {
    /// `catch_up` inside the caller's transaction.
    pub async fn catch_up_in(&self, tx: &mut sqlx::PgConnection) -> Result<u64, ProjectionError> {
        Ok(self.concerts.catch_up_in(tx).await?
            + self.wallets.catch_up_in(tx).await?
            + self.seats.catch_up_in(tx).await?
            + self.tickets.catch_up_in(tx).await?)
    }
}

impl AppState {
    /// Wires the frameworks and projectors onto one pool.
    pub fn new(pool: PgPool, config: Config, admin_token: String, tokens: TokenSigner) -> Self {
        let projectors = Projectors::new(&pool);
        Self {
            concerts: Arc::new(postgres_cqrs(
                pool.clone(),
                vec![Box::new(ArcQuery(projectors.concerts.clone()))],
                (),
            )),
            seats: Arc::new(postgres_cqrs(
                pool.clone(),
                vec![Box::new(ArcQuery(projectors.seats.clone()))],
                (),
            )),
            wallets: Arc::new(postgres_snapshot_cqrs(
                pool.clone(),
                vec![Box::new(ArcQuery(projectors.wallets.clone()))],
                WALLET_SNAPSHOT_EVERY,
                (),
            )),
            tickets: Arc::new(postgres_cqrs(
                pool.clone(),
                vec![Box::new(ArcQuery(projectors.tickets.clone()))],
                (),
            )),
            projectors: Arc::new(projectors),
            pool,
            entry_limiter: EntryLimiter::new(
                config.queue_entry_rate_per_sec,
                config.queue_entry_burst,
            ),
            config: Arc::new(config),
            admin_token: admin_token.into(),
            tokens,
        }
    }
}

/// Lets a shared projector serve as a cqrs-es query.
struct ArcQuery<A: cqrs_es::Aggregate>(Arc<Projector<A>>);

#[async_trait::async_trait]
impl<A: cqrs_es::Aggregate> cqrs_es::Query<A> for ArcQuery<A> {
    async fn dispatch(&self, aggregate_id: &str, events: &[cqrs_es::EventEnvelope<A>]) {
        self.0.dispatch(aggregate_id, events).await
    }
}
